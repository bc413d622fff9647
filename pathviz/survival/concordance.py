"""Discrimination: Harrell's C (fast, exact), bootstrap CI, Uno's C, time-dependent AUC, IBS.

Harrell's C (Harrell et al., Stat Med 1996): over comparable pairs (patient i has an event and
patient j is still at risk after i's time: ``t_j > t_i``, or ``t_j == t_i`` with j censored),
the fraction where the higher risk belongs to i; risk ties count 1/2. This is the definition of
``lifelines.utils.concordance_index`` and scikit-survival's ``concordance_index_censored`` and, on
these pairs, of R ``survival::concordance``.

:func:`harrell_c` counts the pairs exactly in O(n log^2 n) with vectorised numpy: patients are
ordered by time (descending, censored before events at equal times) so that each event's
comparable set is a prefix of that order, and prefix dominance counts (how many in the prefix
have a lower risk) are computed level by level of a binary decomposition (CDQ divide and conquer).
Uno's C, time-dependent AUC and the integrated Brier score wrap scikit-survival.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pathviz.errors import PathVizError


@dataclass(frozen=True)
class Concordance:
    """Harrell's C with its pair counts: ``c_index = (concordant + ties / 2) / comparable``."""

    c_index: float
    concordant: int
    discordant: int
    tied_risk: int
    comparable: int


def _check(time, event, risk) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.asarray(time, dtype=float)
    e = np.asarray(event)
    r = np.asarray(risk, dtype=float)
    if not (t.shape == e.shape == r.shape) or t.ndim != 1:
        raise PathVizError(
            f"time, event and risk must be 1-D arrays of one length (got {t.shape}, {e.shape}, {r.shape}).",
            "pass one value per patient.",
        )
    if not (np.isfinite(t).all() and np.isfinite(r).all()):
        raise PathVizError("time or risk contains NaN/inf.", "drop patients without a time or a risk score.")
    if not np.isin(e, (0, 1, True, False)).all():
        raise PathVizError("event must be 0/1.", "recode the event column.")
    return t, e.astype(bool), r


def _prefix_less_counts(ranks: np.ndarray, qpos: np.ndarray, qrank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each query q: ``#{j < qpos[q]: ranks[j] < qrank[q]}`` and ``... <= qrank[q]``.

    ``ranks``: int64[n] dense ranks of the elements in order; ``qpos``: int64[m] in [0, n].
    """
    n = len(ranks)
    less = np.zeros(len(qpos), dtype=np.int64)
    leq = np.zeros(len(qpos), dtype=np.int64)
    if n == 0 or len(qpos) == 0:
        return less, leq
    span = int(ranks.max()) + 2
    epos = np.arange(n, dtype=np.int64)
    level = 0
    while (1 << level) <= n:
        # element j and query q meet at the level of the highest bit where j and qpos differ;
        # j < qpos means j has 0 and qpos has 1 there.
        e_left = ((epos >> level) & 1) == 0
        q_right = ((qpos >> level) & 1) == 1
        if e_left.any() and q_right.any():
            keys = np.sort((epos[e_left] >> (level + 1)) * span + ranks[e_left])
            qblock = (qpos[q_right] >> (level + 1)) * span
            base = np.searchsorted(keys, qblock, side="left")
            less[q_right] += np.searchsorted(keys, qblock + qrank[q_right], side="left") - base
            leq[q_right] += np.searchsorted(keys, qblock + qrank[q_right], side="right") - base
        level += 1
    return less, leq


def harrell_c(time, event, risk) -> Concordance:
    """Harrell's concordance index; a higher ``risk`` means a shorter expected survival.

    Args:
        time: float[n], follow-up (any unit).
        event: int[n] 0/1 (1 = event observed).
        risk: float[n] risk score (e.g. a prognostic index).

    Returns:
        :class:`Concordance` (``c_index`` is NaN only when there is no comparable pair).

    Raises:
        PathVizError: mismatched shapes, NaN, or events not 0/1.
    """
    t, e, r = _check(time, event, risk)
    # order: time descending; at equal times censored first (they are at risk at an event time)
    order = np.lexsort((e, -t))
    t_o, e_o = t[order], e[order]
    ranks = np.unique(r, return_inverse=True)[1].astype(np.int64)
    ranks_o = ranks[order]
    ev_idx = np.flatnonzero(e_o)
    # comparable prefix of an event = everyone with a later time + the censored at its time
    # = position of the first event at that time in this order
    neg_t = -t_o
    first_at_time = np.searchsorted(neg_t, neg_t[ev_idx], side="left")
    cens_cum = np.concatenate([[0], np.cumsum(~e_o)])
    n_cens_at_time = cens_cum[np.searchsorted(neg_t, neg_t[ev_idx], side="right")] - cens_cum[first_at_time]
    qpos = (first_at_time + n_cens_at_time).astype(np.int64)
    less, leq = _prefix_less_counts(ranks_o, qpos, ranks_o[ev_idx])
    comparable = int(qpos.sum())
    concordant = int(less.sum())
    tied = int((leq - less).sum())
    discordant = comparable - concordant - tied
    c = (concordant + 0.5 * tied) / comparable if comparable else float("nan")
    return Concordance(c, concordant, discordant, tied, comparable)


def harrell_c_bootstrap(time, event, risk, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> tuple[float, float, float]:
    """Harrell's C with a percentile bootstrap ``(1 - alpha)`` CI: ``(c, lower, upper)``.

    Patients are resampled with replacement ``n_boot`` times (seeded); resamples without a
    comparable pair are skipped.
    """
    t, e, r = _check(time, event, risk)
    rng = np.random.default_rng(seed)
    c0 = harrell_c(t, e, r).c_index
    boots = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(t), len(t))
        c = harrell_c(t[idx], e[idx], r[idx]).c_index
        if np.isfinite(c):
            boots.append(c)
    if not boots:
        return c0, float("nan"), float("nan")
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return c0, float(lo), float(hi)


def _surv_array(time, event):
    from sksurv.util import Surv

    return Surv.from_arrays(event=np.asarray(event).astype(bool), time=np.asarray(time, dtype=float))


def uno_c(train_time, train_event, test_time, test_event, risk, tau: float | None = None) -> float:
    """Uno's IPCW concordance (Uno et al., Stat Med 2011), censoring distribution estimated on
    the training cohort (scikit-survival ``concordance_index_ipcw``); ``tau`` truncates time."""
    from sksurv.metrics import concordance_index_ipcw

    return float(concordance_index_ipcw(_surv_array(train_time, train_event), _surv_array(test_time, test_event),
                                        np.asarray(risk, float), tau=tau)[0])


def time_dependent_auc(train_time, train_event, test_time, test_event, risk, times) -> dict[float, float]:
    """Cumulative/dynamic AUC at ``times`` (months) as ``{time: auc}``: the dict form of
    :func:`pathviz.survival.evaluation.time_dependent_auc` (IPCW-weighted, Uno 2007; Hung & Chiang
    2010; scikit-survival ``cumulative_dynamic_auc``), which drops times outside the follow-up."""
    from pathviz.survival.evaluation import time_dependent_auc as _auc

    r = _auc(train_time, train_event, test_time, test_event, risk, list(times))
    return dict(zip(map(float, r["times"]), map(float, r["auc"])))


def integrated_brier(train_time, train_event, test_time, test_event, surv_prob, times) -> float:
    """Integrated Brier score (Graf et al. 1999) over ``times`` from predicted survival
    ``surv_prob``: float[n_test, len(times)] (scikit-survival ``integrated_brier_score``)."""
    from sksurv.metrics import integrated_brier_score

    return float(integrated_brier_score(_surv_array(train_time, train_event), _surv_array(test_time, test_event),
                                        np.asarray(surv_prob, float), np.asarray(times, float)))
