"""Cohort tables never silently mis-code events or times: events must be exactly 0/1 unless an
explicit mapping is given, times must be finite and >= 0, and every built-in cohort keeps its
published size and number of events."""

from __future__ import annotations

import pandas as pd
import pytest

from pathviz.cohort import Cohort, CohortError, available_cohorts, load_cohort, load_csv, validate_clinical

MAP = {"patient_id": "id", "time": "months", "event": "status"}


def write(tmp_path, text, name="cohort.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


# R survival's convention: 1 = censored, 2 = dead. 3 events (2) and 4 censored (1).
R_CODED = "id,months,status\nP1,10,2\nP2,12,1\nP3,3,2\nP4,40,1\nP5,7,2\nP6,22,1\nP7,30,1\n"


def test_events_coded_1_2_are_refused_naming_column_and_values(tmp_path):
    with pytest.raises(CohortError) as err:
        load_csv(write(tmp_path, R_CODED), MAP)
    msg = str(err.value)
    assert "'status'" in msg  # the file's column
    assert "2 (3 patients)" in msg  # the values found, with counts
    assert "event_map" in msg and "Fix:" in msg  # the fix: an explicit mapping


def test_events_coded_1_2_load_with_explicit_map(tmp_path):
    c = load_csv(write(tmp_path, R_CODED), MAP, event_map={2: 1, 1: 0})
    assert (c.n, c.n_events) == (7, 3)
    assert list(c.event) == [1, 0, 1, 0, 1, 0, 0]


def test_value_missing_from_the_map_is_refused(tmp_path):
    text = R_CODED + "P8,5,9\n"
    with pytest.raises(CohortError) as err:
        load_csv(write(tmp_path, text), MAP, event_map={2: 1, 1: 0})
    assert "9 (1 patient)" in str(err.value) and "P8" in str(err.value) and "'status'" in str(err.value)


@pytest.mark.parametrize("event_value", ["yes", "dead"])
def test_string_events_are_refused(tmp_path, event_value):
    text = f"id,months,status\nA,10,{event_value}\nB,12,0\nC,3,{event_value}\nD,4,1\n"
    with pytest.raises(CohortError) as err:
        load_csv(write(tmp_path, text), MAP)
    msg = str(err.value)
    assert "'status'" in msg and f"'{event_value}' (2 patients)" in msg and "event_map" in msg


def test_string_events_load_with_explicit_map(tmp_path):
    text = "id,months,status\nA,10,dead\nB,12,alive\nC,3,dead\nD,4, alive\n"
    c = load_csv(write(tmp_path, text), MAP, event_map={"dead": 1, "alive": 0})
    assert list(c.event) == [1, 0, 1, 0]
    with pytest.raises(CohortError, match="'yes' \\(1 patient\\)"):
        load_csv(write(tmp_path, text + "E,5,yes\n"), MAP, event_map={"dead": 1, "alive": 0})


def test_event_values_shorthand_does_not_guess_censoring(tmp_path):
    text = "id,months,status\nA,10,dead\nB,12,alive\nC,3,yes\n"
    with pytest.raises(CohortError, match="several values besides"):
        load_csv(write(tmp_path, text), MAP, event_values=("dead",))


def test_validation_itself_refuses_non_binary_events():
    """The single validation every cohort goes through (Cohort -> validate_clinical)."""
    base = pd.DataFrame({"patient_id": ["A", "B", "C"], "time": [1.0, 2.0, 3.0]})
    for bad in ([1, 2, 2], ["dead", "alive", "dead"], [1.0, 0.5, 0.0], ["1:DECEASED", "0:LIVING", "0:LIVING"]):
        with pytest.raises(CohortError, match="column 'event'.*Values found"):
            Cohort(name="t", clinical=base.assign(event=bad))
    for ok in ([1, 0, 1], [True, False, True], [1.0, 0.0, 1.0]):
        assert list(Cohort(name="t", clinical=base.assign(event=ok)).event) == [1, 0, 1]


def _times_csv(bad_value):
    rows = [f"P{i},{bad_value},1" for i in range(1, 7)] + ["P7,10,0", "P8,12,1"]
    return "id,months,status\n" + "\n".join(rows) + "\n"


@pytest.mark.parametrize("bad_value, words", [("NaN", "missing or non-numeric time"), ("inf", "infinite"),
                                              ("-inf", "infinite"), ("-2", "negative time")])
def test_non_finite_or_negative_times_refused_naming_patient_ids(tmp_path, bad_value, words):
    with pytest.raises(CohortError) as err:
        load_csv(write(tmp_path, _times_csv(bad_value)), MAP)
    msg = str(err.value)
    assert words in msg and "6 patients" in msg
    assert "e.g. P1, P2, P3, P4, P5 (and 1 more)" in msg  # up to 5 ids named


def test_inf_time_refused_by_validation():
    df = pd.DataFrame({"patient_id": ["A", "B"], "time": [float("inf"), 2.0], "event": [1, 0]})
    with pytest.raises(CohortError, match="infinite.*e.g. A"):
        validate_clinical(df, "t")


def test_further_endpoints_follow_the_same_rules():
    from pathviz.cohort import Endpoint

    df = pd.DataFrame({"patient_id": ["A", "B"], "time": [1.0, 2.0], "event": [1, 0],
                       "os_time": [3.0, 4.0], "os_event": [2, 1]})
    with pytest.raises(CohortError, match="column 'os_event'"):
        Cohort(name="t", clinical=df, endpoints=[Endpoint("os", "overall survival", "os_time", "os_event")])


def test_tcga_status_strings_are_mapped_explicitly(tmp_path):
    from pathviz.cohort import load_tcga

    folder = tmp_path / "tcga" / "xyz"
    folder.mkdir(parents=True)
    (folder / "clinical.csv").write_text(
        "patient_id,time_months,event,site\nTCGA-01,10,1:DECEASED,A1\nTCGA-02,20,0:LIVING,A1\n"
        "TCGA-03,5,1:Recurred/Progressed,B2\n")
    c = load_tcga("xyz", root=tmp_path / "tcga")
    assert list(c.event) == [1, 0, 1]
    (folder / "clinical.csv").write_text("patient_id,time_months,event,site\nTCGA-01,10,DEAD,A1\nTCGA-02,20,1,A1\n")
    with pytest.raises(CohortError, match="'DEAD' \\(1 patient\\)"):
        load_tcga("xyz", root=tmp_path / "tcga")


@pytest.mark.parametrize("name, n, events", [("gse1992", 124, 35), ("gse4335", 115, 38), ("gse3143", 158, 50),
                                             ("gbsg2", 686, 299), ("breast_cancer", 198, 51)])
def test_builtin_cohorts_keep_their_figures(name, n, events):
    c = load_cohort(name)
    assert (c.n, c.n_events) == (n, events)
    assert set(c.clinical["event"].unique()) <= {0, 1}


@pytest.mark.parametrize("name, n, events", [("tcga_stad", 349, 140), ("tcga_blca", 373, 169), ("tcga_brca", 956, 130)])
def test_tcga_cohorts_keep_their_figures(name, n, events):
    if name not in available_cohorts():
        pytest.skip("../shared/data/tcga absent")
    c = load_cohort(name)
    assert (c.n, c.n_events) == (n, events)
