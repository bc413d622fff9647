"""Clinical analyses of a risk stratification (as in seed 004, the PDAC pathomics paper):

* :func:`km_by_group` - KM per group with log-rank and hazard ratios: the stratification panel;
* :func:`marker_by_stratum` - a serum marker (CA19-9 by default) high vs low inside each risk
  group: KM, HR per group and the Cox interaction p-value (is the marker prognostic in one group
  only?);
* :func:`treatment_by_stratum` - treated vs untreated inside each risk group: HR per group and the
  interaction p-value (who benefits from adjuvant therapy?);
* :func:`subgroup_hazard_ratios` - HR of high vs low risk inside each level of other variables
  (subgroup forest plot);
* :func:`check_group_sizes` - refuses (:class:`SmallGroupError`) a grouping that leaves a group
  too small or without events to estimate anything (e.g. tertiles applied to a small validation
  set), saying which group and what to do instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pathviz.errors import PathVizError
from pathviz.survival.cox import HazardRatio, group_hazard_ratio, interaction_p_value, p_label  # noqa: F401 (re-exported)
from pathviz.survival.km import KMCurve, kaplan_meier, number_at_risk
from pathviz.survival.logrank import LogRankResult, log_rank, log_rank_trend


#: Fewest patients per group :func:`check_group_sizes` accepts by default.
MIN_GROUP_PATIENTS = 5


class SmallGroupError(PathVizError):
    """A grouping (usually a cut-off applied to a set of patients) leaves at least one group with
    too few patients or no events, so its KM curve, log-rank test and hazard ratio would be noise
    or not estimable ("HR n/a").

    Attributes:
        small: ``[(group, n, events), ...]`` for each offending group, in group order.
        sizes: ``{group: (n, events)}`` for every group (offending or not).
    """

    def __init__(self, message: str, fix: str = "", small=None, sizes=None):
        super().__init__(message, fix)
        self.small = list(small or [])
        self.sizes = dict(sizes or {})


def check_group_sizes(groups, event, min_patients: int = MIN_GROUP_PATIENTS, *, labels=None, min_events: int = 1,
                      context: str = "", suggest_all_patients: bool = True) -> None:
    """Refuse a grouping with a group of fewer than ``min_patients`` patients or fewer than
    ``min_events`` events (default: no events at all).

    Args:
        groups: labels[n], one per patient (e.g. :meth:`Cutoff.apply` output); patients labelled
            ``"missing"`` are ignored.
        event: int[n] 0/1 event indicators, aligned with ``groups``.
        min_patients: fewest patients a group may have (default 5).
        labels: the groups expected (e.g. ``Cutoff.labels``), in display order; a label with no
            patient at all is reported with n=0. Default: the groups present, sorted.
        min_events: fewest events a group may have (default 1: a group without events has no
            hazard ratio).
        context: what the patients are, for the message (e.g. ``"validation patients"``,
            ``"tertiles cut-off"``).
        suggest_all_patients: also suggest computing the statistics on all patients (pass False
            when they already are).

    Returns:
        None when every group is large enough.

    Raises:
        SmallGroupError: names each offending group with its n and events, and as the fix: use
            fewer groups (e.g. a median cut-off; with two groups, a cut-off nearer the median), or
            compute the statistics on all patients (unless ``suggest_all_patients`` is False).
        PathVizError: ``groups`` and ``event`` differ in length, ``min_patients`` < 1 or
            ``min_events`` < 0.
    """
    g = np.asarray(groups, dtype=object)
    e = np.asarray(event, float)
    if g.shape != e.shape or g.ndim != 1:
        raise PathVizError(f"groups ({g.size}) and event ({e.size}) must be 1-D arrays of one length.",
                           "pass one group label and one event flag per patient.")
    if min_patients < 1 or min_events < 0:
        raise PathVizError(f"min_patients must be >= 1 and min_events >= 0 (got {min_patients}, {min_events}).",
                           "use the defaults (5 patients, 1 event).")
    keep = g != "missing"
    g, e = g[keep], e[keep]
    present = sorted(pd.unique(g), key=str)
    order = [str(x) for x in labels] if labels is not None else [str(x) for x in present]
    order += [str(x) for x in present if str(x) not in order]
    gs = g.astype(str)
    sizes = {lab: (int((gs == lab).sum()), int(np.nansum(e[gs == lab]))) for lab in order}
    small = [(lab, n, ev) for lab, (n, ev) in sizes.items() if n < min_patients or ev < min_events]
    if not small:
        return None
    where = f" ({context})" if context else ""

    def why(n: int, ev: int) -> str:
        reasons = []
        if n < min_patients:
            reasons.append(f"fewer than {min_patients} patients")
        if ev < min_events:
            reasons.append("no events" if min_events == 1 else f"fewer than {min_events} events")
        return " and ".join(reasons)

    named = "; ".join(f"'{lab}' has n={n}, events={ev} ({why(n, ev)})" for lab, n, ev in small)
    overview = ", ".join(f"{lab} {n}/{ev}" for lab, (n, ev) in sizes.items())
    need = f"at least {min_patients} patient{'s' if min_patients > 1 else ''}"
    if min_events:
        need += f" and {min_events} event{'s' if min_events > 1 else ''}"
    fix = ("use fewer groups (the median cut-off gives two groups of about half the patients each)"
           if len(order) > 2 else "use a cut-off nearer the middle of the scores (e.g. the median)")
    fix += (", or compute the statistics on all patients instead of the validation patients only."
            if suggest_all_patients else ".")
    raise SmallGroupError(
        f"Too few patients or events per group{where} for Kaplan-Meier, log-rank and hazard-ratio statistics: "
        f"{named}. Groups (n/events): {overview}. Each group needs {need}; otherwise its curve is noise and its "
        "hazard ratio is not estimable.",
        fix, small=small, sizes=sizes)


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
