"""Survival statistics: concordance, Kaplan-Meier, log-rank, Cox, cut-offs, clinical analyses.

Wraps lifelines and scikit-survival; PathViz's own code is what they lack (a fast exact Harrell's
C, the log-rank trend test, maxstat cut-offs with Lausen-Schumacher p-values, by-stratum analyses).
"""

from pathviz.survival.analyses import (
    EffectByStratum,
    GroupComparison,
    SmallGroupError,
    check_group_sizes,
    km_by_group,
    marker_by_stratum,
    p_label,
    subgroup_hazard_ratios,
    treatment_by_stratum,
)
from pathviz.survival.concordance import (
    Concordance,
    harrell_c,
    harrell_c_bootstrap,
    integrated_brier,
    time_dependent_auc,
    uno_c,
)
from pathviz.survival.cox import CoxTable, HazardRatio, fit_cox, format_p, group_hazard_ratio, interaction_p_value
from pathviz.survival.cutoffs import METHODS, Cutoff, CutoffError, fit_cutoff, lausen92_p, logrank_scores, maxstat
from pathviz.survival.km import KMCurve, kaplan_meier, number_at_risk
from pathviz.survival.logrank import LogRankResult, log_rank, log_rank_trend

__all__ = [
    "METHODS", "Concordance", "CoxTable", "Cutoff", "CutoffError", "EffectByStratum", "GroupComparison",
    "HazardRatio", "KMCurve", "LogRankResult", "SmallGroupError", "check_group_sizes", "fit_cox", "fit_cutoff",
    "format_p", "group_hazard_ratio", "harrell_c", "harrell_c_bootstrap", "integrated_brier", "interaction_p_value",
    "kaplan_meier", "km_by_group", "lausen92_p", "log_rank", "log_rank_trend", "logrank_scores", "marker_by_stratum",
    "maxstat", "number_at_risk", "p_label", "subgroup_hazard_ratios", "time_dependent_auc", "treatment_by_stratum",
    "uno_c",
]
