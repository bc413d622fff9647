"""The computations behind the patient and pathway pages (the pages only render them):
pathviz.risk.stratify's patient-page helpers and pathviz.explain's pathway-page helpers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from pathviz.cohort import Cohort, CohortError
from pathviz.explain import (
    activation_heatmap,
    filter_genes,
    filter_pathways,
    model_comparison_table,
    node_labels,
    pathway_table,
    read_model_comparison,
)
from pathviz.explain.pagenet import PAGENET_PATHWAY_COLUMNS, read_pagenet_rankings
from pathviz.risk import StoredRiskModel
from pathviz.risk.stratify import (
    SURVIVAL_CURVE_POINTS,
    adjustment_covariates,
    cutoff_spec,
    default_marker,
    marker_threshold,
    stratify_by_risk,
    subgroup_table,
    subgroup_variables,
    with_high_risk,
)


# -- patient page ----------------------------------------------------------------------------------
def _cohort(n: int = 150, seed: int = 0) -> tuple[Cohort, StoredRiskModel]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t, c = rng.exponential(20 * np.exp(-0.8 * x)), rng.uniform(5, 60, n)
    ids = [f"P{i:03d}" for i in range(n)]
    clinical = pd.DataFrame({"patient_id": ids, "time": np.round(np.minimum(t, c), 2), "event": (t <= c).astype(int),
                             "age": rng.normal(60, 10, n).round(), "grade": rng.choice(["G1", "G2", "G3"], n),
                             "site": [f"s{i % 13}" for i in range(n)], "centre": rng.choice(["A", "B"], n),
                             "treated": rng.integers(0, 2, n), "ca19_9": rng.lognormal(3, 1, n), "cea": rng.lognormal(1, 1, n)})
    cohort = Cohort(name="toy", clinical=clinical, markers=["cea", "ca19_9"], treatment="treated", centre="centre")
    split = np.where(np.arange(n) % 4 == 0, "test", "train")
    table = pd.DataFrame({"prognostic_index": x, "split": split, "time": cohort.clinical["time"].to_numpy(),
                          "event": cohort.clinical["event"].to_numpy()}, index=cohort.clinical.index)
    return cohort, StoredRiskModel(table, "toy model", "", 0.7)


@pytest.fixture(scope="module")
def strat():
    cohort, model = _cohort()
    return stratify_by_risk(cohort, model=model)


def test_cutoff_spec():
    assert cutoff_spec("median", 3.0) == "median" and cutoff_spec("tertiles") == "tertiles"
    assert cutoff_spec("fixed", 37.0) == "37.0"


def test_default_patient_is_the_first_validation_patient(strat):
    pos = strat.default_patient()
    assert strat.table["split"].iloc[pos] == "validation"
    assert (strat.table["split"].iloc[:pos] == "training").all()
    only_training = dataclasses.replace(strat, table=strat.table.assign(split="training"))
    assert only_training.default_patient() == 0


def test_survival_curve_of_a_patient(strat):
    patient = strat.table.index[3]
    curve = strat.survival_curve(patient)
    assert list(curve.columns) == ["months", "survival"] and len(curve) == SURVIVAL_CURVE_POINTS
    assert curve["months"].iloc[0] == 0 and curve["months"].iloc[-1] == pytest.approx(strat.table["time"].max())
    expect = strat.model.predict_survival_function(strat.cohort.clinical.loc[[patient]], None, curve["months"])[0]
    np.testing.assert_array_equal(curve["survival"], expect)
    assert curve["survival"].iloc[0] == 1.0 and curve["survival"].is_monotonic_decreasing


def test_evaluated_patients_follow_evaluate_on(strat):
    sub = strat.evaluated_patients()
    val = strat.table.index[strat.table["split"] == "validation"]
    assert list(sub.index) == list(val)
    assert (sub["risk_group"] == strat.table.loc[val, "group"]).all()
    assert {"time", "event", "age", "ca19_9"} <= set(sub.columns)
    everyone = dataclasses.replace(strat, evaluated_on="all").evaluated_patients()
    assert list(everyone.index) == list(strat.table.index)
    assert strat.two_groups and len(strat.km_table()) == sum(len(c.to_frame()) for c in strat.comparison.curves)


def test_marker_defaults(strat):
    cohort = strat.cohort
    assert default_marker(cohort) == "ca19_9"  # preferred even when not listed first
    assert marker_threshold(cohort, "ca19_9") == ("U/mL", 37.0)
    unit, thr = marker_threshold(dataclasses.replace(cohort, markers=["cea"]), "cea")
    assert (unit, thr) == ("ng/mL", 5.0)
    no_table = Cohort(name="m", clinical=cohort.clinical[["time", "event", "age"]].assign(xm=cohort.clinical["cea"]),
                      markers=["xm"])
    assert default_marker(no_table) == "xm"
    assert marker_threshold(no_table, "xm") == ("", pytest.approx(float(no_table.clinical["xm"].median())))
    with pytest.raises(CohortError, match="no serum-marker column"):
        default_marker(Cohort(name="none", clinical=cohort.clinical[["time", "event"]]))


def test_adjustment_covariates_and_subgroups(strat):
    cohort, sub = strat.cohort, strat.evaluated_patients()
    options, default = adjustment_covariates(cohort, sub)
    # no centre, no treatment, no marker, no outcome; 'site' has 13 levels (> 12)
    assert options == ["age", "grade"] and default == ["age"]
    assert subgroup_variables(cohort, sub, ["grade"]) == ["grade", "treated"]
    assert subgroup_variables(dataclasses.replace(cohort, treatment=None), sub, ["grade", "nope"]) == ["grade"]
    mv = with_high_risk(sub, strat.cutoff)
    assert set(mv["high_risk"]) == {0.0, 1.0}
    assert (mv["high_risk"] == 1.0).sum() == (sub["risk_group"] == strat.cutoff.labels[-1]).sum()
    sg = subgroup_table(sub, ["grade"], strat.cutoff)
    assert (sg["label"] == sg["variable"] + ": " + sg["level"].astype(str)).all()
    assert set(sg["variable"]) == {"grade"}


# -- pathway page ----------------------------------------------------------------------------------
RANKING = pd.DataFrame({"rank": [1, 2, 3], "pathway": ["KEGG_hsa04110", "KEGG_hsa04115", "PW(x)"],
                        "description": ["Cell cycle (hsa04110)", "p53 signaling pathway (hsa04115)", ""],
                        "importance": [0.3, 0.2, 0.1], "direction": [1, -1, 1], "size": [20, 30, 15],
                        "genes": ["CDK1 CCNB1", "TP53 MDM2", "ABC1"], "extra": [0, 0, 0], "stability": [1.0, 0.5, 0.0]})


def test_pathway_search_table_and_labels():
    assert filter_pathways(RANKING, "") is RANKING
    assert filter_pathways(RANKING, "  cell CYCLE ")["pathway"].tolist() == ["KEGG_hsa04110"]
    assert filter_pathways(RANKING, "mdm2")["pathway"].tolist() == ["KEGG_hsa04115"]  # member gene
    assert filter_pathways(RANKING, "hsa041")["rank"].tolist() == [1, 2]  # id, order kept
    assert filter_pathways(RANKING, "w(x")["pathway"].tolist() == ["PW(x)"]  # plain text, not a regex
    genes = pd.DataFrame({"rank": [1, 2], "gene": ["TP53", "MDM2"]})
    assert filter_genes(genes, "tp5")["gene"].tolist() == ["TP53"] and filter_genes(genes, "") is genes
    assert list(pathway_table(RANKING).columns) == ["rank", "pathway", "description", "importance", "direction",
                                                    "stability", "size", "genes"]
    assert node_labels(RANKING) == {"KEGG_hsa04110": "Cell cycle (hsa04110)",
                                    "KEGG_hsa04115": "p53 signaling pathway (hsa04115)", "PW(x)": "PW(x)"}


class _FakeModel:
    pathways_ = ["A", "B", "C"]

    def node_activations(self, clinical, omics):
        n = len(clinical)
        return {"pathway": np.arange(n * 3, dtype=float).reshape(n, 3)}

    def predict_risk(self, clinical, omics):
        return np.array([0.5, -1.0, 2.0, 0.0])


def test_activation_heatmap_orders_patients_by_risk():
    clinical = pd.DataFrame(index=pd.Index(["p0", "p1", "p2", "p3"], name="patient_id"))
    heat = activation_heatmap(_FakeModel(), clinical, None, ["C", "A"])
    assert list(heat.activations.index) == ["p1", "p3", "p0", "p2"] and list(heat.activations.columns) == ["C", "A"]
    np.testing.assert_array_equal(heat.activations.loc["p2"], [8.0, 6.0])
    np.testing.assert_array_equal(heat.prognostic_index, [-1.0, 0.0, 0.5, 2.0])
    frame = heat.to_frame()
    assert list(frame.columns) == ["C", "A", "prognostic_index"] and frame.at["p0", "prognostic_index"] == 0.5
    with pytest.raises(ValueError):
        activation_heatmap(_FakeModel(), clinical, None, ["Z"])


def test_model_comparison_table(tmp_path):
    bench = pd.DataFrame({"cohort": ["a", "a", "b", "b"], "model": ["coxpasnet", "clinical", "coxpasnet", "clinical"],
                          "c_index_mean": [0.7123, 0.65, 0.6, 0.55], "c_index_sd": [0.031, 0.02, 0.01, 0.0],
                          "splits": [5, 5, 5, 5]})
    results, table = model_comparison_table(bench)
    assert "C-index" not in bench.columns and results.at[0, "C-index"] == "0.712 ± 0.031"
    assert list(table.index) == ["a", "b"] and set(table.columns) == {"Cox-PASNet", "clinical Cox (age)"}
    assert table.at["b", "clinical Cox (age)"] == "0.550 ± 0.000"
    assert read_model_comparison(tmp_path / "missing.csv") is None
    bench.to_csv(tmp_path / "b.csv", index=False)
    pd.testing.assert_frame_equal(read_model_comparison(tmp_path / "b.csv")[1], table)


def test_pagenet_rankings_read_back(tmp_path):
    n = 60
    pd.DataFrame({"rank": range(1, n + 1), "pathway": ["KEGG_hsa04110"] + [f"P{i}" for i in range(1, n)],
                  "description": ["KEGG pathway hsa04110"] + [f"d{i}" for i in range(1, n)], "importance": np.linspace(1, 0, n),
                  "direction": 1, "size": 20, "genes": "G1 G2"}).to_csv(tmp_path / "pathway_ranking.csv", index=False)
    pd.DataFrame({"rank": range(1, n + 1), "gene": [f"G{i}" for i in range(n)]}).to_csv(tmp_path / "gene_ranking.csv", index=False)
    r = read_pagenet_rankings(tmp_path)
    assert r.pathways.at[0, "description"] == "Cell cycle (hsa04110)"  # stored bare id made readable
    assert len(r.pathways) == n and len(r.genes) == n
    assert list(r.pathway_view().columns) == PAGENET_PATHWAY_COLUMNS and len(r.pathway_view()) == 50
    assert len(r.gene_view()) == 50 and list(r.gene_view(5)["gene"]) == ["G0", "G1", "G2", "G3", "G4"]
    with pytest.raises(OSError):
        read_pagenet_rankings(tmp_path / "none")
