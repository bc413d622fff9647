"""Page tests through streamlit.testing.v1.AppTest (no browser)."""

from __future__ import annotations

import pytest

import json
import time
from pathlib import Path

import pandas as pd
import streamlit as st
from streamlit.testing.v1 import AppTest

from conftest import app_test

from pathviz.cohort.demo import read_ground_truth
from pathviz.jobs.queue import JobQueue
from pathviz.store.registry import ModelRegistry, chosen_layer_tags

ROOT = Path(__file__).resolve().parents[1]
VIEWER = str(ROOT / "pages" / "slide_viewer.py")
WORKSPACE = str(ROOT / "pages" / "workspace.py")
TIMEOUT = 60


def fresh_app(script: str) -> AppTest:
    """A new app object, as after a restart: process caches cleared."""
    st.cache_resource.clear()
    st.cache_data.clear()
    return app_test(script, default_timeout=TIMEOUT)


def texts(at: AppTest) -> str:
    parts = [e.value for e in at.markdown] + [e.value for e in at.caption] + [e.value for e in at.subheader]
    parts += [e.value for e in at.success] + [e.value for e in at.error] + [e.value for e in at.info]
    parts += [e.value for e in at.text]
    return "\n".join(str(p) for p in parts)


def test_viewer_layers_switch(demo_ws):
    at = fresh_app(VIEWER).run()
    assert not at.exception
    assert at.selectbox(key="layer").value == "haematoxylin"
    first = texts(at)
    assert "Haematoxylin density" in first and "Top 10 flagged patches" in first
    assert len(at.button) >= 10  # a Centre button per flagged patch

    at.selectbox(key="layer").set_value("eosin").run()
    assert not at.exception
    second = texts(at)
    assert "Top 10 flagged patches · Eosin density" in second
    assert "Ruifrok" in second

    at.selectbox(key="layer").set_value("tissue_fraction").run()
    assert "Tissue fraction" in texts(at)

    at.selectbox(key="layer").set_value("(none)").run()
    assert "Choose a score layer" in texts(at)


def test_viewer_centre_button_selects_patch(demo_ws):
    at = fresh_app(VIEWER).run()
    at.button(key="centre_3").click().run()
    assert not at.exception
    assert at.session_state["focus"]["rank"] == 3
    assert at.selectbox(key="selected_rank").value == 3


def test_review_saved_and_read_back_after_restart(demo_ws):
    at = fresh_app(VIEWER).run()
    at.selectbox(key="selected_rank").set_value(2)
    at.radio(key="verdict").set_value("disagree")
    at.text_area(key="comment").input("tangentially cut gland, not nuclei")
    at.button(key="save_review").click().run()
    assert not at.exception
    assert "Saved: disagree on patch #2 by tester" in texts(at)

    # restart: a new app object, caches cleared; the review comes back from the database
    at2 = fresh_app(VIEWER).run()
    at2.selectbox(key="selected_rank").set_value(2).run()
    body = texts(at2)
    assert "disagree by tester" in body and "tangentially cut gland" in body
    table = at2.dataframe[0].value
    row = table[table["rank"] == 2].iloc[0]
    assert row["verdict"] == "disagree" and row["reviewer"] == "tester"
    assert len(demo_ws.db.reviews(demo_ws.slides()[0].slide_id)) == 1


def test_review_needs_the_pathologist_role(demo_ws):
    """An oncologist opening the viewer by URL is refused; an admin sees reviews read-only; the
    backend refuses a review by anyone but a pathologist (not only hidden)."""
    from pathviz.auth.policy import PermissionDeniedError

    onc = app_test(VIEWER, username="onc", roles=("oncologist",)).run()
    assert "Slide viewer is for the admin or pathologist role" in texts(onc) and not onc.button
    adm = app_test(VIEWER, username="adm", roles=("admin",)).run()
    assert not adm.exception and "sees them read-only" in texts(adm)
    assert not [b for b in adm.button if b.key == "save_review"]
    sid = demo_ws.slides()[0].slide_id
    admin = demo_ws.accounts.session_actor(adm.session_state["_pathviz_token"])
    with pytest.raises(PermissionDeniedError, match="may not save reviews"):
        demo_ws.save_review(admin, sid, "haematoxylin", demo_ws.grid(sid).key, (0, 0, 256, 256), "agree")
    assert demo_ws.db.reviews(sid) == []


def test_viewer_switch_slide(demo_ws):
    at = fresh_app(VIEWER).run()
    png = next(r for r in demo_ws.slides() if r.vendor == "image")
    at.selectbox(key="slide_id").set_value(png.slide_id).run()
    assert not at.exception
    assert "1000x1000 px · 0.5 µm/px (declared)" in texts(at)


def test_workspace_page_bad_path_shows_error_and_keeps_slides(demo_ws, tmp_path):
    bad = demo_ws.home / "incoming" / "broken.svs"  # inside the workspace: the page may read it
    bad.parent.mkdir()
    bad.write_bytes(b"garbage" * 100)
    at = fresh_app(WORKSPACE).run()
    assert not at.exception
    assert "✅ demo slides registered and analysed" in texts(at)
    assert "❌ PAGE-Net trained into the model registry" in texts(at)  # a partial demo says so (and offers to resume)
    at.text_input(key="add_path").input(str(bad))
    next(b for b in at.button if b.label == "Add slide").click().run()  # the form's submit button
    assert str(bad) in texts(at) and "not a slide format" in texts(at)
    assert len(demo_ws.slides()) == 2


def test_app_first_start_builds_demo_and_cohort(ws, monkeypatch):
    """First start: the dashboard queues the demo build as a background job, starts a worker and
    shows the job's progress; the build goes on without the session, and afterwards every part
    is there. (A 60-patient demo, PATHVIZ_DEMO_PATIENTS, to keep CI short; the default is 200.)"""
    monkeypatch.setenv("PATHVIZ_DEMO_PATIENTS", "60")
    st.cache_resource.clear()
    at = app_test(str(ROOT / "dashboard.py"), default_timeout=120).run()
    assert not at.exception
    assert "First start: building the demo workspace" in texts(at)
    queue = JobQueue(ws.db, ws.home)
    (job,) = queue.active("demo")
    at = app_test(str(ROOT / "dashboard.py"), default_timeout=120).run()  # a second session: the same job
    assert [j.id for j in queue.active("demo")] == [job.id]
    t0 = time.monotonic()
    while not (job := queue.get(job.id)).finished and time.monotonic() - t0 < 1500:
        time.sleep(2)
    assert job.status == "succeeded", job.error
    demo = [r for r in ws.slides() if r.source == "demo"]
    cohort_slides = [r for r in ws.slides() if r.source == "demo_cohort"]
    assert job.params["patients"] == 60 and job.result["patients"] == 60
    assert len(demo) == 2 and len(cohort_slides) == 60
    assert all(ws.default_grid_key(r.slide_id) for r in ws.slides())
    # the patient page works on the demo cohort, labelled, with CA19-9 at 37 U/mL by default
    st.cache_resource.clear()
    page = app_test(str(ROOT / "pages" / "patient.py"), default_timeout=300)
    page.session_state["cohort"] = "demo"
    page.run()
    assert not page.exception
    assert any("Semi-synthetic demo cohort" in w.value for w in page.warning)
    assert page.selectbox(key="marker").value == "ca19_9" and page.number_input(key="thr_ca19_9").value == 37.0
    assert "Interaction (treatment x risk group): p " in texts(page)
    check_pagenet_on_demo(ws)


def check_pagenet_on_demo(ws) -> None:
    """The demo build trained PAGE-Net on the generator's split: its layers cover every grid patch of
    the test slides, and the patient, pathway and viewer pages offer it, with its held-out warning
    where its C-index is not shown to beat chance. (Whether it finds the planted tissue is measured
    by bench/planted_signal.py on 500-patient cohorts, not asserted on a 60-patient demo.)"""
    registry = ModelRegistry(ws.models_dir)
    folder = registry.path("pagenet/demo")
    metrics = json.loads((folder / "metrics.json").read_text())
    tags = chosen_layer_tags(registry)
    assert tags == {metrics["layer_tag"]}
    truth = read_ground_truth(ws.home / "cohorts" / "demo")
    table = pd.read_csv(folder / "prognostic_index.csv")
    test = table[table["split"] == "test"]
    assert set(test["patient_id"]) == {p for p, v in truth["patients"].items() if v["split"] == "test"}
    for sid in test["slide_id"]:
        assert len(ws.model_layer(sid, "survival_score", tags).scores) == len(ws.grid(sid))
    st.cache_resource.clear()
    page = app_test(str(ROOT / "pages" / "patient.py"), default_timeout=300)
    page.session_state["cohort"] = "demo"
    page.session_state["risk_model"] = "pagenet"
    page.session_state["evaluate_on"] = "all"  # 12 held-out patients of 60 are too few for two risk groups
    page.run()
    assert not page.exception
    assert "PAGE-Net (slides + gene expression + age)" in texts(page)
    if not metrics["held_out"]["better_than_chance"]:
        assert any("not shown to be better than chance" in e.value or "below 0.5" in e.value for e in page.error)
    pw = app_test(str(ROOT / "pages" / "pathways.py"), default_timeout=300)
    pw.session_state["pw_cohort"] = "demo"
    pw.run()
    assert not pw.exception and "Integrated model: PAGE-Net" in texts(pw)
    sid = test["slide_id"].iloc[0]
    viewer = fresh_app(VIEWER)
    viewer.session_state["slide_id"] = sid
    viewer.session_state["layer"] = ws.model_layer(sid, "survival_score", tags).name
    viewer.run()
    assert not viewer.exception
    assert any(m.label == "Patient's PAGE-Net prognostic index" for m in viewer.metric)
    assert "Activations of the survival-discriminative maps" in texts(viewer)


@pytest.mark.parametrize("page", ["dashboard.py", "pages/slide_viewer.py", "pages/patient.py", "pages/pathways.py",
                                  "pages/admin.py", "pages/workspace.py", "pages/users.py", "pages/account.py"])
def test_every_page_refuses_without_a_session(demo_ws, page):
    """A page run without a logged-in session (e.g. opened by its URL) draws nothing but the notice."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / page), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any("You are not logged in" in w.value for w in at.warning)
    assert not at.dataframe and not at.selectbox and not at.button and not at.text_input
