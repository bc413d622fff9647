"""Cohort loaders on real data and the schema's errors on bad tables (real bad CSV files)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pathviz.cohort import CohortError, available_cohorts, load_cohort, load_csv


def test_survset_cohorts_load_with_gene_symbols():
    c = load_cohort("gse1992")
    assert (c.n, c.n_events) == (124, 35)
    assert c.omics.shape[0] == 124 and "ESR1" in c.omics.columns
    assert {"age", "er_positive", "node_status"} <= set(c.clinical.columns)
    assert load_cohort("gse4335").n == 115 and load_cohort("gse3143").n == 158


def test_gbsg2_months_treatment_markers():
    c = load_cohort("gbsg2")
    assert (c.n, c.n_events) == (686, 299)
    assert c.clinical.time.max() == pytest.approx(2659 / 30.4375)
    assert c.treatment == "treatment" and set(c.clinical.treatment.unique()) == {0, 1}
    assert c.markers == []  # ER/PR are tissue receptors: clinical covariates, not serum markers
    assert {"estrec", "progrec"} <= set(c.clinical_covariates())


def test_tcga_layout_when_shared_data_present():
    if "tcga_stad" not in available_cohorts():
        pytest.skip("../shared/data/tcga absent")
    c = load_cohort("tcga_stad")
    assert (c.n, c.n_events) == (349, 140)  # as ../shared/data/tcga/README.md states
    assert c.omics.shape == (349, 1558) and c.omics.abs().max().max() <= 10.0
    assert c.centre == "centre"


def test_unknown_cohort_suggests_closest_and_lists_available():
    with pytest.raises(CohortError, match="Available here: gse1992"):
        load_cohort("nope")
    with pytest.raises(CohortError, match="did you mean 'gse1992'"):
        load_cohort("gse1993")


def write(tmp_path, text, name="cohort.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


MAP = {"patient_id": "id", "time": "days", "event": "status"}


def test_user_csv_with_mapping_and_units(tmp_path):
    p = write(tmp_path, "id,days,status,ca19_9,arm\nA,365.25,dead,120,1\nB,730.5,alive,12.5,0\nC,30,dead,,1\n")
    c = load_csv(p, MAP, time_unit="days", event_values=("dead",), markers=["ca19_9"], treatment="arm")
    assert list(c.clinical.index) == ["A", "B", "C"]
    assert c.clinical.loc["A", "time"] == pytest.approx(12.0)
    assert list(c.event) == [1, 0, 1]
    assert np.isnan(c.clinical.loc["C", "ca19_9"])


@pytest.mark.parametrize(
    "text, kwargs, words",
    [
        ("id,days,status\nA,10,1\nB,,0\n", {}, "missing or non-numeric time, e.g. B"),
        ("id,days,status\nA,10,1\nB,-3,0\n", {}, "negative time, e.g. B"),
        ("id,days,status\nA,10,1\nB,abc,0\n", {}, "non-numeric time, e.g. B"),
        ("id,days,status\nA,10,1\nA,12,0\n", {}, "duplicate patient_id values (1), e.g. A"),
        ("id,days,status,ca19_9\nA,10,1,high\nB,3,0,12\n", {"markers": ["ca19_9"]}, "marker 'ca19_9' has non-numeric values"),
        ("id,when,status\nA,10,1\n", {}, "mapped columns not found: days"),
    ],
)
def test_bad_csv_rows_are_named(tmp_path, text, kwargs, words):
    with pytest.raises(CohortError) as err:
        load_csv(write(tmp_path, text), MAP, **kwargs)
    assert words in str(err.value) and "Fix:" in str(err.value)


def test_event_not_0_1_named(tmp_path):
    from pathviz.cohort import validate_clinical

    df = pd.read_csv(write(tmp_path, "id,days,status\nA,10,1\nB,3,2\n"))
    df = df.rename(columns={"id": "patient_id", "days": "time", "status": "event"})
    with pytest.raises(CohortError, match="event must be 0 .* found 2 for 1 patients, e.g. B"):
        validate_clinical(df, "raw")


def test_binary_and_empty_files(tmp_path):
    (tmp_path / "bin.csv").write_bytes(bytes(range(256)) * 10)
    with pytest.raises(CohortError, match="not a readable CSV"):
        load_csv(tmp_path / "bin.csv", MAP)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(CohortError, match="not a readable CSV"):
        load_csv(tmp_path / "empty.csv", MAP)
