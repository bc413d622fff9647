"""Log-rank tests: two groups, k groups, and the test for trend across ordered groups.

Two- and k-group tests wrap ``lifelines.statistics.multivariate_logrank_test`` (Mantel 1966;
Peto & Peto 1972), which equals R ``survival::survdiff``. The trend test (Collett, "Modelling
Survival Data in Medical Research", sec. 2.6; Peto et al. 1977) is not in lifelines: with group
scores w, U = sum_g w_g (O_g - E_g) and Var(U) = w' V w, where V is the hypergeometric covariance
of O - E summed over distinct event times; U^2 / Var(U) ~ chi-square(1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from lifelines.statistics import multivariate_logrank_test
from scipy.stats import chi2

from pathviz.errors import PathVizError


@dataclass(frozen=True)
class LogRankResult:
    """``chi2`` statistic with ``df`` degrees of freedom and its ``p_value``; ``observed`` and
    ``expected`` events per group (dicts keyed by group label)."""

    chi2: float
    df: int
    p_value: float
    observed: dict
    expected: dict


def _o_e_v(time, event, groups):
    t = np.asarray(time, float)
    e = np.asarray(event, int)
    g = np.asarray(groups, dtype=object)
    labels = sorted(pd.unique(g), key=str)
    if len(labels) < 2:
        raise PathVizError("A log-rank test needs at least two groups with patients.", "choose another grouping or cut-off.")
    G = np.stack([(g == lab) for lab in labels], axis=1).astype(float)  # n x k
    event_times = np.unique(t[e == 1])
    O = np.zeros(len(labels))
    E = np.zeros(len(labels))
    V = np.zeros((len(labels), len(labels)))
    for s in event_times:
        at_risk = t >= s
        n_g = G[at_risk].sum(axis=0)
        d_mask = (t == s) & (e == 1)
        d_g = G[d_mask].sum(axis=0)
        n, d = n_g.sum(), d_g.sum()
        O += d_g
        E += d * n_g / n
        if n > 1:
            f = d * (n - d) / (n - 1) / n
            V += f * (np.diag(n_g) - np.outer(n_g, n_g) / n)
    return labels, O, E, V


def log_rank(time, event, groups) -> LogRankResult:
    """Log-rank test of equal survival across groups (two or more).

    Raises:
        PathVizError: fewer than two groups.
    """
    g = np.asarray(groups, dtype=object)
    labels = sorted(pd.unique(g), key=str)
    if len(labels) < 2:
        raise PathVizError("A log-rank test needs at least two groups with patients.", "choose another grouping or cut-off.")
    res = multivariate_logrank_test(np.asarray(time, float), g, np.asarray(event, int))
    _, O, E, _ = _o_e_v(time, event, groups)
    return LogRankResult(
        chi2=float(res.test_statistic), df=len(labels) - 1, p_value=float(res.p_value),
        observed={str(lab): float(o) for lab, o in zip(labels, O)},
        expected={str(lab): float(x) for lab, x in zip(labels, E)},
    )


def log_rank_trend(time, event, groups, scores: dict | None = None) -> LogRankResult:
    """Log-rank test for trend across ordered groups.

    Args:
        scores: group -> numeric score (default: 1, 2, ... in sorted group order, or the group
            labels themselves when they are numbers).
    """
    labels, O, E, V = _o_e_v(time, event, groups)
    if scores is None:
        try:
            w = np.array([float(lab) for lab in labels])
        except (TypeError, ValueError):
            w = np.arange(1, len(labels) + 1, dtype=float)
    else:
        w = np.array([float(scores[lab]) for lab in labels])
    U = float(w @ (O - E))
    var = float(w @ V @ w)
    if var <= 0:
        raise PathVizError("The trend test has zero variance (no events at risk in two groups).", "check the groups.")
    stat = U * U / var
    return LogRankResult(chi2=stat, df=1, p_value=float(chi2.sf(stat, 1)),
                         observed={str(lab): float(o) for lab, o in zip(labels, O)},
                         expected={str(lab): float(x) for lab, x in zip(labels, E)})
