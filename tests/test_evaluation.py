"""Time-dependent AUC and grouped calibration on held-out patients (pathviz.survival.evaluation)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sksurv.metrics import cumulative_dynamic_auc
from sksurv.util import Surv

from pathviz.errors import PathVizError
from pathviz.survival.evaluation import (
    calibration_by_risk_group,
    default_calibration_time,
    held_out_evaluation,
    time_dependent_auc,
)

BETA, H0, TAU = 1.5, 0.03, 60.0  # log-HR per SD, baseline hazard per month, end of study (months)


def simulate(n: int, seed: int):
    """Exponential survival, hazard H0 * exp(BETA * x), x ~ N(0, 1); independent censoring:
    uniform entry over 0..2*TAU, administratively censored at TAU (so both samples end at TAU)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t_event = rng.exponential(1.0 / (H0 * np.exp(BETA * x)))
    t_cens = np.minimum(rng.uniform(0, 2 * TAU, size=n), TAU)
    time = np.minimum(t_event, t_cens)
    event = (t_event <= t_cens).astype(int)
    return x, time, event


def true_survival(x, t):
    return np.exp(-H0 * t * np.exp(BETA * x))


@pytest.fixture(scope="module")
def train_test():
    return simulate(1500, seed=1), simulate(1500, seed=2)


# -- (a) time-dependent AUC -----------------------------------------------------------------------

def test_auc_planted_signal_matches_sksurv(train_test):
    (_, t_tr, e_tr), (x, t_te, e_te) = train_test
    risk = BETA * x
    res = time_dependent_auc(t_tr, e_tr, t_te, e_te, risk)
    assert len(res["times"]) == 3 and res["times"] == sorted(res["times"])
    q = np.percentile(t_te[e_te == 1], [25, 50, 75])
    np.testing.assert_allclose(res["times"], q)  # the default times, already inside the valid range
    assert all(a > 0.7 for a in res["auc"]), res
    ref_auc, ref_mean = cumulative_dynamic_auc(Surv.from_arrays(e_tr.astype(bool), t_tr),
                                               Surv.from_arrays(e_te.astype(bool), t_te), risk, res["times"])
    np.testing.assert_allclose(res["auc"], ref_auc, rtol=0, atol=1e-12)
    assert abs(res["mean_auc"] - ref_mean) < 1e-12
    assert res["n"] == 1500 and res["events"] == int(e_te.sum())
    json.dumps(res)  # JSON-ready


def test_auc_noise_is_near_half(train_test):
    (_, t_tr, e_tr), (_, t_te, e_te) = train_test
    noise = np.random.default_rng(3).normal(size=len(t_te))
    res = time_dependent_auc(t_tr, e_tr, t_te, e_te, noise)
    assert len(res["auc"]) == 3
    assert all(abs(a - 0.5) < 0.1 for a in res["auc"]), res


def test_auc_drops_times_outside_follow_up(train_test):
    (_, t_tr, e_tr), (x, t_te, e_te) = train_test
    res = time_dependent_auc(t_tr, e_tr, t_te, e_te, BETA * x, times=[12, 24, TAU, 500, -1])
    assert res["times"] == [12.0, 24.0]
    assert "dropped" in res["note"] and "500" in res["note"]
    none = time_dependent_auc(t_tr, e_tr, t_te, e_te, BETA * x, times=[TAU + 1])
    assert none["times"] == [] and none["auc"] == [] and none["mean_auc"] is None and none["note"]


def test_auc_test_follow_up_longer_than_training():
    """Held-out follow-up past the last training time (where scikit-survival raises) is censored
    there; AUC at times inside the training follow-up is unchanged."""
    (_, t_tr, e_tr), (x, t_te, e_te) = simulate(800, 4), simulate(800, 5)
    keep = t_tr < 40  # training follow-up ends before the held-out one
    with pytest.raises(ValueError):
        cumulative_dynamic_auc(Surv.from_arrays(e_tr[keep].astype(bool), t_tr[keep]),
                               Surv.from_arrays(e_te.astype(bool), t_te), BETA * x, [12.0])
    res = time_dependent_auc(t_tr[keep], e_tr[keep], t_te, e_te, BETA * x, times=[6, 12, 24, 50])
    assert res["times"] == [6.0, 12.0, 24.0] and all(a > 0.7 for a in res["auc"]) and "50" in res["note"]


# -- (b) calibration --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def big():
    return simulate(3000, seed=7)


def test_calibration_true_survival_is_calibrated(big):
    x, t, e = big
    tc = default_calibration_time(t)
    assert tc == pytest.approx(float(np.median(t)))
    res = calibration_by_risk_group(t, e, BETA * x, true_survival(x, tc))
    assert res["groups"] == ["low", "intermediate", "high"] and res["time"] == tc
    assert sum(res["n"]) == 3000 and all(abs(k - 1000) <= 1 for k in res["n"])
    assert all(abs(d) < 0.08 for d in res["difference"]), res
    for o, lo, hi, p, d in zip(res["observed"], res["observed_lower"], res["observed_upper"], res["predicted"],
                               res["difference"]):
        assert lo <= o <= hi and d == pytest.approx(o - p)
    assert res["predicted"][0] > res["predicted"][1] > res["predicted"][2]  # low risk survives longest
    json.dumps(res)


def test_calibration_detects_pessimistic_predictions(big):
    x, t, e = big
    tc = default_calibration_time(t)
    res = calibration_by_risk_group(t, e, BETA * x, true_survival(x, tc) ** 2, tc)
    assert all(d > 0.05 for d in res["difference"]), res


def test_calibration_observed_is_lifelines_km(big):
    from lifelines import KaplanMeierFitter

    x, t, e = big
    res = calibration_by_risk_group(t, e, BETA * x, true_survival(x, 12.0), 12.0)
    high = BETA * x > np.quantile(BETA * x, 2 / 3)
    km = KaplanMeierFitter().fit(t[high], e[high])
    assert res["observed"][2] == pytest.approx(float(km.predict(12.0)), abs=1e-12)


# -- (c) degenerate input ---------------------------------------------------------------------------

def test_auc_no_events_in_test_gives_documented_empty_result(train_test):
    (_, t_tr, e_tr), (x, t_te, _) = train_test
    res = time_dependent_auc(t_tr, e_tr, t_te, np.zeros(len(t_te), int), x)
    assert res["times"] == [] and res["auc"] == [] and res["mean_auc"] is None and "no event" in res["note"]


def test_auc_identical_times_gives_documented_empty_result(train_test):
    (_, t_tr, e_tr), _ = train_test
    res = time_dependent_auc(t_tr, e_tr, np.full(50, 12.0), np.r_[np.ones(25), np.zeros(25)], np.arange(50.0))
    assert res["times"] == [] and "no spread" in res["note"]
    res = time_dependent_auc(np.full(50, 12.0), np.ones(50), t_tr[:50] + 13, e_tr[:50], np.arange(50.0))
    assert res["times"] == [] and "training follow-up" in res["note"]


@pytest.mark.parametrize("args", [
    dict(time_test=[1.0, 2.0], event_test=[1], risk_test=[0.1, 0.2]),
    dict(time_test=[], event_test=[], risk_test=[]),
    dict(time_test=[1.0, np.nan], event_test=[1, 0], risk_test=[0.1, 0.2]),
    dict(time_test=[1.0, 2.0], event_test=[1, 2], risk_test=[0.1, 0.2]),
    dict(time_test=[1.0, 2.0], event_test=[1, 0], risk_test=[0.1, np.inf]),
    dict(time_test=[1.0, 2.0], event_test=[1, 0], risk_test=[0.1]),
])
def test_auc_bad_input_is_pathviz_error(args):
    with pytest.raises(PathVizError):
        time_dependent_auc([1.0, 2.0, 3.0], [1, 0, 1], **args)


def test_calibration_degenerate_input_is_pathviz_error(big):
    x, t, e = big
    with pytest.raises(PathVizError, match="empty"):  # tied risks: no tertiles
        calibration_by_risk_group(t, e, np.zeros(len(t)), np.full(len(t), 0.5), 12.0)
    with pytest.raises(PathVizError, match=r"\[0, 1\]"):
        calibration_by_risk_group(t, e, x, np.full(len(t), 1.5), 12.0)
    with pytest.raises(PathVizError, match="undefined"):  # beyond everyone's (censored) follow-up
        calibration_by_risk_group(t, e, x, np.full(len(t), 0.5), TAU + 10)
    with pytest.raises(PathVizError):
        calibration_by_risk_group(t, e, x, np.full(len(t) - 1, 0.5), 12.0)
    with pytest.raises(PathVizError):
        calibration_by_risk_group(np.full(9, 5.0), np.zeros(9), np.arange(9.0), np.full(9, 0.5), groups=1)


def test_held_out_evaluation_guards_failures(train_test):
    (_, t_tr, e_tr), (x, t_te, e_te) = train_test
    ok = held_out_evaluation(t_tr, e_tr, t_te, e_te, BETA * x, lambda tc: true_survival(x, tc))
    assert len(ok["td_auc"]["auc"]) == 3 and len(ok["calibration"]["difference"]) == 3
    assert ok["calibration"]["time"] == pytest.approx(float(np.median(t_te)))

    def broken(tc):
        raise RuntimeError("model exploded")

    bad = held_out_evaluation(t_tr, e_tr, t_te, e_te, np.full(len(t_te), np.nan), broken)
    assert set(bad["td_auc"]) == {"note"} and "finite" in bad["td_auc"]["note"]
    assert set(bad["calibration"]) == {"note"} and "model exploded" in bad["calibration"]["note"]
    json.dumps(bad)
