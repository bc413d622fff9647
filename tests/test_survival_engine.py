"""Survival engine behaviour beyond the R reference: planted signals, flags instead of NaNs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines.utils import concordance_index

from pathviz.cohort import Cohort, load_cohort
from pathviz.errors import PathVizError
from pathviz.risk import CoxnetRiskModel, fit_cohort_risk, train_validation_split
from pathviz.survival import (
    CutoffError,
    fit_cutoff,
    harrell_c,
    harrell_c_bootstrap,
    integrated_brier,
    km_by_group,
    marker_by_stratum,
    time_dependent_auc,
    treatment_by_stratum,
    uno_c,
)


def simulate(n=600, seed=0, beta=1.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t = rng.exponential(20 * np.exp(-beta * x))
    c = rng.exponential(40, n)
    return np.minimum(t, c), (t <= c).astype(int), x


def test_harrell_c_matches_lifelines_on_large_random_data():
    t, e, x = simulate(20_000, seed=1)
    assert harrell_c(t, e, x).c_index == pytest.approx(concordance_index(t, -x, e), abs=1e-12)


def test_harrell_c_extremes_and_errors():
    t = np.arange(1, 11, dtype=float)
    e = np.ones(10)
    assert harrell_c(t, e, -t).c_index == 1.0  # risk decreasing with time: perfect
    assert harrell_c(t, e, t).c_index == 0.0
    assert harrell_c(t, e, np.zeros(10)).c_index == 0.5
    with pytest.raises(PathVizError, match="NaN"):
        harrell_c(t, e, np.r_[np.nan, np.zeros(9)])
    with pytest.raises(PathVizError, match="one length"):
        harrell_c(t, e, np.zeros(3))


def test_bootstrap_ci_brackets_estimate():
    t, e, x = simulate(300)
    c, lo, hi = harrell_c_bootstrap(t, e, x, n_boot=200)
    assert lo < c < hi and 0.6 < c < 0.8 and hi - lo < 0.15


def test_optimal_cutoff_recovers_planted_threshold():
    rng = np.random.default_rng(3)
    n = 500
    x = rng.uniform(0, 100, n)
    hazard = np.where(x > 62, 4.0, 1.0)
    t = rng.exponential(10 / hazard)
    c = rng.exponential(30, n)
    cut = fit_cutoff(x, "optimal", np.minimum(t, c), (t <= c).astype(int), fitted_on="sim", n_permutations=99)
    assert abs(cut.values[0] - 62) < 5
    assert cut.p_value < 1e-6 and cut.p_value_permutation == pytest.approx(0.01)
    assert "fitted on sim" in cut.provenance()
    # applied unchanged to new scores
    assert list(cut.apply([0, 100, np.nan])) == ["low", "high", "missing"]


def test_cutoff_errors():
    x = np.arange(10.0)
    with pytest.raises(CutoffError, match="outside the data range"):
        fit_cutoff(x, "fixed", value=37.0)
    with pytest.raises(CutoffError, match="fewer than two distinct"):
        fit_cutoff(np.ones(5), "median")
    with pytest.raises(CutoffError, match="Unknown cut-off"):
        fit_cutoff(x, "best")
    assert fit_cutoff(x, "tertiles").labels == ["low", "intermediate", "high"]


def test_all_censored_group_and_group_of_one_are_flagged():
    t = np.array([5, 6, 7, 8, 9, 10, 11, 3.0])
    e = np.array([1, 1, 0, 1, 0, 0, 0, 1])
    g = np.array(["a", "a", "a", "a", "b", "b", "b", "c"], dtype=object)
    comp = km_by_group(t, e, g, reference="a")
    notes = " | ".join(comp.notes)
    assert "b: no events" in notes and "c: a group of one patient" in notes
    hr_b = next(h for h in comp.hazard_ratios if h.term.startswith("b"))
    assert hr_b.hr is None and "no events in group 'b'" in hr_b.note
    curve_b = next(c for c in comp.curves if c.group == "b")
    assert curve_b.median is None and set(curve_b.survival) == {1.0}


def test_one_group_only_is_explained():
    comp = km_by_group([1, 2, 3.0], [1, 0, 1], np.array(["high"] * 3, dtype=object))
    assert comp.logrank is None and any("only one group" in n for n in comp.notes)


def _planted_cohort(seed=0, n=400):
    """Marker prognostic only in the low-risk stratum; treatment helps only the high-risk one."""
    rng = np.random.default_rng(seed)
    high = rng.random(n) < 0.5
    marker = rng.lognormal(3.2, 1.0, n)
    treated = rng.random(n) < 0.5
    lp = 1.0 * high + 0.9 * ((marker > 37) & ~high) - 0.9 * (treated & high)
    t = rng.exponential(30 * np.exp(-lp))
    c = rng.exponential(60, n)
    strata = np.where(high, "high", "low").astype(object)
    return np.minimum(t, c), (t <= c).astype(int), strata, marker, treated.astype(int)


def test_marker_and_treatment_interactions_recovered():
    t, e, s, marker, treated = _planted_cohort()
    m = marker_by_stratum(t, e, s, marker, 37.0, "CA19-9")
    hr = {x.stratum: x.hazard_ratio for x in m.strata}
    assert hr["low"].hr > 1.7 and hr["low"].p_value < 0.01
    assert hr["high"].lower < 1.0 < hr["high"].upper
    assert m.interaction_p < 0.05
    tr = treatment_by_stratum(t, e, s, treated)
    hr = {x.stratum: x.hazard_ratio for x in tr.strata}
    assert hr["high"].hr < 0.6 and hr["high"].p_value < 0.01
    assert hr["low"].lower < 1.0 < hr["low"].upper
    assert tr.interaction_p < 0.05


def test_coxnet_recovers_planted_gene_and_predicts_survival():
    rng = np.random.default_rng(0)
    n, p = 300, 200
    genes = pd.DataFrame(rng.normal(size=(n, p)), columns=[f"G{i}" for i in range(p)],
                         index=[f"P{i}" for i in range(n)])
    lp = 1.2 * genes["G7"] - 0.8 * genes["G42"]
    t = rng.exponential(24 * np.exp(-lp))
    c = rng.exponential(48, n)
    clin = pd.DataFrame({"patient_id": genes.index, "time": np.minimum(t, c), "event": (t <= c).astype(int),
                         "age": rng.normal(60, 10, n)})
    cohort = Cohort("planted", clin, omics=genes)
    model, table = fit_cohort_risk(cohort, clinical=["age"], seed=1)
    top = list(model.selected_features().index[:2])
    assert set(top) == {"G7", "G42"}
    assert model.coef_["G7"] > 0 > model.coef_["G42"]
    val = table[table.split == "validation"]
    assert harrell_c(val.time, val.event, val.risk).c_index > 0.7
    sf = model.predict_survival_function(cohort.clinical, cohort.omics, [6, 12, 24])
    assert sf.shape == (n, 3) and np.all(np.diff(sf, axis=1) <= 1e-12) and np.all((sf >= 0) & (sf <= 1))
    tr = table.split == "training"
    aucs = time_dependent_auc(table.time[tr], table.event[tr], val.time, val.event, val.risk, [6, 12, 24])
    assert all(a > 0.65 for a in aucs.values())
    assert uno_c(table.time[tr], table.event[tr], val.time, val.event, val.risk) > 0.65
    ibs = integrated_brier(table.time[tr], table.event[tr], val.time, val.event,
                           model.predict_survival_function(cohort.clinical[table.split.eq("validation").to_numpy()],
                                                           cohort.omics, np.arange(3, 25, 3.0)), np.arange(3, 25, 3.0))
    assert 0 < ibs < 0.25


def test_split_is_stratified_and_cv_uses_training_only():
    c = load_cohort("gse1992")
    train, val = train_validation_split(c.event, 0.3, seed=0)
    assert abs(c.event[train].mean() - c.event[val].mean()) < 0.05
    m = CoxnetRiskModel(["age"], use_genes=False).fit(c.clinical[train], None, c.time[train], c.event[train])
    assert m.preprocessor_.mean_["age"] == pytest.approx(c.clinical.age[train].mean())
