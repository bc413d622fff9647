"""The shared Breslow baseline (pathviz.risk.breslow) against lifelines and against the formula."""

from __future__ import annotations

import numpy as np
import pytest
from lifelines import CoxPHFitter
from lifelines.datasets import load_rossi

from pathviz.risk.breslow import BreslowBaseline, fit_breslow


@pytest.fixture(scope="module")
def rossi():
    df = load_rossi()
    cph = CoxPHFitter().fit(df, "week", "arrest")
    return df, cph


def test_rossi_has_tied_event_times(rossi):
    df, cph = rossi
    assert df.loc[df.arrest == 1, "week"].value_counts().max() >= 3  # ties: the tie handling matters
    assert cph.baseline_estimation_method == "breslow"  # lifelines' default baseline


def test_baseline_and_predicted_survival_match_lifelines(rossi):
    df, cph = rossi
    lp = cph.predict_log_partial_hazard(df).to_numpy()  # lifelines centres covariates at their means
    base = fit_breslow(lp, df["week"], df["arrest"])
    # every distinct observed week: lifelines interpolates linearly between them, the Breslow
    # estimate is a step function, so they agree exactly there
    times = np.sort(df["week"].unique()).astype(float)
    ref0 = cph.baseline_survival_["baseline survival"].reindex(times).to_numpy()
    np.testing.assert_allclose(base.baseline_survival(times), ref0, rtol=1e-6)
    refH = cph.baseline_cumulative_hazard_["baseline cumulative hazard"].reindex(times).to_numpy()
    np.testing.assert_allclose(base.cumulative_hazard([0.0], times)[0], refH, rtol=1e-6)
    ref = cph.predict_survival_function(df.iloc[:40], times=times).to_numpy().T  # [patients, times]
    np.testing.assert_allclose(base.survival_function(lp[:40], times), ref, rtol=1e-6)


def test_ties_are_breslow_not_efron(rossi):
    """At a time with d tied events the hazard jump is d / (sum of exp(lp) over the risk set)
    (Breslow), not Efron's sum over l of 1 / (S0 - l/d * sum over the tied events)."""
    df, cph = rossi
    lp = cph.predict_log_partial_hazard(df).to_numpy()
    t, e, w = df["week"].to_numpy(float), df["arrest"].to_numpy(int), np.exp(lp)
    base = fit_breslow(lp, t, e)
    u = float(df.loc[df.arrest == 1, "week"].value_counts().idxmax())  # the most tied event time
    d = e[t == u].sum()
    s0, tied = w[t >= u].sum(), w[(t == u) & (e == 1)].sum()
    breslow_jump = d / s0
    efron_jump = sum(1.0 / (s0 - k / d * tied) for k in range(d))
    i = np.flatnonzero(base.times == u)[0]
    jump = (base.cumhaz[i] - base.cumhaz[i - 1]) * np.exp(-base.shift)  # per unit exp(lp), lp = 0
    assert jump == pytest.approx(breslow_jump, rel=1e-9)
    assert abs(jump - efron_jump) > 1e-6


def test_step_function_semantics_and_shift_invariance():
    risk = np.array([0.5, -1.0, 2.0, 0.0, 1.0])
    time = np.array([2.0, 3.0, 3.0, 5.0, 8.0])
    event = np.array([1, 1, 0, 0, 1])
    b = fit_breslow(risk, time, event)
    times = [-1.0, 0.0, 1.9, 2.0, 2.5, 3.0, 4.0, 8.0, 100.0]
    sf = b.survival_function(risk, times)
    assert sf.shape == (5, len(times))
    assert np.all(sf[:, :3] == 1.0)  # before the first observed time
    assert np.all(np.diff(sf, axis=1) <= 0) and np.all((sf >= 0) & (sf <= 1))
    np.testing.assert_array_equal(sf[:, -1], sf[:, -2])  # constant after the last time
    # by hand: H0(2) = 1 / sum(exp(r)); H0(3) adds 1 / sum over t >= 3; t = 5 censored; t = 8 adds 1 / exp(1)
    w = np.exp(risk)
    h = np.cumsum([1 / w.sum(), 1 / w[1:].sum(), 0.0, 1 / w[4]])
    np.testing.assert_allclose(b.cumulative_hazard([0.0], [2.0, 3.0, 5.0, 8.0])[0], h, rtol=1e-12)
    # adding a constant to every prognostic index changes nothing
    # (also where exp(r) overflows float64: the baseline is fitted on r - max(r))
    shifted = fit_breslow(risk + 800.0, time, event)
    np.testing.assert_allclose(shifted.survival_function(risk + 800.0, times), sf, rtol=1e-12)


def test_round_trip_and_errors():
    b = fit_breslow([0.1, 0.2, 0.3], [1.0, 2.0, 3.0], [1, 0, 1])
    back = BreslowBaseline.from_dict(b.to_dict())
    np.testing.assert_array_equal(back.survival_function([0.0, 1.0], [0.5, 1, 2, 3]), b.survival_function([0.0, 1.0], [0.5, 1, 2, 3]))
    with pytest.raises(ValueError, match="differ in length"):
        fit_breslow([0.1, 0.2], [1.0], [1])
    with pytest.raises(ValueError, match="finite"):
        fit_breslow([np.nan, 0.2], [1.0, 2.0], [1, 1])
    with pytest.raises(ValueError, match="No patients"):
        fit_breslow([], [], [])
