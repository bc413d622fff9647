"""Kaplan-Meier estimates per group, with 95% CIs, censor marks, medians and numbers at risk.

Wraps ``lifelines.KaplanMeierFitter`` (Kaplan & Meier 1958). Pointwise CIs use the exponential
Greenwood ("log-log") transform, as lifelines does and as R ``survfit(conf.type = "log-log")``;
median survival CIs are where the CI curves cross 0.5 (Brookmeyer & Crowley 1982 style, lifelines
``median_survival_times``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter
from lifelines.utils import median_survival_times

from pathviz.errors import PathVizError


@dataclass
class KMCurve:
    """One group's Kaplan-Meier curve.

    Attributes:
        group: group label.
        n, events: patients and events in the group.
        timeline: float[k] event/censor times (months), starting at 0.
        survival, lower, upper: float[k] S(t) and its 95% CI.
        censor_times, censor_survival: where to draw censor marks.
        median, median_lower, median_upper: median survival (months) with 95% CI; None when the
            curve (or CI curve) never reaches 0.5 ("not reached").
        notes: flags such as "no events" or "a group of one".
    """

    group: str
    n: int
    events: int
    timeline: np.ndarray
    survival: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    censor_times: np.ndarray
    censor_survival: np.ndarray
    median: float | None
    median_lower: float | None
    median_upper: float | None
    notes: list[str] = field(default_factory=list)

    def survival_at(self, t: float) -> float:
        """S(t) (step function, right-continuous)."""
        i = np.searchsorted(self.timeline, t, side="right") - 1
        return float(self.survival[max(i, 0)])

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"group": self.group, "time": self.timeline, "survival": self.survival,
                             "lower_95": self.lower, "upper_95": self.upper})


def _finite_or_none(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def kaplan_meier(time, event, groups=None, alpha: float = 0.05) -> list[KMCurve]:
    """Kaplan-Meier curves for each group (one curve when ``groups`` is None).

    Args:
        time: float[n] months; event: int[n] 0/1; groups: labels[n] or None.
        alpha: 1 - confidence level.

    Returns:
        One :class:`KMCurve` per group, in sorted group order.

    Raises:
        PathVizError: empty input or mismatched lengths.
    """
    t = np.asarray(time, float)
    e = np.asarray(event, int)
    g = np.asarray(["all"] * len(t) if groups is None else groups, dtype=object)
    if len(t) == 0 or not (len(t) == len(e) == len(g)):
        raise PathVizError("Kaplan-Meier needs non-empty time, event and group arrays of one length.", "check the cohort.")
    curves = []
    for label in sorted(pd.unique(g), key=str):
        m = g == label
        kmf = KaplanMeierFitter(alpha=alpha).fit(t[m], e[m])
        sf = kmf.survival_function_.iloc[:, 0]
        ci = kmf.confidence_interval_
        lower, upper = ci.iloc[:, 0].to_numpy(), ci.iloc[:, 1].to_numpy()
        timeline = sf.index.to_numpy(float)
        ct = np.sort(t[m][e[m] == 0])
        cs = sf.reindex(sf.index.union(ct)).ffill().loc[ct].to_numpy() if len(ct) else np.array([])
        med = _finite_or_none(kmf.median_survival_time_)
        mci = median_survival_times(ci)
        notes = []
        if int(e[m].sum()) == 0:
            notes.append("no events: survival stays at 1, median not estimable")
        if int(m.sum()) == 1:
            notes.append("a group of one patient")
        curves.append(
            KMCurve(
                group=str(label), n=int(m.sum()), events=int(e[m].sum()), timeline=timeline,
                survival=sf.to_numpy(float), lower=np.nan_to_num(lower, nan=1.0), upper=np.nan_to_num(upper, nan=1.0),
                censor_times=ct, censor_survival=cs, median=med,
                median_lower=_finite_or_none(mci.iloc[0, 0]), median_upper=_finite_or_none(mci.iloc[0, 1]),
                notes=notes,
            )
        )
    return curves


def number_at_risk(time, groups, at) -> pd.DataFrame:
    """Patients still at risk (time >= t) per group at the times ``at`` (months).

    Returns a DataFrame indexed by group with one column per time.
    """
    t = np.asarray(time, float)
    g = np.asarray(groups, dtype=object)
    rows = {}
    for label in sorted(pd.unique(g), key=str):
        tt = t[g == label]
        rows[str(label)] = [int((tt >= a).sum()) for a in at]
    return pd.DataFrame.from_dict(rows, orient="index", columns=[float(a) for a in at])
