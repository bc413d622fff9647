"""The admin page through AppTest: versions with their held-out figures beside the baseline,
side-by-side comparison, promote and roll back behind a confirmation, which page uses which
version, and live job rows (the browser test launches a real training)."""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

from conftest import app_test

from pathviz.jobs.queue import JobQueue
from pathviz.jobs.worker import Worker
from pathviz.report.models import compare_versions, versions_table
from pathviz.store.registry import ModelRegistry

from pathviz.auth.policy import operator

OPERATOR = operator()

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "admin.py")


def _fake_version(reg: ModelRegistry, c: float, lower: float, td_auc: bool = False):
    def write(folder: Path) -> dict:
        (folder / "weights.pt").write_bytes(b"w")
        (folder / "model.json").write_text("{}")
        m = {"held_out": {"c_index": c, "lower": lower, "upper": c + 0.05, "n": 40, "events": 12, "splits": [c], "sd": 0.0},
             "clinical_baseline": {"c_index": 0.55, "lower": 0.45, "upper": 0.65}}
        if td_auc:
            m["td_auc"] = {"times": [12.0, 24.0], "auc": [0.71, 0.69], "mean_auc": 0.70}
        return m

    return reg.create_version("coxpasnet", "gse1992", write, cohort="gse1992", data_digest="abc", split_seed=0,
                              params={"genesets": "kegg", "seed": 0})


def _df(at: AppTest, column: str):
    """The page's dataframe that has ``column``."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def _texts(at: AppTest) -> str:
    parts = [e.value for e in at.markdown] + [e.value for e in at.caption] + [e.value for e in at.success]
    parts += [e.value for e in at.warning] + [e.value for e in at.info] + [e.value for e in at.error]
    return "\n".join(map(str, parts))


def test_versions_compare_promote_and_rollback(ws):
    reg = ModelRegistry(ws.models_dir)
    v1 = _fake_version(reg, 0.70, 0.62)
    v2 = _fake_version(reg, 0.52, 0.44, td_auc=True)
    table = versions_table(reg, "coxpasnet", "gse1992")
    assert list(table["version"]) == ["v0002", "v0001"]
    assert list(table["verdict"]) == ["NOT better than chance", "beats chance"]
    assert table["held-out C [95% CI]"].iloc[1] == "0.700 [0.620, 0.750]"
    assert table["clinical baseline C"].iloc[0] == "0.550 [0.450, 0.650]"
    cmp = compare_versions([v1, v2])
    assert cmp.loc["time-dependent AUC", "v0002"] == "12 mo: 0.710, 24 mo: 0.690"
    assert cmp.loc["time-dependent AUC", "v0001"] == "not recorded"
    assert cmp.loc["spread over splits (sd)", "v0001"] == "0.000 over 1 split(s)"

    st.cache_data.clear()
    at = app_test(PAGE, default_timeout=120).run()
    assert not at.exception
    usage = _df(at, "chosen by")
    assert set(usage["version"]) == {"v0002"} and set(usage["chosen by"]) == {"newest (no production alias)"}
    # promote without the confirmation: nothing moves
    at.selectbox(key="adm_pv_coxpasnet_gse1992").set_value("v0001")
    next(b for b in at.button if b.label == "Promote").click().run()
    assert "Tick the confirmation first." in _texts(at) and reg.aliases("coxpasnet", "gse1992") == {}
    at.checkbox(key="adm_pcoxpasnet_gse1992_sure").check()
    next(b for b in at.button if b.label == "Promote").click().run()
    assert not at.exception
    assert reg.aliases("coxpasnet", "gse1992") == {"production": "v0001"}
    assert "Promoted: production of coxpasnet/gse1992 none → v0001" in _texts(at)
    assert set(_df(at, "chosen by")["version"]) == {"v0001"}
    at.selectbox(key="adm_pv_coxpasnet_gse1992").set_value("v0002")
    at.checkbox(key="adm_pcoxpasnet_gse1992_sure").check()
    next(b for b in at.button if b.label == "Promote").click().run()
    assert reg.aliases("coxpasnet", "gse1992") == {"production": "v0002"}
    at.checkbox(key="adm_rcoxpasnet_gse1992_sure").check()
    next(b for b in at.button if b.label == "Roll back").click().run()
    assert not at.exception
    assert reg.aliases("coxpasnet", "gse1992") == {"production": "v0001"}
    assert "Rolled back: production of coxpasnet/gse1992 v0002 → v0001" in _texts(at)
    assert [h["action"] for h in reg.alias_history("coxpasnet", "gse1992")] == ["promote", "promote", "rollback"]


def test_jobs_panel_shows_active_and_finished_jobs(ws, monkeypatch):
    import os
    import time

    fixtures = Path(__file__).resolve().parent / "fixtures"
    monkeypatch.setenv("PATHVIZ_JOB_PLUGINS", "job_kinds_for_tests")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(fixtures), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.syspath_prepend(str(fixtures))
    queue = JobQueue(ws.db, ws.home)
    done = queue.submit("verify_models", actor=OPERATOR)
    holder = Worker(ws)  # hold the worker lock while this test plays the worker
    assert holder.acquire()
    queue.claim_next("default", os.getpid())
    queue.finish(done.id, "failed", error="boom. Fix: nothing")
    holder.release()
    waiting = queue.submit("sleeper", {"steps": 1000, "pause": 0.5}, actor=OPERATOR)  # the page starts a worker for it
    st.cache_data.clear()
    at = app_test(PAGE, default_timeout=120).run()
    assert not at.exception
    assert f"#{waiting.id} sleeper" in _texts(at)
    recent = _df(at, "seconds")
    assert list(recent["job"]) == [done.id] and recent["status"].iloc[0] == "failed" and "boom" in recent["result"].iloc[0]
    next(b for b in at.button if b.label == "Cancel").click().run()
    t0 = time.monotonic()
    while queue.get(waiting.id).status != "cancelled" and time.monotonic() - t0 < 30:
        time.sleep(0.2)
    assert queue.get(waiting.id).status == "cancelled"
    assert json.dumps(queue.get(waiting.id).to_dict())  # JSON-ready
