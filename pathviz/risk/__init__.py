"""Risk models with one interface (:class:`RiskModel`: fit / predict_risk / predict_survival_function)
and one Breslow baseline (:mod:`pathviz.risk.breslow`).

:class:`~pathviz.risk.coxpasnet.CoxPASNetModel` is exported lazily (it imports torch), so
``import pathviz.risk`` stays light for the pages and the CLI.
"""

from pathviz.risk.base import (
    MISSING_OMICS,
    RiskModel,
    TabularPreprocessor,
    omics_coverage,
    omics_coverage_text,
    restrict_to_omics,
)
from pathviz.risk.breslow import BreslowBaseline, fit_breslow
from pathviz.risk.coxnet import CoxnetRiskModel, default_covariates, fit_cohort_risk
from pathviz.risk.stored import StoredRiskModel
from pathviz.survival.splits import stratified_folds, train_validation_split

__all__ = ["MISSING_OMICS", "BreslowBaseline", "CoxPASNetModel", "CoxnetRiskModel", "RiskModel", "StoredRiskModel",
           "TabularPreprocessor", "default_covariates", "fit_breslow", "fit_cohort_risk", "omics_coverage",
           "omics_coverage_text", "restrict_to_omics", "stratified_folds", "train_validation_split"]


def __getattr__(name: str):
    """Lazy export of :class:`~pathviz.risk.coxpasnet.CoxPASNetModel` (PEP 562)."""
    if name == "CoxPASNetModel":
        from pathviz.risk.coxpasnet import CoxPASNetModel

        return CoxPASNetModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
