"""Cut-offs that turn a continuous score (risk, marker) into groups.

Methods: ``median``, ``tertiles``, ``quartiles``, ``fixed`` (a given value) and ``optimal``: the
maximally selected log-rank statistic (Lausen & Schumacher, Biometrics 1992; R ``maxstat`` with
``smethod = "LogRank"``), whose p-value is corrected for the search with the Lausen-Schumacher 1992
approximation (``pmethod = "Lau92"``) and, as a second method, by permutation. A cut-off is fitted
on one cohort (the training cohort) and applied unchanged to others; :class:`Cutoff` records where
it came from so the UI can say so.

maxstat with log-rank scores (as ``exactRankTests::cscores.Surv``): a_i = e_i - sum_{k <= r_i}
e_(k) / (N - r_(k) + 1), ranks r with ties at their maximum. For a cut after the m smallest values,
S_m = sum of their scores; E = m/N sum a, V = m(N - m) / (N^2 (N - 1)) (N sum a^2 - (sum a)^2);
M = max_m |S_m - E| / sqrt(V) over cut points with N*minprop <= m <= N*maxprop (distinct values).
Lau92: p = 4 phi(M) / M + phi(M) (M - 1/M) log(maxprop (1 - minprop) / ((1 - maxprop) minprop)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm, rankdata

from pathviz.errors import PathVizError
from pathviz.survival.analyses import p_label

METHODS = ("median", "tertiles", "quartiles", "fixed", "optimal")


class CutoffError(PathVizError):
    """A cut-off cannot be fitted or applied (outside the data range, too few values...)."""


@dataclass
class Cutoff:
    """A fitted cut-off.

    Attributes:
        method: one of :data:`METHODS`.
        values: cut points (ascending); a patient with score <= values[0] is in the first group.
        labels: group labels, ``len(values) + 1`` of them (``low``/``high`` for one cut).
        fitted_on: name of the cohort (or split) it was fitted on.
        n_fitted: patients it was fitted on.
        statistic, p_value, p_value_permutation: for ``optimal`` (maxstat M, Lau92 p,
            permutation p).
    """

    method: str
    values: list[float]
    labels: list[str]
    fitted_on: str
    n_fitted: int
    statistic: float | None = None
    p_value: float | None = None
    p_value_permutation: float | None = None
    notes: list[str] = field(default_factory=list)

    def apply(self, scores) -> np.ndarray:
        """Group label per score (object array). NaN scores get ``"missing"``."""
        s = np.asarray(scores, float)
        idx = np.searchsorted(np.asarray(self.values), s, side="left")
        out = np.asarray(self.labels, dtype=object)[np.minimum(idx, len(self.labels) - 1)]
        out[~np.isfinite(s)] = "missing"
        return out

    def provenance(self) -> str:
        """One line for the UI: method, cut points, where it was fitted and, for ``optimal``, the
        maxstat statistic and its Lau92 p (``"Lau92 corrected p = 0.012"``)."""
        vals = ", ".join(f"{v:.4g}" for v in self.values)
        text = f"{self.method} cut-off ({vals}) fitted on {self.fitted_on} (n={self.n_fitted})"
        if self.p_value is not None:
            text += f"; maxstat M={self.statistic:.3f}, {p_label(self.p_value, 'Lau92 corrected p')}"
        return text


def _labels(k: int) -> list[str]:
    return {1: ["low", "high"], 2: ["low", "intermediate", "high"], 3: ["Q1", "Q2", "Q3", "Q4"]}.get(
        k, [f"G{i + 1}" for i in range(k + 1)]
    )


def logrank_scores(time, event) -> np.ndarray:
    """Log-rank (Savage) scores of censored data, ties at maximum rank (see module docstring)."""
    t = np.asarray(time, float)
    e = np.asarray(event, float)
    n = len(t)
    ot = np.argsort(t, kind="stable")
    rt = rankdata(t, method="max").astype(int)
    fact = e / (n - rt + 1)
    cums = np.cumsum(fact[ot])
    return e - cums[rt - 1]


def maxstat(time, event, x, minprop: float = 0.1, maxprop: float = 0.9) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Maximally selected log-rank statistic.

    Returns:
        ``(M, cutpoint, cutpoints, statistics)``: the maximum standardized statistic, the value
        of x at which it is reached (groups ``x <= cutpoint`` vs ``x > cutpoint``), and all
        candidate cut points with their statistics.

    Raises:
        CutoffError: no candidate cut point between ``minprop`` and ``maxprop``.
    """
    x = np.asarray(x, float)
    a = logrank_scores(time, event)
    n = len(x)
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], a[order]
    first = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    m = first  # observations strictly below each distinct value (R: which(!ties) - 1)
    lo, hi = max(1, math.floor(n * minprop)), math.floor(n * maxprop)
    m = m[(m >= lo) & (m <= hi)]
    if m.size == 0:
        raise CutoffError(
            f"No cut-off leaves between {minprop:.0%} and {maxprop:.0%} of {n} patients on each side.",
            "the score has too few distinct values; use a fixed cut-off.",
        )
    ss = ys.sum()
    E = m / n * ss
    V = m * (n - m) / (n**2 * (n - 1)) * (n * np.sum(ys**2) - ss**2)
    stats = np.abs((np.cumsum(ys)[m - 1] - E) / np.sqrt(V))
    best = int(np.argmax(stats))
    return float(stats[best]), float(xs[m[best] - 1]), xs[m - 1], stats


def lausen92_p(M: float, minprop: float = 0.1, maxprop: float = 0.9) -> float:
    """Lausen & Schumacher (1992) approximation of the p-value of a maximally selected statistic."""
    if M < 1:
        return 1.0
    d = norm.pdf(M)
    p = 4 * d / M + d * (M - 1 / M) * math.log((maxprop * (1 - minprop)) / ((1 - maxprop) * minprop))
    return float(min(max(p, 0.0), 1.0))


def fit_cutoff(
    scores,
    method: str = "median",
    time=None,
    event=None,
    value: float | None = None,
    fitted_on: str = "training cohort",
    n_permutations: int = 0,
    seed: int = 0,
    minprop: float = 0.1,
    maxprop: float = 0.9,
) -> Cutoff:
    """Fit a cut-off on (training) scores.

    Args:
        scores: float[n] (NaN ignored).
        method: ``median``, ``tertiles``, ``quartiles``, ``fixed`` (needs ``value``) or ``optimal``
            (needs ``time`` and ``event``).
        n_permutations: for ``optimal``, also a permutation p-value with this many permutations.

    Raises:
        CutoffError: unknown method, fewer than two distinct scores, a fixed value outside the
            data range (everyone would be in one group), or a missing ``value``/``time``/``event``.
    """
    s = np.asarray(scores, float)
    ok = np.isfinite(s)
    s_ok = s[ok]
    if method not in METHODS:
        raise CutoffError(f"Unknown cut-off method {method!r}.", f"use one of {', '.join(METHODS)}.")
    if np.unique(s_ok).size < 2:
        raise CutoffError("The score has fewer than two distinct values; it cannot be split.", "choose another score.")
    n = int(ok.sum())
    if method == "median":
        vals = [float(np.median(s_ok))]
    elif method == "tertiles":
        vals = [float(v) for v in np.quantile(s_ok, [1 / 3, 2 / 3])]
    elif method == "quartiles":
        vals = [float(v) for v in np.quantile(s_ok, [0.25, 0.5, 0.75])]
    elif method == "fixed":
        if value is None or not np.isfinite(value):
            raise CutoffError("A fixed cut-off needs a value.", "give the threshold, e.g. 37 for CA19-9 in U/mL.")
        if not (s_ok.min() <= value < s_ok.max()):
            raise CutoffError(
                f"Cut-off {value:g} is outside the data range [{s_ok.min():.4g}, {s_ok.max():.4g}): every patient "
                "would fall in one group.",
                "choose a value inside the range.",
            )
        vals = [float(value)]
    else:
        if time is None or event is None:
            raise CutoffError("The optimal cut-off needs survival times and events.", "pass time and event.")
        t = np.asarray(time, float)[ok]
        e = np.asarray(event, int)[ok]
        M, cut, _, _ = maxstat(t, e, s_ok, minprop, maxprop)
        cutoff = Cutoff("optimal", [cut], _labels(1), fitted_on, n, statistic=M, p_value=lausen92_p(M, minprop, maxprop))
        if n_permutations:
            rng = np.random.default_rng(seed)
            exceed = sum(maxstat(t, e, rng.permutation(s_ok), minprop, maxprop)[0] >= M for _ in range(n_permutations))
            cutoff.p_value_permutation = (exceed + 1) / (n_permutations + 1)
        return cutoff
    vals = sorted(set(vals))
    return Cutoff(method, vals, _labels(len(vals)), fitted_on, n)
