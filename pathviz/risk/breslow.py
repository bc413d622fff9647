"""The Breslow baseline hazard shared by every PathViz risk model.

Breslow's estimator (Breslow, discussion of Cox 1972, JRSS B 34; "Covariance analysis of censored
survival data", Biometrics 1974) of the cumulative baseline hazard for a fitted prognostic index
``r`` (log relative hazard)::

    H0(t) = sum over distinct event times u <= t of  d(u) / sum_{j: T_j >= u} exp(r_j)

with ``d(u)`` the number of events at ``u`` (tied events share one risk set: Breslow's handling of
ties, as in lifelines' ``CoxPHFitter(baseline_estimation_method="breslow")``, its default; checked
in ``tests/test_breslow.py``). The estimator itself is scikit-survival's :class:`sksurv.linear_model.coxph.BreslowEstimator`;
this module adds

* a shift for numerical stability: the baseline is fitted on ``r - shift`` with ``shift = max(r)``,
  so ``exp`` never overflows, and ``S(t | r) = exp(-H0(t) exp(r - shift))`` (the same survival
  function; ``H0`` is the baseline of a patient with ``r = shift``);
* right-continuous step evaluation at any time: ``H0(t) = 0`` before the first observed time (a
  survival curve starts at 1) and the last value after the last one. scikit-survival's
  ``StepFunction`` instead returns its first value for ``t`` below the first observed time and
  refuses times past the last one.

:class:`~pathviz.risk.coxnet.CoxnetRiskModel`, :class:`~pathviz.risk.stored.StoredRiskModel` and
:class:`~pathviz.risk.coxpasnet.CoxPASNetModel` all fit their baseline with :func:`fit_breslow`
on their training patients' prognostic index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BreslowBaseline:
    """A fitted Breslow baseline (see module docstring).

    Attributes:
        times: ``float[k]`` the distinct observed times of the fitting patients, ascending (months
            for PathViz cohorts; any unit, as long as prediction times use the same).
        cumhaz: ``float[k]`` cumulative baseline hazard ``H0`` at ``times`` for ``risk = shift``
            (non-decreasing; flat at censoring-only times).
        shift: the prognostic index the baseline refers to (the fitting patients' maximum).
    """

    times: np.ndarray
    cumhaz: np.ndarray
    shift: float

    def baseline_cumulative_hazard(self, times) -> np.ndarray:
        """``H0(t)`` for ``risk = shift`` at ``times``: ``float[len(times)]``, 0 before the first
        observed time, the last value after the last one."""
        t = np.atleast_1d(np.asarray(times, float))
        idx = np.searchsorted(self.times, t, side="right") - 1
        return np.where(idx >= 0, self.cumhaz[np.clip(idx, 0, None)], 0.0) if len(self.times) else np.zeros(len(t))

    def cumulative_hazard(self, risk, times) -> np.ndarray:
        """``H(t | r) = H0(t) exp(r - shift)``: ``float[n, len(times)]`` for ``risk`` ``float[n]``."""
        r = np.atleast_1d(np.asarray(risk, float))
        return np.outer(np.exp(r - self.shift), self.baseline_cumulative_hazard(times))

    def survival_function(self, risk, times) -> np.ndarray:
        """``S(t | r) = exp(-H(t | r))``: ``float[n, len(times)]``, each row in [0, 1] and
        non-increasing in ``t`` when ``times`` ascend."""
        return np.exp(-self.cumulative_hazard(risk, times))

    def baseline_survival(self, times, risk: float = 0.0) -> np.ndarray:
        """``S0(t) = exp(-H0(t) exp(risk - shift))`` of a patient with prognostic index ``risk``
        (default 0, the usual "baseline" patient): ``float[len(times)]``."""
        return self.survival_function([risk], times)[0]

    def to_dict(self) -> dict:
        """JSON-ready ``{"times", "cumhaz", "shift"}`` (the layout Cox-PASNet's model.json stores)."""
        return {"times": self.times.tolist(), "cumhaz": self.cumhaz.tolist(), "shift": float(self.shift)}

    @classmethod
    def from_dict(cls, d: dict) -> "BreslowBaseline":
        """Inverse of :meth:`to_dict` (also reads baselines stored with event times only)."""
        return cls(np.asarray(d["times"], float), np.asarray(d["cumhaz"], float), float(d["shift"]))


def fit_breslow(risk, time, event) -> BreslowBaseline:
    """Fit the Breslow baseline of a prognostic index on the patients that fitted the model.

    Args:
        risk: ``float[n]`` prognostic index (log relative hazard; higher = worse) of those patients.
        time: ``float[n]`` follow-up (months for PathViz cohorts).
        event: ``int[n]`` / ``bool[n]`` 1 = event, 0 = censored.

    Returns:
        :class:`BreslowBaseline` (scikit-survival's ``BreslowEstimator`` on ``risk - max(risk)``).

    Raises:
        ValueError: empty input, arrays of different lengths, or non-finite ``risk`` / ``time``.
    """
    from sksurv.linear_model.coxph import BreslowEstimator

    r = np.asarray(risk, float).ravel()
    t = np.asarray(time, float).ravel()
    e = np.asarray(event).ravel().astype(bool)
    if not (len(r) == len(t) == len(e)):
        raise ValueError(f"risk, time and event differ in length ({len(r)}, {len(t)}, {len(e)}).")
    if len(r) == 0:
        raise ValueError("No patients to fit the Breslow baseline on.")
    if not (np.isfinite(r).all() and np.isfinite(t).all()):
        raise ValueError("The prognostic index and the times must be finite to fit the Breslow baseline.")
    shift = float(r.max())
    est = BreslowEstimator().fit(r - shift, e, t)
    H = est.cum_baseline_hazard_
    return BreslowBaseline(np.asarray(H.x, float), np.asarray(H.y, float), shift)
