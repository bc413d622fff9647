"""Cohorts as registered objects (issue 12): `pathviz cohort add PATH --format ...` makes any
folder loadable by name everywhere; any TCGA cancer code in the shared layout is found; the
expression scale is detected and recorded, and only declared z-scores are clipped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import TEST_PASSWORD, make_user
from pathviz.auth.policy import operator
from pathviz.cli import main
from pathviz.cohort import available_cohorts, load_cohort
from pathviz.cohort.loaders import shared_data_dir

TCGA = shared_data_dir() / "tcga"
needs_shared = pytest.mark.skipif(not (TCGA / "stad" / "clinical.csv").exists(), reason="../shared/data/tcga absent")


def _json(capsys, argv) -> dict:
    assert main(argv + ["--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


@needs_shared
def test_added_tcga_folder_gives_the_builtin_c_index(ws, capsys):
    out = _json(capsys, ["cohort", "add", str(TCGA / "stad"), "--format", "tcga", "--name", "my_stad"])
    assert out["n"] == 349 if "n" in out else True
    mine = _json(capsys, ["survival", "cindex", "--cohort", "my_stad"])
    builtin = _json(capsys, ["survival", "cindex", "--cohort", "tcga_stad"])
    assert mine["harrell_c"] == pytest.approx(builtin["harrell_c"], abs=1e-12) and mine["n_validation"] == builtin["n_validation"]
    assert "my_stad" in available_cohorts()
    c = load_cohort("my_stad")
    assert c.omics_scale == "z-score" and "clipped to +-10" in c.omics_note
    shown = _json(capsys, ["cohort", "show", "my_stad"])
    assert shown["with_rna"] + shown["without_rna"] == 349
    rows = ws.audit.search(operator(), action="cohort.added")
    assert rows and rows[0]["object_id"] == "my_stad"
    assert main(["cohort", "add", str(TCGA / "stad"), "--format", "tcga", "--name", "tcga_stad"]) == 2  # built-in name
    assert "exists already" in capsys.readouterr().err
    assert main(["cohort", "remove", "my_stad"]) == 0
    assert "my_stad" not in available_cohorts() and (TCGA / "stad" / "clinical.csv").exists()  # files untouched


@needs_shared
def test_any_tcga_code_and_log2_tpm_is_never_clipped(tmp_path, monkeypatch, ws):
    """A new cancer code in the shared layout is found without code changes, and a log2(TPM)
    matrix keeps its values above 10 (the old loader cut them, assuming z-scores)."""
    root = tmp_path / "shared"
    paad = root / "tcga" / "paad"
    paad.mkdir(parents=True)
    shutil.copy(TCGA / "stad" / "clinical.csv", paad / "clinical.csv")
    tpm = pd.read_csv(TCGA / "stad" / "rna_xena_log2tpm.csv.gz", index_col=0)
    tpm.to_csv(paad / "rna.csv.gz")
    monkeypatch.setenv("PATHVIZ_SHARED_DATA", str(root))
    assert "tcga_paad" in available_cohorts()
    c = load_cohort("tcga_paad")
    assert c.omics_scale == "log2 expression" and "not clipped" in c.omics_note
    assert float(c.omics.to_numpy().max()) == pytest.approx(float(tpm.to_numpy().max())) and tpm.to_numpy().max() > 10


def test_csv_cohort_with_omics_and_permissions(ws, tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(0)
    n = 120
    ids = [f"P{i:03d}" for i in range(n)]
    clin = pd.DataFrame({"id": ids, "os_days": rng.integers(30, 3000, n), "vital": rng.choice(["dead", "alive"], n),
                         "age": rng.normal(60, 10, n).round(1)})
    clin.to_csv(tmp_path / "clinical.csv", index=False)
    expr = pd.DataFrame(rng.normal(5, 2, (80, 30)).clip(0), index=ids[:80], columns=[f"G{j}" for j in range(30)])
    expr.index.name = "patient_id"
    expr.to_csv(tmp_path / "expr.csv")
    (tmp_path / "map.json").write_text(json.dumps({"mapping": {"patient_id": "id", "time": "os_days", "event": "vital"},
                                                   "time_unit": "days", "event_map": {"dead": 1, "alive": 0},
                                                   "omics": "expr.csv"}))
    make_user(ws, "pat", "pathologist")
    monkeypatch.setenv("PATHVIZ_PASSWORD", TEST_PASSWORD)
    argv = ["cohort", "add", str(tmp_path / "clinical.csv"), "--format", "csv", "--name", "my_csv", "--mapping",
            str(tmp_path / "map.json")]
    assert main(["--user", "pat"] + argv) == 2 and "may not add cohorts" in capsys.readouterr().err
    monkeypatch.delenv("PATHVIZ_PASSWORD")
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "120 patients" in out and "for 80 patients" in out
    c = load_cohort("my_csv")
    assert c.time_unit_note == "days -> months" and c.clinical["time"].max() < 3000 / 30
    shown = _json(capsys, ["cohort", "show", "my_csv"])
    assert (shown["with_rna"], shown["without_rna"]) == (80, 40)
    bad = tmp_path / "nothing_here"
    bad.mkdir()
    assert main(["cohort", "add", str(bad), "--format", "tcga"]) == 2
    assert "clinical.csv missing" in capsys.readouterr().err and "nothing_here" not in available_cohorts()


@needs_shared
def test_workspace_page_adds_a_cohort_only_from_allowed_folders(ws, monkeypatch):
    import streamlit as st

    from conftest import app_test

    st.cache_resource.clear()
    at = app_test(str(Path(__file__).resolve().parents[1] / "pages" / "workspace.py"), default_timeout=120, username="adm",
                  roles=("admin",)).run()

    def add(path: str, name: str):
        at.text_input(key="coh_path").input(path)
        at.text_input(key="coh_name").input(name)
        next(b for b in at.button if b.label == "Add cohort").click().run()
        assert not at.exception
        return [e.value for e in at.error], [s.value for s in at.success]

    errors, _ = add("/etc", "etc")
    assert errors == ["/etc is not allowed or not found. Fix: choose a folder inside the workspace, PATHVIZ_SLIDE_ROOTS "
                      "or the shared data folder (listed on this page), or use `pathviz cohort add` on the server."]
    errors, ok = add(str(TCGA / "blca"), "page_blca")
    assert not errors and ok and "page_blca" in ok[0]
    assert load_cohort("page_blca").n == load_cohort("tcga_blca").n


def test_cbioportal_and_gdc_folders_register_and_train(ws, tmp_path, capsys):
    """The two new formats through the registry: `cohort add` then a command that fits a model."""
    from test_cohort_formats import write_cbio, write_gdc

    cbio, gdc = tmp_path / "study", tmp_path / "gdc"
    write_cbio(cbio)
    write_gdc(gdc)
    assert main(["cohort", "add", str(cbio), "--format", "cbioportal", "--name", "my_cbio"]) == 0
    assert main(["cohort", "add", str(gdc), "--format", "gdc", "--name", "my_gdc"]) == 0
    out = capsys.readouterr().out
    assert "added cohort my_cbio" in out and "added cohort my_gdc" in out
    c = load_cohort("my_cbio")
    assert c.name == "my_cbio" and c.endpoints[0].key == "os" and c.omics_scale == "z-score"
    g = load_cohort("my_gdc")
    assert g.omics_scale == "log2 expression" and "months" in g.description.lower() + g.time_unit_note.lower()
    shown = _json(capsys, ["cohort", "show", "my_cbio"])
    assert shown["with_rna"] + shown["without_rna"] == c.n


def test_patient_page_offers_the_cohorts_endpoints(ws, tmp_path):
    """The oncologist picks the endpoint; the caption names it and the patients left out for lacking it."""
    import streamlit as st

    from conftest import app_test
    from test_cohort_formats import write_cbio

    write_cbio(tmp_path / "study")
    main(["cohort", "add", str(tmp_path / "study"), "--format", "cbioportal", "--name", "my_cbio"])
    st.cache_resource.clear()
    at = app_test(str(Path(__file__).resolve().parents[1] / "pages" / "patient.py"), default_timeout=120,
                  username="onc", roles=("oncologist",))
    at.session_state["cohort"] = "my_cbio"
    at.run()
    box = at.selectbox(key="endpoint")
    assert box.options[:2] == ["overall survival (os)", "disease-specific survival (dss)"] and box.value == "os"
    box.set_value("dfs").run()
    captions = " ".join(c.value for c in at.caption)
    assert "endpoint: disease-free survival" in captions and "1 patient without it dropped" in captions
