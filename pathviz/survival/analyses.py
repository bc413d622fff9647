"""Clinical analyses of a risk stratification (as in seed 004, the PDAC pathomics paper):

* :func:`km_by_group` - KM per group with log-rank and hazard ratios: the stratification panel;
* :func:`marker_by_stratum` - a serum marker (CA19-9 by default) high vs low inside each risk
  group: KM, HR per group and the Cox interaction p-value (is the marker prognostic in one group
  only?);
* :func:`treatment_by_stratum` - treated vs untreated inside each risk group: HR per group and the
  interaction p-value (who benefits from adjuvant therapy?);
* :func:`subgroup_hazard_ratios` - HR of high vs low risk inside each level of other variables
  (subgroup forest plot).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pathviz.survival.cox import HazardRatio, group_hazard_ratio, interaction_p_value
from pathviz.survival.km import KMCurve, kaplan_meier, number_at_risk
from pathviz.survival.logrank import LogRankResult, log_rank, log_rank_trend


@dataclass
class GroupComparison:
    """KM curves of groups with their log-rank test and hazard ratios (vs the first group)."""

    curves: list[KMCurve]
    logrank: LogRankResult | None
    trend: LogRankResult | None
    hazard_ratios: list[HazardRatio]
    at_risk: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def km_by_group(time, event, groups, reference=None, ordered: list[str] | None = None, risk_times=None) -> GroupComparison:
    """KM per group + log-rank (and trend when ``ordered`` gives >2 ordered groups) + HRs.

    Groups labelled ``missing`` are left out. Flags, never silent NaNs: a single group, groups
    without events, groups of one.
    """
    t = np.asarray(time, float)
    e = np.asarray(event, int)
    g = np.asarray(groups, dtype=object)
    keep = g != "missing"
    t, e, g = t[keep], e[keep], g[keep]
    notes = [] if keep.all() else [f"{int((~keep).sum())} patients without a value left out"]
    curves = kaplan_meier(t, e, g)
    if ordered:
        rank = {lab: i for i, lab in enumerate(ordered)}
        curves.sort(key=lambda c: rank.get(c.group, len(rank)))
    for c in curves:
        notes += [f"{c.group}: {n}" for n in c.notes]
    labels = sorted(pd.unique(g), key=str)
    lr = trend = None
    if len(labels) >= 2:
        lr = log_rank(t, e, g)
        if ordered and len(labels) > 2:
            scores = {lab: i + 1 for i, lab in enumerate(o for o in ordered if o in labels)}
            trend = log_rank_trend(t, e, g, scores)
    else:
        notes.append("only one group: no comparison possible (all patients fall on one side of the cut-off)")
    ref = reference if reference in labels else (ordered[0] if ordered and ordered[0] in labels else None)
    hrs = group_hazard_ratio(t, e, g, reference=ref) if len(labels) >= 2 else []
    horizon = float(np.nanmax(t)) if len(t) else 0.0
    at = risk_times if risk_times is not None else np.linspace(0, horizon, 7).round(0)
    return GroupComparison(curves, lr, trend, hrs, number_at_risk(t, g, at), notes)


@dataclass
class StratumEffect:
    """Effect of a binary factor (marker high, treated) inside one risk stratum."""

    stratum: str
    comparison: GroupComparison
    hazard_ratio: HazardRatio


@dataclass
class EffectByStratum:
    """A binary factor's effect in each risk stratum plus the Cox interaction p-value."""

    factor: str
    strata: list[StratumEffect]
    interaction_p: float | None
    interaction_note: str
    notes: list[str] = field(default_factory=list)


def _effect_by_stratum(time, event, strata, factor, factor_labels: tuple[str, str], name: str) -> EffectByStratum:
    t = np.asarray(time, float)
    e = np.asarray(event, int)
    s = np.asarray(strata, dtype=object)
    f = np.asarray(factor, float)
    ok = np.isfinite(f) & (s != "missing")
    notes = [] if ok.all() else [f"{int((~ok).sum())} patients without {name} or stratum left out"]
    lab0, lab1 = factor_labels
    out = []
    for stratum in sorted(pd.unique(s[ok]), key=str):
        m = ok & (s == stratum)
        grp = np.where(f[m] > 0, lab1, lab0).astype(object)
        comp = km_by_group(t[m], e[m], grp, reference=lab0)
        hr = comp.hazard_ratios[0] if comp.hazard_ratios else HazardRatio(
            f"{lab1} vs {lab0}", None, None, None, None, int(m.sum()), int(e[m].sum()), "one level only in this stratum")
        out.append(StratumEffect(str(stratum), comp, hr))
    df = pd.DataFrame({"time": t[ok], "event": e[ok], "factor": (f[ok] > 0).astype(float), "stratum": s[ok]})
    labels = sorted(pd.unique(df["stratum"]), key=str)
    p, note = None, ""
    if len(labels) == 2:
        df["high_risk"] = (df["stratum"] == labels[-1]).astype(float) if "high" not in labels else (df["stratum"] == "high").astype(float)
        p, note = interaction_p_value(df, "factor", "high_risk")
    elif len(labels) > 2:
        note = "interaction test needs two strata; use a two-group cut-off"
    return EffectByStratum(name, out, p, note, notes)


def marker_by_stratum(time, event, strata, marker, threshold: float, name: str = "CA19-9") -> EffectByStratum:
    """Marker-high (> threshold) vs marker-low inside each risk stratum, and the
    marker x stratum interaction p-value (Cox Wald test)."""
    m = np.asarray(marker, float)
    return _effect_by_stratum(time, event, strata, np.where(np.isfinite(m), (m > threshold).astype(float), np.nan),
                              (f"{name} <= {threshold:g}", f"{name} > {threshold:g}"), name)


def treatment_by_stratum(time, event, strata, treated, name: str = "treatment") -> EffectByStratum:
    """Treated (1) vs untreated (0) inside each risk stratum, and the treatment x stratum
    interaction p-value: benefit by stratum."""
    return _effect_by_stratum(time, event, strata, np.asarray(treated, float), ("untreated", "treated"), name)


def subgroup_hazard_ratios(df: pd.DataFrame, strata_col: str, by: list[str], high: str = "high", low: str = "low") -> pd.DataFrame:
    """HR of ``high`` vs ``low`` risk inside each level of each variable in ``by`` (forest plot).

    Returns rows ``variable, level, n, events, hazard_ratio, lower_95, upper_95, p_value, note``.
    """
    rows = []
    sub_all = df[df[strata_col].isin([high, low])]
    for var in by:
        col = sub_all[var]
        levels = col.dropna().unique()
        if pd.api.types.is_numeric_dtype(col) and len(levels) > 6:
            med = float(col.median())
            groups = {f"<= {med:.3g}": col <= med, f"> {med:.3g}": col > med}
        else:
            groups = {str(v): col == v for v in sorted(levels, key=str)}
        for lev, mask in groups.items():
            part = sub_all[mask.fillna(False)]
            hrs = group_hazard_ratio(part["time"], part["event"], part[strata_col], reference=low) if part[strata_col].nunique() == 2 else []
            h = hrs[0] if hrs else HazardRatio(f"{high} vs {low}", None, None, None, None, len(part), int(part["event"].sum()), "one risk group only")
            rows.append({"variable": var, "level": lev, "n": len(part), "events": int(part["event"].sum()),
                         "hazard_ratio": h.hr, "lower_95": h.lower, "upper_95": h.upper, "p_value": h.p_value, "note": h.note})
    return pd.DataFrame(rows)
