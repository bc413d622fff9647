"""Cohorts where only part of the patients have RNA ("bring your own cohort"): every model with an
expression input leaves the patients without a profile out BEFORE splitting (default
``missing_omics="exclude"``) and counts them, imputes only when asked (and says so), never fails with
a raw KeyError, and refuses a cohort where nobody has RNA with a readable PathVizError."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pathviz.cohort import Cohort
from pathviz.errors import PathVizError
from pathviz.genomics import GeneSet, GeneSetLibrary
from pathviz.nn import TrainConfig
from pathviz.risk import CoxnetRiskModel, omics_coverage, omics_coverage_text, restrict_to_omics
from pathviz.risk.coxpasnet import CoxPASNetModel

QUICK = TrainConfig(max_epochs=15, patience=5, seed=0)


# -- cohorts -------------------------------------------------------------------------------------
def _synthetic(n: int = 220, with_rna: float = 0.55, seed: int = 0) -> tuple[Cohort, GeneSetLibrary]:
    """n patients, 40 genes, risk planted in G0..G7 (pathway PW0); only ``with_rna`` of them keep RNA."""
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(40)]
    ids = [f"P{i:03d}" for i in range(n)]
    omics = pd.DataFrame(rng.normal(size=(n, len(genes))), columns=genes, index=ids)
    lp = omics[genes[:8]].mean(axis=1).to_numpy() * np.sqrt(8)
    t, c = rng.exponential(20 * np.exp(-lp)), rng.uniform(5, 60, n)
    clinical = pd.DataFrame({"patient_id": ids, "time": np.minimum(t, c), "event": (t <= c).astype(int),
                             "age": rng.normal(60, 10, n)})
    keep = rng.permutation(n)[: int(round(with_rna * n))]
    library = GeneSetLibrary([GeneSet(f"PW{k}", f"pathway {k}", genes[8 * k: 8 * k + 8]) for k in range(5)], "toy")
    return Cohort("partial_synth", clinical, omics.iloc[np.sort(keep)]), library


def _without_rna(cohort: Cohort, name: str) -> Cohort:
    """The same clinical table with an empty expression matrix (no patient has RNA)."""
    return Cohort(name, cohort.clinical.reset_index(), cohort.omics.iloc[:0])


def _tcga_stad_partial(drop: float = 0.6, seed: int = 1) -> Cohort:
    from pathviz.cohort import load_cohort
    from pathviz.cohort.loaders import shared_data_dir

    if not (shared_data_dir() / "tcga" / "stad" / "clinical.csv").exists():
        pytest.skip("../shared/data (TCGA STAD) is absent")
    full = load_cohort("tcga_stad")
    rng = np.random.default_rng(seed)
    kept = np.sort(rng.permutation(full.n)[: int(round((1 - drop) * full.n))])
    return Cohort("tcga_stad_partial", full.clinical.reset_index(), full.omics.iloc[kept],
                  endpoints=full.endpoints, derived_outcomes=full.derived_outcomes, id_columns=full.id_columns,
                  allowed_covariates=full.allowed_covariates, centre=full.centre, treatment=full.treatment)


@pytest.fixture(scope="module")
def synth():
    return _synthetic()


# -- the coverage record -------------------------------------------------------------------------
def test_coverage_record_counts_and_text(synth):
    cohort, _ = synth
    n_rna = len(cohort.omics)
    keep, rec = omics_coverage(cohort.clinical, cohort.omics)
    assert keep.sum() == n_rna and rec["n_excluded_no_omics"] == cohort.n - n_rna == rec["n_no_omics"]
    assert rec["n_imputed_no_omics"] == 0 and rec["missing_omics"] == "exclude"
    assert omics_coverage_text(rec) == f"{cohort.n - n_rna} of {cohort.n} patients have no RNA and were left out (missing_omics=exclude)"
    keep, rec = omics_coverage(cohort.clinical, cohort.omics, "impute")
    assert keep.all() and rec["n_imputed_no_omics"] == cohort.n - n_rna and rec["n_excluded_no_omics"] == 0
    assert "imputed with training-row means (missing_omics=impute)" in omics_coverage_text(rec)
    sub, rec = restrict_to_omics(cohort)
    assert list(sub.clinical.index) == list(cohort.omics.index) and sub.outcome_columns == cohort.outcome_columns
    with pytest.raises(PathVizError, match="missing_omics='exclude'"):
        omics_coverage(cohort.clinical, cohort.omics, "drop")


# -- Cox-PASNet ----------------------------------------------------------------------------------
def test_coxpasnet_model_refuses_patients_without_rna_readably(synth):
    cohort, lib = synth
    m = CoxPASNetModel(lib, ["age"], grid={"lr": (1e-2,), "l2": (1e-3,)}, config=QUICK, device="cpu", n_members=1)
    with pytest.raises(PathVizError) as err:  # was a raw KeyError listing the barcodes
        m.fit(cohort.clinical, cohort.omics, cohort.time, cohort.event)
    text = str(err.value)
    n_no = cohort.n - len(cohort.omics)
    assert f"{n_no} of {cohort.n} training patients have no expression profile" in text and "Fix:" in text
    assert not any(pid in text for pid in cohort.clinical.index)  # a count, never the ids
    assert not isinstance(err.value, KeyError)


def test_coxpasnet_trains_on_exactly_the_patients_with_rna(synth, tmp_path):
    from pathviz.jobs.coxpasnet import train_pathway_model

    cohort, lib = synth
    model, metrics = train_pathway_model(cohort, lib, tmp_path / "m", seed=0, config=QUICK)
    n_rna, n_no = len(cohort.omics), cohort.n - len(cohort.omics)
    assert metrics["n_training"] + metrics["n_validation"] == n_rna
    assert metrics["n_excluded_no_omics"] == n_no and metrics["n_patients"] == cohort.n
    assert metrics["omics_note"] == f"{n_no} of {cohort.n} patients have no RNA and were left out (missing_omics=exclude)"
    assert isinstance(metrics["threads"], int) and metrics["threads"] >= 1
    pred = pd.read_csv(tmp_path / "m" / "validation_predictions.csv", dtype={"patient_id": str})
    assert set(pred["patient_id"]) <= set(cohort.omics.index)
    stored = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert stored["n_excluded_no_omics"] == n_no and "were left out" in (tmp_path / "m" / "MODEL_CARD.md").read_text()
    assert json.loads((tmp_path / "m" / "model.json").read_text())["missing_omics"] == "exclude"


def test_coxpasnet_imputes_only_when_asked_and_says_so(synth, tmp_path):
    from pathviz.jobs.coxpasnet import train_pathway_model

    cohort, lib = synth
    model, metrics = train_pathway_model(cohort, lib, tmp_path / "i", seed=0, config=QUICK, missing_omics="impute")
    n_no = cohort.n - len(cohort.omics)
    assert metrics["n_training"] + metrics["n_validation"] == cohort.n
    assert metrics["n_imputed_no_omics"] == n_no and metrics["n_excluded_no_omics"] == 0
    assert "imputed with training-row means" in metrics["omics_note"]
    assert any("missing_omics=impute" in note for note in model.notes_)
    risk = model.predict_risk(cohort.clinical, cohort.omics)
    assert np.isfinite(risk).all() and model.n_imputed_ == n_no


def test_coxpasnet_with_nobody_having_rna(synth, tmp_path):
    from pathviz.jobs.coxpasnet import train_pathway_model

    cohort, lib = synth
    with pytest.raises(PathVizError) as err:
        train_pathway_model(_without_rna(cohort, "no_rna"), lib, tmp_path / "x", config=QUICK)
    assert "none of its" in str(err.value) and "expression" in str(err.value) and err.value.fix


# -- elastic-net Cox -----------------------------------------------------------------------------
def test_elastic_net_excludes_patients_without_rna_before_the_split(synth):
    from pathviz.risk.stratify import stratify_by_risk

    cohort, _ = synth
    strat = stratify_by_risk(cohort, check_groups=False)
    n_no = cohort.n - len(cohort.omics)
    assert set(strat.table.index) == set(cohort.omics.index)  # no validation patient scored from imputed means
    m = strat.metrics
    assert m["n_training"] + m["n_validation"] == len(cohort.omics) and m["n_excluded_no_omics"] == n_no
    assert m["omics_note"] == omics_coverage_text(strat.model.omics_coverage_)
    assert strat.model.preprocessor_.genes_  # genes used
    missing = cohort.clinical.drop(index=cohort.omics.index).head(3)
    with pytest.raises(PathVizError, match="3 of 3 patients have no expression profile"):
        strat.model.predict_risk(missing, cohort.omics)


def test_elastic_net_imputes_only_when_asked(synth):
    from pathviz.risk.stratify import stratify_by_risk

    cohort, _ = synth
    strat = stratify_by_risk(cohort, check_groups=False, missing_omics="impute")
    assert len(strat.table) == cohort.n
    assert strat.metrics["n_imputed_no_omics"] == cohort.n - len(cohort.omics)
    assert "imputed with training-row means (missing_omics=impute)" in strat.metrics["omics_note"]
    # the model itself, outside the cohort helper: refuses by default, imputes on request
    tr = cohort.clinical.iloc[:150]
    with pytest.raises(PathVizError, match="missing_omics='impute'"):
        CoxnetRiskModel(["age"], max_genes=20).fit(tr, cohort.omics, tr["time"], tr["event"])
    m = CoxnetRiskModel(["age"], max_genes=20, missing_omics="impute").fit(tr, cohort.omics, tr["time"], tr["event"])
    assert m.n_imputed_ == int((~tr.index.isin(cohort.omics.index)).sum()) > 0


def test_elastic_net_with_nobody_having_rna(synth):
    from pathviz.risk.stratify import stratify_by_risk

    cohort, _ = synth
    with pytest.raises(PathVizError) as err:
        stratify_by_risk(_without_rna(cohort, "no_rna"), check_groups=False)
    assert "none of its" in str(err.value) and "Fix:" in str(err.value)
    strat = stratify_by_risk(_without_rna(cohort, "no_rna"), check_groups=False, use_genes=False)  # clinical only: fine
    assert len(strat.table) == cohort.n and "omics_note" not in strat.metrics


def test_cli_cindex_prints_the_count(synth, monkeypatch, capsys):
    import pathviz.risk.stratify as stratify
    from pathviz.cli import main

    cohort, _ = synth
    import pathviz.cohort

    monkeypatch.setattr(stratify, "load_cohort", lambda name: cohort)
    monkeypatch.setattr(pathviz.cohort, "load_cohort", lambda name: cohort)  # the CLI loads it (to switch endpoints)
    assert main(["survival", "cindex", "--cohort", "partial_synth"]) == 0
    n_no = cohort.n - len(cohort.omics)
    assert f"{n_no} of {cohort.n} patients have no RNA and were left out (missing_omics=exclude)" in capsys.readouterr().out


# -- a real cohort: TCGA STAD with 60% of the RNA removed ----------------------------------------
def test_tcga_stad_with_partial_rna(tmp_path):
    from pathviz.genomics import MAX_SIZE, MIN_SIZE, default_library
    from pathviz.jobs.coxpasnet import train_pathway_model
    from pathviz.risk.stratify import stratify_by_risk

    cohort = _tcga_stad_partial()
    n_rna, n_no = len(cohort.omics), cohort.n - len(cohort.omics)
    assert n_no > n_rna > 100
    lib = default_library("kegg").filter_size(MIN_SIZE, MAX_SIZE)
    _, metrics = train_pathway_model(cohort, lib, tmp_path / "stad", seed=0, config=QUICK)
    assert metrics["n_training"] + metrics["n_validation"] == n_rna and metrics["n_excluded_no_omics"] == n_no
    strat = stratify_by_risk(cohort, check_groups=False)
    assert set(strat.table.index) == set(cohort.omics.index) and strat.metrics["n_excluded_no_omics"] == n_no


# -- threads -------------------------------------------------------------------------------------
def test_torch_threads(monkeypatch):
    import os

    from pathviz.settings import torch_threads

    monkeypatch.delenv("PATHVIZ_THREADS", raising=False)
    assert torch_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("PATHVIZ_THREADS", "3")
    assert torch_threads() == 3
    monkeypatch.setenv("PATHVIZ_THREADS", "zero")
    with pytest.raises(ValueError, match="PATHVIZ_THREADS"):
        torch_threads()
