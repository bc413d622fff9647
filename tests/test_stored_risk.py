"""A trained model's stored prognostic index as a risk model (PAGE-Net on the patient page):
Breslow baseline against lifelines, split mapping, and bad model folders."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter

from pathviz.cohort import Cohort, CohortError
from pathviz.errors import PathVizError
from pathviz.risk import StoredRiskModel
from pathviz.risk.stratify import stratify_by_risk


def _table(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t = rng.exponential(20 * np.exp(-0.8 * x))
    c = rng.uniform(5, 60, n)
    split = np.where(np.arange(n) % 5 == 0, "test", np.where(np.arange(n) % 5 == 1, "validation", "train"))
    return pd.DataFrame({"patient_id": [f"P{i:03d}" for i in range(n)], "split": split, "time": np.round(np.minimum(t, c), 2),
                         "event": (t <= c).astype(int), "x": x}).set_index("patient_id")


def test_survival_function_matches_lifelines_breslow():
    tab = _table()
    fit = tab[tab["split"] != "test"]
    cph = CoxPHFitter(baseline_estimation_method="breslow").fit(fit[["time", "event", "x"]], "time", "event")
    tab["prognostic_index"] = cph.params_["x"] * tab["x"]
    model = StoredRiskModel(tab, "test model", "", 0.7)
    # at event times (lifelines interpolates linearly between them; the Breslow estimate is a step function)
    times = np.sort(fit.loc[fit["event"] == 1, "time"].unique())[[2, 10, 30, 50]]
    ours = model.predict_survival_function(tab.iloc[:6], None, times)
    ref = cph.predict_survival_function(tab.iloc[:6][["x"]], times=times).to_numpy().T
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-9)


def test_split_mapping_and_stratification(tmp_path):
    tab = _table()
    tab["prognostic_index"] = tab["x"]
    clinical = tab[["time", "event"]].assign(age=60.0)
    cohort = Cohort(name="toy", clinical=clinical)
    model = StoredRiskModel(tab, "PAGE-Net", "", 0.7)
    strat = stratify_by_risk(cohort, model=model)
    assert (strat.table["split"] == "validation").sum() == (tab["split"] == "test").sum()  # held-out = test
    assert strat.metrics["harrell_c"] > 0.6  # the planted x drives risk
    other = Cohort(name="other", clinical=clinical.iloc[:50])
    with pytest.raises(CohortError, match="other patients"):
        stratify_by_risk(other, model=model)


def test_missing_or_broken_model_folder(tmp_path):
    with pytest.raises(PathVizError, match="No trained PAGE-Net model"):
        StoredRiskModel.from_pagenet(tmp_path)
    (tmp_path / "prognostic_index.csv").write_text("patient_id,split\nP1,train\n")
    (tmp_path / "metrics.json").write_text(json.dumps({"test_c_index": {}}))
    with pytest.raises(PathVizError, match="misses columns"):
        StoredRiskModel.from_pagenet(tmp_path)
    tab = _table()
    tab["prognostic_index"] = tab["x"]
    model = StoredRiskModel(tab, "PAGE-Net", "", 0.7)
    with pytest.raises(PathVizError, match="no score for 1 patient"):
        model.predict_risk(pd.DataFrame(index=["NOPE"]))
