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
    """Observed and expected events per group and the covariance of O - E (hypergeometric,
    summed over distinct event times), vectorised over event times."""
    t = np.asarray(time, float)
    e = np.asarray(event, int)
    g = np.asarray(groups, dtype=object)
    labels = sorted(pd.unique(g), key=str)
    if len(labels) < 2:
        raise PathVizError("A log-rank test needs at least two groups with patients.", "choose another grouping or cut-off.")
    code = np.searchsorted(np.array(labels, dtype=object), g) if all(isinstance(x, str) for x in labels) else \
        np.array([labels.index(x) for x in g])
    k = len(labels)
    event_times = np.unique(t[e == 1])
    # at risk at each event time: patients with t >= s, per group (reverse cumulative counts)
    order = np.argsort(t, kind="stable")
    ts, cs = t[order], code[order]
    first = np.searchsorted(ts, event_times, side="left")
    onehot = np.zeros((len(t) + 1, k))
    onehot[np.arange(len(t)), cs] = 1.0
    rev = np.cumsum(onehot[::-1], axis=0)[::-1]  # rev[i] = counts over positions >= i
    n_g = rev[first]  # [m, k]
    ev_idx = np.flatnonzero(e == 1)
    d_g = np.zeros((len(event_times), k))
    np.add.at(d_g, (np.searchsorted(event_times, t[ev_idx]), code[ev_idx]), 1.0)
    n = n_g.sum(axis=1)
    d = d_g.sum(axis=1)
    O = d_g.sum(axis=0)
    E = (d[:, None] * n_g / n[:, None]).sum(axis=0)
    ok = n > 1
    f = np.zeros_like(n)
    f[ok] = d[ok] * (n[ok] - d[ok]) / (n[ok] - 1) / n[ok]
    V = np.diag((f[:, None] * n_g).sum(axis=0)) - np.einsum("m,mi,mj->ij", f / np.where(n > 0, n, 1), n_g, n_g)
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
