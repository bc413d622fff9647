"""Gene sets, expression preprocessing, the Cox loss, and Cox-PASNet (mask, planted pathway)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from lifelines import CoxPHFitter

from pathviz.cohort import load_cohort
from pathviz.errors import PathVizError
from pathviz.explain import pathway_ranking, ranking_stability
from pathviz.genomics import (
    MAX_SIZE,
    MIN_SIZE,
    ExpressionScaler,
    GeneSet,
    GeneSetError,
    GeneSetLibrary,
    default_library,
    pathway_mask,
    read_gmt,
    write_gmt,
)
from pathviz.nn import MaskedLinear, TrainConfig, cox_partial_likelihood_loss
from pathviz.risk.coxpasnet import CoxPASNetModel
from pathviz.survival import harrell_c


# -- GMT ----------------------------------------------------------------------------------------
def test_gmt_round_trip_and_filters(tmp_path):
    lib = GeneSetLibrary([GeneSet("A", "first", [f"G{i}" for i in range(20)]),
                          GeneSet("B", "second", [f"G{i}" for i in range(2, 21)]),
                          GeneSet("C set", "with space", ["G1", "G2"])])
    back = read_gmt(write_gmt(lib, tmp_path / "x.gmt"))
    assert [(s.name, s.description, s.genes) for s in back.sets] == [(s.name, s.description, s.genes) for s in lib.sets]
    assert back.filter_size(15, 300).names() == ["A", "B"]
    assert back.prune_redundant(0.8).names() == ["A", "C set"]  # B overlaps A with Jaccard 18/21


@pytest.mark.parametrize("text, words", [
    ("A\td\tG1\tG2\nA\td\tG3\n", "duplicate gene-set name 'A' (first on line 1)"),
    ("A\td\tG1\nB\td\n", "line 2: gene set 'B' is empty"),
    ("just one field\n", "expected name<TAB>description"),
])
def test_bad_gmt_files(tmp_path, text, words):
    p = tmp_path / "bad.gmt"
    p.write_text(text)
    with pytest.raises(GeneSetError) as err:
        read_gmt(p)
    assert words in str(err.value) and str(p) in str(err.value)


def test_binary_gmt_refused(tmp_path):
    p = tmp_path / "bin.gmt"
    p.write_bytes(bytes(range(256)))
    with pytest.raises(GeneSetError, match="not a readable GMT"):
        read_gmt(p)


def test_case_and_alias_matching_and_low_coverage():
    lib = GeneSetLibrary([GeneSet("P", "", ["tp53", "HER2", "KRAS", "EGFR"]), GeneSet("Q", "", ["X1", "X2", "X3", "KRAS"])])
    m = pathway_mask(lib, ["TP53", "ERBB2", "KRAS", "EGFR"], min_coverage=0.5, min_genes=2)
    assert m.pathways == ["P"] and m.dropped_low_coverage == ["Q"]
    assert m.renamed == {"tp53": "TP53", "HER2": "ERBB2"}  # case, then HGNC alias (org.Hs.eg.db)
    assert m.mask.sum() == 4
    with pytest.raises(GeneSetError, match="best coverage 25%"):
        pathway_mask(GeneSetLibrary([GeneSet("Q", "", ["X1", "X2", "X3", "KRAS"])]), ["KRAS"], min_coverage=0.5)


def test_default_library_provenance_and_coverage():
    kegg = default_library("kegg")
    assert len(kegg) > 150 and all(s.name.startswith("KEGG_hsa") for s in kegg.sets)
    go = default_library("go_bp").filter_size()
    assert len(go) > 3000
    assert all(MIN_SIZE <= len(s.genes) <= MAX_SIZE for s in go.sets)
    # set names are GO ids, descriptions the GO.db term names (PROVENANCE.md)
    assert all(s.name.startswith("GOBP_GO_") for s in go.sets)
    assert go.get("GOBP_GO_0000002").description == "mitochondrial genome maintenance"
    assert go.get("GOBP_GO_0000018").description == "regulation of DNA recombination"
    assert "GOBP_GO_0006915" not in go.names()  # apoptotic process: too large for the size filter
    m = pathway_mask(kegg.filter_size(), list(load_cohort("gse1992").omics.columns))
    assert len(m.pathways) > 150 and m.mask.shape == (len(m.genes), len(m.pathways))


# -- preprocessing -------------------------------------------------------------------------------
def test_scaler_uses_training_statistics_only_and_reports():
    rng = np.random.default_rng(0)
    tr = pd.DataFrame(rng.lognormal(5, 1, (50, 4)), columns=list("ABCD"))
    tr["K"] = 7.0
    te = pd.DataFrame(rng.lognormal(6, 1, (10, 5)), columns=list("ABCDK"))
    sc = ExpressionScaler().fit(tr)
    assert sc.log_ and sc.constant_ == ["K"] and any("constant" in r for r in sc.report)
    z = sc.transform(te)
    assert list(z.columns) == list("ABCD")
    expect = (np.log2(te["A"] + 1) - np.log2(tr["A"] + 1).mean()) / np.log2(tr["A"] + 1).std(ddof=0)
    np.testing.assert_allclose(z["A"], expect)
    assert z["A"].mean() > 0.5  # test data shifted: not re-centred on itself


def test_scaler_refuses_nan_by_default():
    tr = pd.DataFrame({"A": [1.0, np.nan, 3.0], "B": [1.0, 2.0, 3.0]}, index=["p1", "p2", "p3"])
    with pytest.raises(PathVizError, match="missing values .*genes e.g. A; patients e.g. p2"):
        ExpressionScaler().fit(tr)
    sc = ExpressionScaler(impute="train_mean").fit(tr)
    assert "imputed" in sc.report[0]


# -- loss ------------------------------------------------------------------------------------------
def test_efron_loss_equals_lifelines_log_likelihood_with_ties():
    d = load_cohort("gbsg2").clinical
    d = d.assign(time=d.time.round(0))  # many tied times
    X = ((d[["age", "pnodes", "tsize"]] - d[["age", "pnodes", "tsize"]].mean()) / d[["age", "pnodes", "tsize"]].std())
    cph = CoxPHFitter().fit(X.assign(time=d.time, event=d.event), "time", "event")
    beta = torch.tensor(cph.params_.to_numpy(), dtype=torch.float64)
    risk = torch.tensor(X.to_numpy()) @ beta
    loss = cox_partial_likelihood_loss(risk, torch.tensor(d.time.to_numpy()), torch.tensor(d.event.to_numpy()))
    assert float(loss) == pytest.approx(-cph.log_likelihood_ / d.event.sum(), rel=1e-9)
    # and the gradient vanishes at lifelines' optimum
    b = beta.clone().requires_grad_(True)
    cox_partial_likelihood_loss(torch.tensor(X.to_numpy()) @ b, torch.tensor(d.time.to_numpy()),
                                torch.tensor(d.event.to_numpy())).backward()
    assert b.grad.abs().max() < 1e-4  # lifelines stops Newton-Raphson near 1e-6
    # Breslow differs when there are ties
    br = cox_partial_likelihood_loss(risk, torch.tensor(d.time.to_numpy()), torch.tensor(d.event.to_numpy()), "breslow")
    assert float(br) > float(loss)


def test_masked_linear_never_grows_connections():
    mask = torch.tensor([[1, 0], [1, 1], [0, 1]], dtype=torch.bool)
    layer = MaskedLinear(mask)
    out = layer(torch.randn(5, 3)).sum()
    out.backward()
    assert torch.all(layer.weight.grad[~mask.T] == 0)
    assert torch.all(layer.weight[~mask.T] == 0)


# -- Cox-PASNet: planted pathway ------------------------------------------------------------------
def planted_data(n=500, n_path=40, size=15, seed=0, planted=7):
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(n_path * 10)]
    sets = []
    for p in range(n_path):
        members = rng.choice(len(genes), size, replace=False)
        sets.append(GeneSet(f"PATH_{p:02d}", f"pathway {p}", [genes[i] for i in members]))
    X = pd.DataFrame(rng.normal(size=(n, len(genes))), columns=genes, index=[f"P{i}" for i in range(n)])
    score = X[sets[planted].genes].mean(axis=1).to_numpy() * np.sqrt(size)  # unit variance
    age = rng.normal(60, 10, n)
    lp = 1.0 * score + 0.02 * (age - 60)
    t = rng.exponential(30 * np.exp(-lp))
    c = rng.exponential(60, n)
    clin = pd.DataFrame({"time": np.minimum(t, c), "event": (t <= c).astype(int), "age": age}, index=X.index)
    clin.index.name = "patient_id"
    return GeneSetLibrary(sets, "planted"), X, clin, sets[planted].name


@pytest.fixture(scope="module")
def planted_model():
    lib, X, clin, planted = planted_data()
    cfg = TrainConfig(max_epochs=200, patience=40, seed=0)
    m = CoxPASNetModel(lib, ["age"], grid={"lr": (1e-2,), "l2": (1e-3,)}, config=cfg, device="cpu", n_members=2)
    train = clin.index[:400]
    m.fit(clin.loc[train], X, clin.time[train], clin.event[train])
    return m, lib, X, clin, planted


def test_mask_holds_after_training(planted_model):
    m = planted_model[0]
    outside = ~torch.as_tensor(m.mask_).T
    assert outside.any() and len(m.net_.members) == 2
    for member in m.net_.members:
        w = member.pathway.weight.detach()
        assert torch.count_nonzero(w[outside]) == 0
        assert torch.count_nonzero(w[~outside]) == int((~outside).sum())  # inside the mask: all trained


def test_planted_pathway_ranked_first_and_predictive(planted_model):
    m, lib, X, clin, planted = planted_model
    test = clin.index[400:]
    ranking = pathway_ranking(m, clin.loc[test], X).table
    assert ranking.pathway.iloc[0] == planted
    assert ranking.direction.iloc[0] == 1
    assert harrell_c(clin.time[test], clin.event[test], m.predict_risk(clin.loc[test], X)).c_index > 0.68
    stab = ranking_stability([ranking, ranking])
    assert stab.iloc[0].pathway == planted and stab.iloc[0].stability == 1.0


def test_model_folder_round_trip(planted_model, tmp_path):
    m, lib, X, clin, planted = planted_model
    m.save(tmp_path / "model", cohort="planted")
    back = CoxPASNetModel.load(tmp_path / "model", device="cpu")
    np.testing.assert_allclose(back.predict_risk(clin, X), m.predict_risk(clin, X), rtol=1e-6)
    sf = back.predict_survival_function(clin.iloc[:5], X, [0, 12, 24, 48])
    assert sf.shape == (5, 4) and np.all(sf[:, 0] == 1.0) and np.all(np.diff(sf, axis=1) <= 0)
    with pytest.raises(PathVizError, match="not a PathViz Cox-PASNet model folder"):
        CoxPASNetModel.load(tmp_path / "nothing")
