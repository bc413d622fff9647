"""AppTest page tests for the oncologist's patient page."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from conftest import app_test

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "patient.py")


def app(cohort: str = "gbsg2") -> AppTest:
    st.cache_resource.clear()
    at = app_test(PAGE, default_timeout=120)
    at.session_state["cohort"] = cohort
    return at.run()


def text(at: AppTest) -> str:
    parts = [e.value for e in at.markdown] + [e.value for e in at.caption] + [e.value for e in at.info]
    parts += [e.value for e in at.subheader] + [e.value for e in at.warning] + [e.value for e in at.error]
    return "\n".join(map(str, parts))


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_patient_switch_updates_card(tmp_path, monkeypatch):
    monkeypatch.setenv("PATHVIZ_HOME", str(tmp_path))
    at = app()
    assert not at.exception
    first = (at.selectbox(key="patient").value, metric(at, "Risk score (prognostic index)"))
    assert "validation" in text(at) and "fitted on gbsg2 training split" in text(at)
    other = at.selectbox(key="patient").options[5]
    at.selectbox(key="patient").set_value(other.split(" ")[0]).run()
    assert not at.exception
    second = (at.selectbox(key="patient").value, metric(at, "Risk score (prognostic index)"))
    assert second[0] != first[0] and second[1] != first[1]
    assert metric(at, "Risk stratum") in ("low", "high")


def test_cutoff_switch_changes_strata(tmp_path, monkeypatch):
    monkeypatch.setenv("PATHVIZ_HOME", str(tmp_path))
    at = app()
    assert "median cut-off" in text(at)
    at.selectbox(key="cutoff_method").set_value("tertiles").run()
    assert not at.exception
    assert "tertiles cut-off" in text(at)
    assert metric(at, "Risk stratum") in ("low", "intermediate", "high")
    assert "compares two risk groups" in text(at)  # marker/treatment panels explain the 3 groups
    at.selectbox(key="cutoff_method").set_value("optimal").run()
    assert "Lau92 corrected p" in text(at)
    at.selectbox(key="cutoff_method").set_value("fixed").run()
    at.number_input(key="cutoff_value").set_value(99.0).run()
    assert "outside the data range" in text(at)  # explained, not a crash


def test_gbsg2_offers_no_serum_marker_but_treatment_panel(tmp_path, monkeypatch):
    """ER/PR are tissue receptors: the serum-marker panel explains it has nothing (it used to offer
    estrogen receptor), the treatment panel works, and no PAGE-Net command is suggested for a
    cohort without slides."""
    monkeypatch.setenv("PATHVIZ_HOME", str(tmp_path))
    at = app("gbsg2")
    body = text(at)
    assert not at.exception
    assert "has no serum-marker column" in body
    assert not [s for s in at.selectbox if s.key == "marker"]
    assert "Interaction (treatment x risk group): p" in body
    assert "pathviz train pagenet" not in body and "PAGE-Net needs a slide and an expression profile" in body


def test_panels_explained_when_columns_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("PATHVIZ_HOME", str(tmp_path))
    at = app("gse1992")
    assert not at.exception
    body = text(at)
    assert "has no serum-marker column" in body and "records no treatment column" in body


def test_stored_pagenet_index_is_offered_and_falls_back_when_gone(tmp_path, monkeypatch):
    """A registered PAGE-Net version for the cohort makes its prognostic index a selectable risk
    model; the page shows the stored index and the version; without it the page falls back to
    the elastic net."""
    import json
    import shutil

    import numpy as np
    import pandas as pd

    from pathviz.cohort import load_cohort

    monkeypatch.setenv("PATHVIZ_HOME", str(tmp_path))
    c = load_cohort("gbsg2")
    from pathviz.store.registry import ModelRegistry

    pi = np.log1p(c.clinical["pnodes"].astype(float)).round(4)
    split = np.where(np.arange(c.n) % 5 == 0, "test", "train")

    def write(folder):
        pd.DataFrame({"patient_id": c.clinical.index, "split": split, "time": c.clinical["time"], "event": c.clinical["event"],
                      "prognostic_index": pi.to_numpy()}).to_csv(folder / "prognostic_index.csv", index=False)
        m = {"test_c_index": {"pagenet": 0.6, "coxpasnet": 0.5, "image_cox_en": 0.5}, "val_c_index": 0.6, "version": "test",
             "seed": 0}
        (folder / "metrics.json").write_text(json.dumps(m))
        (folder / "pagenet.pt").write_bytes(b"")
        (folder / "cnn.pt").write_bytes(b"")
        return m

    man = ModelRegistry(tmp_path / "models").create_version("pagenet", "gbsg2", write, cohort="gbsg2", split_seed=0)
    folder = tmp_path / "models" / "pagenet" / "gbsg2"
    st.cache_resource.clear()
    at = app_test(PAGE, default_timeout=120)
    at.session_state["cohort"] = "gbsg2"
    at.session_state["risk_model"] = "pagenet"
    at.run()
    assert not at.exception
    assert "PAGE-Net (slides + gene expression + age)" in text(at)
    assert f"{man.ref} (newest; no production alias)" in text(at)
    patient = at.selectbox(key="patient").value
    assert float(metric(at, "Risk score (prognostic index)")) == pytest.approx(pi[patient], abs=1e-3)
    assert f"n={(split == 'test').sum()}, events=" in text(at)  # statistics on PAGE-Net's held-out test patients
    shutil.rmtree(folder)
    at.run()
    assert not at.exception and at.radio(key="risk_model").value == "elastic_net"
