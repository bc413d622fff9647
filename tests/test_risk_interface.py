"""One risk-model interface: every survival model derives from RiskModel with its signatures, and
every predict_survival_function is a proper survival curve from the shared Breslow baseline."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

from pathviz.genomics import GeneSet, GeneSetLibrary
from pathviz.nn import TrainConfig
from pathviz.risk import CoxnetRiskModel, RiskModel, StoredRiskModel, fit_breslow
from pathviz.risk.coxpasnet import CoxPASNetModel

IMPLEMENTATIONS = {CoxnetRiskModel, StoredRiskModel, CoxPASNetModel}
TIMES = np.array([0.0, 1.0, 3.0, 6.0, 12.0, 24.0, 48.0, 1000.0])


def _subclasses(cls) -> set:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _subclasses(sub)
    return out


def test_every_model_implements_the_interface():
    assert _subclasses(RiskModel) == IMPLEMENTATIONS  # a new model is added here and checked below
    assert inspect.isabstract(RiskModel)
    for cls in IMPLEMENTATIONS:
        assert issubclass(cls, RiskModel) and not inspect.isabstract(cls)
        for name in ("fit", "predict_risk", "predict_survival_function"):
            ours = list(inspect.signature(getattr(cls, name)).parameters)
            assert ours == list(inspect.signature(getattr(RiskModel, name)).parameters), (cls.__name__, name, ours)


def _data(n: int = 160, seed: int = 0):
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(40)]
    omics = pd.DataFrame(rng.normal(size=(n, len(genes))), columns=genes, index=[f"P{i:03d}" for i in range(n)])
    lp = omics[genes[:8]].mean(axis=1).to_numpy() * np.sqrt(8)
    age = rng.normal(60, 10, n)
    t, c = rng.exponential(20 * np.exp(-lp)), rng.uniform(5, 60, n)
    clinical = pd.DataFrame({"time": np.minimum(t, c), "event": (t <= c).astype(int), "age": age}, index=omics.index)
    clinical.index.name = "patient_id"
    library = GeneSetLibrary([GeneSet(f"PW{k}", f"pathway {k}", genes[8 * k : 8 * k + 8]) for k in range(5)], "toy")
    return clinical, omics, library


def _fitted_models(clinical, omics, library, train):
    tr = clinical[train]
    coxnet = CoxnetRiskModel(["age"], use_genes=True, max_genes=20).fit(tr, omics, tr["time"], tr["event"])
    cpn = CoxPASNetModel(library, ["age"], grid={"lr": (1e-2,), "l2": (1e-3,)}, device="cpu", n_members=1,
                         config=TrainConfig(max_epochs=20, patience=10, seed=0), min_coverage=0.5)
    cpn.fit(tr, omics, tr["time"], tr["event"])
    table = clinical.assign(prognostic_index=omics["G0"] + omics["G1"], split=np.where(train, "train", "test"))
    stored = StoredRiskModel(table, "stored", "", 0.6)
    return [coxnet, cpn, stored]


@pytest.fixture(scope="module")
def fitted():
    clinical, omics, library = _data()
    train = np.arange(len(clinical)) % 4 != 0
    return clinical, omics, train, _fitted_models(clinical, omics, library, train)


def test_survival_functions_are_survival_curves(fitted):
    clinical, omics, train, models = fitted
    test = clinical[~train]
    assert {type(m) for m in models} == IMPLEMENTATIONS
    for m in models:
        assert isinstance(m, RiskModel)
        risk = m.predict_risk(test, omics)
        assert risk.shape == (len(test),) and np.isfinite(risk).all()
        sf = m.predict_survival_function(test, omics, TIMES)
        assert sf.shape == (len(test), len(TIMES)), type(m).__name__
        assert np.all((sf >= 0) & (sf <= 1)), type(m).__name__
        assert np.all(np.diff(sf, axis=1) <= 0), type(m).__name__
        assert np.all(sf[:, 0] == 1.0)  # no event before the first follow-up time
        assert sf[:, -1].max() < 1.0  # events happened
        # higher risk, lower survival
        hi, lo = int(np.argmax(risk)), int(np.argmin(risk))
        assert np.all(sf[hi] <= sf[lo] + 1e-12)


def test_survival_uses_the_shared_breslow_baseline_of_the_training_rows(fitted):
    clinical, omics, train, models = fitted
    tr, test = clinical[train], clinical[~train]
    for m in models:
        ref = fit_breslow(m.predict_risk(tr, omics), tr["time"], tr["event"]).survival_function(m.predict_risk(test, omics), TIMES)
        np.testing.assert_allclose(m.predict_survival_function(test, omics, TIMES), ref, rtol=1e-9, atol=1e-12)
