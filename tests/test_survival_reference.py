"""PathViz statistics against R (survival 3.5, maxstat 0.7) on real cohorts.

Reference values: tests/fixtures/survival_reference.json, made by
tests/fixtures/make_survival_reference.py (R is not needed here). Tolerances:

* Kaplan-Meier S(t) and log-log 95% CI: 1e-8 absolute (where S(t) = 1 R leaves the CI undefined
  and PathViz reports [1, 1]); median survival and its CI: 1e-8;
* log-rank chi-square (two and k groups, trend): 1e-8 relative; p: 1e-8 relative;
* Cox hazard ratios and 95% CI (Efron ties): 1e-5 relative (Newton-Raphson stopping rules
  differ); Wald p: 1e-3 relative (a tiny p amplifies the last digits of z);
* Harrell's C: 1e-12 absolute; maxstat statistic, cut point and Lau92 p: 1e-9 relative.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
sys.path.insert(0, str(FIXTURES))

from survival_cases import cases  # noqa: E402

from pathviz.survival import (  # noqa: E402
    fit_cox,
    harrell_c,
    kaplan_meier,
    lausen92_p,
    log_rank,
    log_rank_trend,
    maxstat,
)

REF = json.loads((FIXTURES / "survival_reference.json").read_text())
CASES = {c["id"]: c for c in cases()}


def REF_KIND(cid: str) -> str:
    return next(k for k in ("km", "logrank", "cox", "cindex", "maxstat") if f"_{k}_" in cid)


def _case(cid):
    if cid not in CASES:
        pytest.skip(f"{cid}: cohort not available here (../shared/data absent)")
    return CASES[cid]


def _none_to_nan(v):
    return np.array([np.nan if x is None else x for x in v], float)


@pytest.mark.parametrize("cid", [k for k in REF if not k.startswith("_") and REF_KIND(k) == "km"])
def test_kaplan_meier_matches_r(cid):
    c = _case(cid)
    curves = {k.group: k for k in kaplan_meier(c["time"], c["event"], c["group"])}
    for group, ref in REF[cid].items():
        k = curves[group]
        assert (k.n, k.events) == (ref["n"], ref["events"])
        for t, s, lo, hi in zip(ref["times"], ref["surv"], ref["lower"], ref["upper"]):
            i = np.searchsorted(k.timeline, t, side="right") - 1
            assert k.survival[i] == pytest.approx(s, abs=1e-8)
            if lo is None:  # R leaves the log-log CI undefined while S(t) = 1; PathViz draws [1, 1]
                assert s == 1.0 and k.lower[i] == k.upper[i] == 1.0
                continue
            assert k.lower[i] == pytest.approx(lo, abs=1e-8)
            assert k.upper[i] == pytest.approx(hi, abs=1e-8)
        for mine, theirs in ((k.median, ref["median"][0]), (k.median_lower, ref["median_lower"][0]),
                             (k.median_upper, ref["median_upper"][0])):
            if theirs is None:
                assert mine is None
            else:
                assert mine == pytest.approx(theirs, abs=1e-8)


@pytest.mark.parametrize("cid", [k for k in REF if not k.startswith("_") and REF_KIND(k) == "logrank"])
def test_log_rank_matches_survdiff(cid):
    c = _case(cid)
    ref = REF[cid]
    res = log_rank(c["time"], c["event"], c["group"])
    assert res.df == ref["df"]
    assert res.chi2 == pytest.approx(ref["chi2"], rel=1e-8)
    assert res.p_value == pytest.approx(ref["p"], rel=1e-8)
    assert [res.observed[g] for g in ref["groups"]] == pytest.approx(ref["observed"], rel=1e-12)
    assert [res.expected[g] for g in ref["groups"]] == pytest.approx(ref["expected"], rel=1e-10)
    if ref["trend"] is not None:
        scores = {g: v for g, v in c["trend_scores"].items() if g in ref["groups"]}
        tr = log_rank_trend(c["time"], c["event"], c["group"], scores)
        assert tr.chi2 == pytest.approx(ref["trend"]["chi2"], rel=1e-8)
        assert tr.p_value == pytest.approx(ref["trend"]["p"], rel=1e-8)


@pytest.mark.parametrize("cid", [k for k in REF if not k.startswith("_") and REF_KIND(k) == "cox"])
def test_cox_matches_coxph(cid):
    c = _case(cid)
    ref = REF[cid]
    df = c["x"].copy()
    df["time"], df["event"] = c["time"], c["event"]
    table = fit_cox(df, list(c["x"].columns))
    got = {h.term.split(" (")[0]: h for h in table.terms}
    for i, term in enumerate(ref["terms"]):
        h = got[term]
        assert h.hr == pytest.approx(ref["hr"][i], rel=1e-5)
        assert h.lower == pytest.approx(ref["lower"][i], rel=1e-5)
        assert h.upper == pytest.approx(ref["upper"][i], rel=1e-5)
        assert h.p_value == pytest.approx(ref["p"][i], rel=1e-3, abs=1e-12)


@pytest.mark.parametrize("cid", [k for k in REF if not k.startswith("_") and REF_KIND(k) == "cindex"])
def test_harrell_c_matches_r_concordance(cid):
    c = _case(cid)
    ref = REF[cid]
    res = harrell_c(c["time"], c["event"], c["risk"])
    assert res.c_index == pytest.approx(ref["c"], abs=1e-12)
    assert res.concordant == ref["concordant"]
    assert res.discordant == ref["discordant"]
    assert res.tied_risk == ref["tied_x"]


@pytest.mark.parametrize("cid", [k for k in REF if not k.startswith("_") and REF_KIND(k) == "maxstat"])
def test_maxstat_matches_r_maxstat_lau92(cid):
    c = _case(cid)
    ref = REF[cid]
    M, cut, _, _ = maxstat(c["time"], c["event"], c["risk"])
    assert M == pytest.approx(ref["statistic"], rel=1e-9)
    assert cut == pytest.approx(ref["cutpoint"], rel=1e-12)
    assert lausen92_p(M) == pytest.approx(ref["p"], rel=1e-9)


@pytest.mark.parametrize("cid", [k for k in REF if not k.startswith("_") and REF_KIND(k) == "cox"
                                 and len(REF[k]["terms"]) == 1])
def test_fast_single_covariate_efron_matches_coxph(cid):
    """The vectorised one-covariate Efron fit behind the KM panel's HR equals R coxph."""
    from pathviz.survival.cox import efron_single_hazard_ratio

    c = _case(cid)
    ref = REF[cid]
    beta, se = efron_single_hazard_ratio(c["time"], c["event"], c["x"].iloc[:, 0])
    assert np.exp(beta) == pytest.approx(ref["hr"][0], rel=1e-7)
    assert np.exp(beta - 1.959963984540054 * se) == pytest.approx(ref["lower"][0], rel=1e-6)
    assert np.exp(beta + 1.959963984540054 * se) == pytest.approx(ref["upper"][0], rel=1e-6)
