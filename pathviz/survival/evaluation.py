"""Held-out evaluation recorded with every trained model version: time-dependent AUC and
calibration by risk group.

Two figures beside the held-out C-index, both computed on held-out patients only (the training
patients enter only through the censoring distribution of the IPCW weights and, for the
predicted survival, through the model's Breslow baseline):

* :func:`time_dependent_auc` -- the cumulative/dynamic AUC(t): how well the prognostic index
  separates the patients with an event by ``t`` (cumulative cases) from those still event-free
  after ``t`` (dynamic controls), cases weighted by the inverse probability of censoring (IPCW).
  Uno, Cai, Tian & Wei (2007), "Evaluating prediction rules for t-year survivors with censored
  regression models", JASA 102; Hung & Chiang (2010), "Estimation methods for time-dependent AUC
  models with survival data", Can J Stat 38; as implemented in scikit-survival
  (:func:`sksurv.metrics.cumulative_dynamic_auc`), which this module calls.
* :func:`calibration_by_risk_group` -- grouped calibration at a fixed time: the held-out patients
  are split into tertiles of predicted risk and, per group, the mean predicted survival at ``t``
  is set beside the Kaplan-Meier observed survival at ``t`` (with its 95% CI), as in Royston &
  Altman (2013), "External validation of a Cox prognostic model: principles and methods", BMC Med
  Res Methodol 13:33 (see also Steyerberg, *Clinical Prediction Models*, ch. 15).

Times are in months throughout (PathViz cohorts' unit): months in, months out.

:func:`held_out_evaluation` computes both for a training job, each behind its own guard, and
returns the JSON-ready ``metrics["td_auc"]`` / ``metrics["calibration"]`` entries that
:func:`pathviz.report.models.compare_versions` reads.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from pathviz.errors import PathVizError

#: Percentiles of the held-out event times used as the default AUC evaluation times.
DEFAULT_AUC_PERCENTILES = (25, 50, 75)
#: Group names for the default three groups (tertiles of predicted risk).
TERTILE_NAMES = ("low", "intermediate", "high")

_FIX = "check that time (months, >= 0), event (0/1) and the risks/predictions are finite arrays of one length per patient."


def _float_or_none(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def _survival_arrays(time, event, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``(float[n] time, bool[n] event)`` checked: same length, non-empty, finite, >= 0, 0/1 events."""
    t = np.asarray(time, float).ravel()
    e_raw = np.asarray(event).ravel()
    if len(t) != len(e_raw):
        raise PathVizError(f"The {what} times and events differ in length ({len(t)} vs {len(e_raw)}).", _FIX)
    if len(t) == 0:
        raise PathVizError(f"No {what} patients to evaluate on.", _FIX)
    if not np.isfinite(t).all() or (t < 0).any():
        raise PathVizError(f"The {what} times must be finite and non-negative (months).", _FIX)
    try:
        e_num = e_raw.astype(float)
    except (TypeError, ValueError):
        raise PathVizError(f"The {what} events must be 0/1 (or booleans).", _FIX) from None
    if not np.isin(e_num, (0.0, 1.0)).all():
        raise PathVizError(f"The {what} events must be 0/1 (or booleans).", _FIX)
    return t, e_num.astype(bool)


def _values(x, n: int, what: str) -> np.ndarray:
    v = np.asarray(x, float).ravel()
    if len(v) != n:
        raise PathVizError(f"{what} has {len(v)} values for {n} held-out patients.", _FIX)
    if not np.isfinite(v).all():
        raise PathVizError(f"{what} must be finite for every held-out patient.", _FIX)
    return v


def _empty_auc(note: str, n: int, events: int) -> dict:
    return {"times": [], "auc": [], "mean_auc": None, "n": n, "events": events, "note": note}


def time_dependent_auc(time_train, event_train, time_test, event_test, risk_test, times=None) -> dict:
    """Cumulative/dynamic AUC(t) of a prognostic index on held-out patients.

    Uno et al. (2007) / Hung & Chiang (2010), as implemented in scikit-survival's
    :func:`sksurv.metrics.cumulative_dynamic_auc`: cases are held-out patients with an event at
    or before ``t`` (weighted by ``1 / G(T_i)``, ``G`` the Kaplan-Meier estimate of the censoring
    distribution fitted on the *training* patients), controls those with follow-up beyond ``t``.

    Args:
        time_train: ``float[m]`` follow-up of the training patients (months); only used for the
            censoring distribution ``G``.
        event_train: ``int[m]`` / ``bool[m]`` 1 = event, 0 = censored.
        time_test, event_test: ``float[n]``, ``int[n]`` the held-out patients.
        risk_test: ``float[n]`` prognostic index of the held-out patients (higher = worse).
        times: evaluation times (months) or None. None: the 25th, 50th and 75th percentiles of the
            held-out event times, each clipped into the valid range below (to its nearest end;
            duplicates after clipping are merged). Given times outside the valid range are dropped
            and named in ``note``.

    Valid evaluation times ``t`` satisfy ``first held-out event time <= t < upper``, with
    ``upper = min(largest training time, largest held-out time)``: below the first event there is
    no case; at or beyond ``upper`` there is no control, or ``G`` is undefined (scikit-survival
    raises). Held-out follow-up beyond the largest training time is administratively censored
    there before the call (``G`` is unknown past it); this changes no AUC(t) at a valid ``t``:
    such patients are controls at every valid ``t`` either way and controls carry no weight.

    Returns:
        JSON-ready ``{"times": [months], "auc": [float], "mean_auc": float | None, "n": int,
        "events": int}`` (``mean_auc``: scikit-survival's mean of AUC(t) weighted by the held-out
        Kaplan-Meier decrease over ``times``; with one time, AUC at that time), plus ``"note"``
        when times were dropped. When no time is valid (no held-out event, no spread in the
        held-out times, follow-up that does not overlap the training follow-up):
        ``{"times": [], "auc": [], "mean_auc": None, "n", "events", "note": <why>}``.

    Raises:
        PathVizError: arrays of different lengths, empty arrays, non-finite or negative times,
            events other than 0/1, non-finite risks, or scikit-survival refusing the data anyway.
    """
    from sksurv.metrics import cumulative_dynamic_auc
    from sksurv.util import Surv

    t_tr, e_tr = _survival_arrays(time_train, event_train, "training")
    t_te, e_te = _survival_arrays(time_test, event_test, "held-out")
    risk = _values(risk_test, len(t_te), "The held-out risk")
    n, events = len(t_te), int(e_te.sum())
    if events == 0:
        return _empty_auc("no time-dependent AUC: no event among the held-out patients (no case at any time).", n, events)
    # administrative censoring of held-out follow-up at the last training time (see docstring)
    train_max = float(t_tr.max())
    e_te = e_te & (t_te < train_max)
    t_te = np.minimum(t_te, train_max)
    ev_times = np.sort(t_te[e_te])
    upper = min(train_max, float(t_te.max()))
    ev_valid = ev_times[ev_times < upper]
    if len(ev_valid) == 0:
        if len(ev_times) == 0:
            why = (f"every held-out event lies at or beyond the last training follow-up ({train_max:g} months), where the "
                   "censoring distribution is unknown")
        else:
            why = "the held-out times have no spread: no held-out patient is followed beyond the first held-out event"
        return _empty_auc(f"no time-dependent AUC: {why}.", n, events)
    lo, hi_event = float(ev_valid[0]), float(ev_valid[-1])
    note = None
    if times is None:
        pct = np.percentile(np.asarray(time_test, float)[np.asarray(event_test).astype(bool)], DEFAULT_AUC_PERCENTILES)
        use = np.unique(np.clip(pct, lo, hi_event))
    else:
        asked = np.unique(np.asarray(times, float).ravel())
        ok = np.isfinite(asked) & (asked >= lo) & (asked < upper)
        use = asked[ok]
        if (~ok).any():
            note = (f"dropped times {[float(x) for x in asked[~ok]]} months: outside the valid range "
                    f"[{lo:g}, {upper:g}) (first held-out event to the end of the shared follow-up).")
        if len(use) == 0:
            return _empty_auc("no time-dependent AUC: " + (note or "no evaluation time given."), n, events)
    try:
        auc, mean_auc = cumulative_dynamic_auc(Surv.from_arrays(event=e_tr, time=t_tr), Surv.from_arrays(event=e_te, time=t_te),
                                               risk, use)
    except ValueError as exc:  # should not happen after the checks above; never leak a raw traceback
        raise PathVizError(f"Time-dependent AUC not estimable: {exc}.",
                           "evaluate at times inside both the training and the held-out follow-up.") from None
    out = {"times": [float(x) for x in use], "auc": [_float_or_none(a) for a in np.atleast_1d(auc)],
           "mean_auc": _float_or_none(mean_auc), "n": n, "events": events}
    if note:
        out["note"] = note
    return out


def default_calibration_time(time_test) -> float:
    """The default calibration time: the *simple median of the observed held-out times* (events
    and censorings alike, months). Chosen over the reverse Kaplan-Meier median follow-up
    (Schemper & Smith 1996) because it is always defined and about half the held-out patients
    are still under follow-up there, so each group's Kaplan-Meier estimate is supported; the
    reverse-KM median is longer and can be undefined."""
    t = np.asarray(time_test, float).ravel()
    if len(t) == 0 or not np.isfinite(t).all():
        raise PathVizError("No finite held-out times to take the median follow-up of.", _FIX)
    return float(np.median(t))


def risk_group_names(groups: int) -> list[str]:
    """``["low", "intermediate", "high"]`` for 3 groups, ``["low", "high"]`` for 2, else ``Q1..Qk``."""
    if groups == 3:
        return list(TERTILE_NAMES)
    if groups == 2:
        return ["low", "high"]
    return [f"Q{i + 1}" for i in range(groups)]


def calibration_by_risk_group(time_test, event_test, risk_test, surv_pred_at_t, t: float | None = None,
                              groups: int = 3) -> dict:
    """Grouped calibration at a fixed time (Royston & Altman 2013): mean predicted vs Kaplan-Meier
    observed survival at ``t`` in groups of predicted risk, on held-out patients.

    Groups: cut-offs are the ``k / groups`` quantiles (``k = 1 .. groups - 1``; numpy's default
    linear interpolation) of the *held-out* risks themselves, so the default 3 groups are tertiles
    of the held-out patients; a patient whose risk equals a cut-off goes to the lower group.
    Observed survival: lifelines :class:`~lifelines.KaplanMeierFitter` of each group at ``t``
    (step function, value at the last time ``<= t``) with its pointwise 95% CI (lifelines'
    exponential Greenwood / log-log interval).

    Args:
        time_test: ``float[n]`` held-out follow-up (months).
        event_test: ``int[n]`` / ``bool[n]`` 1 = event, 0 = censored.
        risk_test: ``float[n]`` prognostic index (higher = worse) that defines the groups.
        surv_pred_at_t: ``float[n]`` the model's predicted survival probability at ``t`` for the
            same patients, in [0, 1].
        t: calibration time (months); None: :func:`default_calibration_time` (simple median of
            the held-out observed times).
        groups: number of risk groups (>= 2; default 3 = tertiles).

    Returns:
        JSON-ready ``{"time": t, "groups": [names, lowest risk first], "cutoffs": [risk],
        "predicted": [mean predicted S(t)], "observed": [KM S(t)], "observed_lower": [..],
        "observed_upper": [..] (95% CI; None where lifelines gives none), "difference":
        [observed - predicted], "n": [patients], "events": [events], "at_risk": [patients with
        follow-up >= t]}``; positive differences mean the model is too pessimistic in the group.

    Raises:
        PathVizError: arrays of different lengths, empty or non-finite input, predictions outside
            [0, 1], ``t`` not finite or negative, ``groups < 2``, an empty group (too many tied
            risks for the cut-offs), or a group whose Kaplan-Meier curve is undefined at ``t``
            (all its follow-up censored before ``t``).
    """
    from lifelines import KaplanMeierFitter

    tt, ee = _survival_arrays(time_test, event_test, "held-out")
    n = len(tt)
    risk = _values(risk_test, n, "The held-out risk")
    pred = _values(surv_pred_at_t, n, "The predicted survival")
    if (pred < -1e-9).any() or (pred > 1 + 1e-9).any():
        raise PathVizError("The predicted survival probabilities must lie in [0, 1].",
                           "pass S(t | x) of the model at the calibration time, not a risk or a hazard.")
    groups = int(groups)
    if groups < 2:
        raise PathVizError(f"Calibration by risk group needs at least 2 groups (got {groups}).", "use groups=3 (tertiles).")
    t = default_calibration_time(tt) if t is None else float(t)
    if not np.isfinite(t) or t < 0:
        raise PathVizError(f"The calibration time must be a finite, non-negative number of months (got {t}).",
                           "leave it unset for the median held-out follow-up.")
    cuts = np.quantile(risk, np.arange(1, groups) / groups)
    label = np.searchsorted(cuts, risk, side="left")
    names = risk_group_names(groups)
    out = {"time": t, "groups": names, "cutoffs": [float(c) for c in cuts], "predicted": [], "observed": [],
           "observed_lower": [], "observed_upper": [], "difference": [], "n": [], "events": [], "at_risk": []}
    for k, name in enumerate(names):
        m = label == k
        if not m.any():
            raise PathVizError(f"The {name!r} risk group is empty: the held-out risks have too many ties for "
                               f"{groups} quantile groups.", "use fewer groups, or a model whose risks vary between patients.")
        kmf = KaplanMeierFitter(alpha=0.05).fit(tt[m], ee[m])
        sf = kmf.survival_function_.iloc[:, 0]
        ci = kmf.confidence_interval_
        i = int(np.searchsorted(sf.index.to_numpy(float), t, side="right")) - 1  # timeline starts at 0 <= t
        obs = float(sf.iloc[i])
        if tt[m].max() < t and obs > 0:
            raise PathVizError(f"The Kaplan-Meier survival of the {name!r} risk group is undefined at {t:g} months: "
                               f"its follow-up ends censored at {tt[m].max():g} months.",
                               "choose an earlier calibration time (default: the median held-out follow-up).")
        p = float(np.clip(pred[m], 0, 1).mean())
        out["predicted"].append(p)
        out["observed"].append(obs)
        out["observed_lower"].append(_float_or_none(ci.iloc[i, 0]))
        out["observed_upper"].append(_float_or_none(ci.iloc[i, 1]))
        out["difference"].append(obs - p)
        out["n"].append(int(m.sum()))
        out["events"].append(int(ee[m].sum()))
        out["at_risk"].append(int((tt[m] >= t).sum()))
    return out


def held_out_evaluation(time_train, event_train, time_test, event_test, risk_test,
                        predict_survival: Callable[[float], np.ndarray], t: float | None = None) -> dict:
    """Both figures for a training job, each behind its own guard.

    Args:
        time_train, event_train: the training patients (censoring distribution of the AUC's IPCW).
        time_test, event_test, risk_test: the held-out patients and their prognostic index.
        predict_survival: ``t -> float[n]`` (or ``float[n, 1]``) the model's predicted survival of
            the held-out patients at ``t`` months.
        t: calibration time; None: :func:`default_calibration_time`.

    Returns:
        ``{"td_auc": <time_dependent_auc>, "calibration": <calibration_by_risk_group>}``; an entry
        whose computation fails is ``{"note": "<why>"}`` instead (never raises).
    """
    out = {}
    try:
        out["td_auc"] = time_dependent_auc(time_train, event_train, time_test, event_test, risk_test)
    except Exception as exc:  # noqa: BLE001 -- an evaluation failure must never fail the training
        out["td_auc"] = {"note": f"time-dependent AUC not computed: {type(exc).__name__}: {exc}"}
    try:
        tc = default_calibration_time(time_test) if t is None else float(t)
        pred = np.asarray(predict_survival(tc), float).reshape(-1)
        out["calibration"] = calibration_by_risk_group(time_test, event_test, risk_test, pred, tc)
    except Exception as exc:  # noqa: BLE001
        out["calibration"] = {"note": f"calibration not computed: {type(exc).__name__}: {exc}"}
    return out
