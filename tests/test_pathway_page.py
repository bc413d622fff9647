"""AppTest page tests for the researcher's pathway page."""

from __future__ import annotations

import io
import json
import os
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from conftest import app_test

from pathviz.cli import main
from pathviz.errors import PathVizError
from pathviz.settings import Settings
from pathviz.survival.chance import BOOTSTRAP_N, BOOTSTRAP_SEED, HeldOutC
from pathviz.jobs.queue import JobQueue
from pathviz.store.registry import ModelRegistry
from pathviz.jobs.coxpasnet import add_user_gmt, user_gmt_files
from pathviz.store.workspace import Workspace

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "pathways.py")


def text(at: AppTest) -> str:
    parts = [e.value for e in at.markdown] + [e.value for e in at.caption] + [e.value for e in at.info]
    parts += [e.value for e in at.subheader] + [e.value for e in at.error]
    return "\n".join(map(str, parts))


def page(cohort: str = "gse4335", repeats: int = 2) -> AppTest:
    st.cache_resource.clear()
    at = app_test(PAGE, default_timeout=180)
    at.session_state["pw_cohort"] = cohort
    at.session_state["pw_repeats"] = repeats
    return at.run()


CLI_OUTPUT: dict = {}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A workspace holding a Cox-PASNet model of gse4335 (KEGG, seed 0, 2 splits), trained by the
    CLI without --out: a registry version in the workspace, where the page finds it."""
    home = tmp_path_factory.mktemp("pw") / "ws"
    old = os.environ.get("PATHVIZ_HOME")
    os.environ["PATHVIZ_HOME"] = str(home)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        assert main(["train", "coxpasnet", "--cohort", "gse4335", "--repeats", "2"]) == 0
    CLI_OUTPUT["train"] = out.getvalue()
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["pathways", "rank", "--model", "coxpasnet/gse4335", "--json"]) == 0
    CLI_OUTPUT["rank"] = json.loads(out.getvalue())
    yield home
    if old is None:
        os.environ.pop("PATHVIZ_HOME", None)
    else:
        os.environ["PATHVIZ_HOME"] = old


def test_train_button_builds_model(tmp_path, monkeypatch):
    """The Train button queues a background job (a worker runs it); the page shows the new version."""
    monkeypatch.setenv("PATHVIZ_HOME", str(tmp_path / "ws"))
    at = page("gse4335", repeats=1)
    assert "No Cox-PASNet model for gse4335" in text(at)
    at.button(key="pw_train").click().run()
    assert not at.exception
    jws = Workspace(Settings.from_env(tmp_path / "ws"))
    queue = JobQueue(jws.db, jws.home)
    (job,) = queue.list(kind="coxpasnet")
    assert job.params["cohort"] == "gse4335" and job.params["repeats"] == 1
    t0 = time.monotonic()
    while not (job := queue.get(job.id)).finished and time.monotonic() - t0 < 300:
        time.sleep(0.5)
    assert job.status == "succeeded", job.error
    at.run()
    assert not at.exception
    assert "Ranked pathways" in text(at)
    man = ModelRegistry(tmp_path / "ws" / "models").get("coxpasnet/gse4335")
    assert man.version == "v0001" and man.cohort == "gse4335" and man.split_seed == 0 and "weights.pt" in man.files
    assert man.metrics["held_out"]["n_boot"] == BOOTSTRAP_N and len(man.data_digest) == 16
    assert job.result["model"] == man.ref
    assert "coxpasnet/gse4335@v0001 (newest; no production alias)" in text(at)


def test_rankings_km_and_stability(home):
    at = page()
    assert not at.exception
    body = text(at)
    assert "Kaplan-Meier by pathway node" in body and "Log-rank p " in body
    assert any(m.label == "Held-out C-index (mean over splits)" for m in at.metric)
    table = at.dataframe[0].value
    assert list(table["rank"][:3]) == [1, 2, 3] and table["importance"].is_monotonic_decreasing
    assert table["stability"].between(0, 1).all() and "over 2 splits" in body
    assert table["description"].str.contains(r"\(hsa\d{5}\)").all()  # human-readable KEGG names


def test_chance_guard_same_figures_on_page_and_cli(home):
    """The page and the CLI show one held-out C-index (mean +- sd over the splits, one bootstrap CI
    with its stated settings), the CLI's headline is that mean (not split 0), and the warning is
    shown exactly when the CI includes 0.5."""
    held = CLI_OUTPUT["rank"]["held_out_c_index"]
    headline = HeldOutC.from_dict(held).headline()
    assert "over 2 splits" in headline and held["n_boot"] == BOOTSTRAP_N and held["seed"] == BOOTSTRAP_SEED
    assert headline in CLI_OUTPUT["train"] and f"{BOOTSTRAP_N} resamples" in CLI_OUTPUT["train"]
    at = page()
    body = text(at)
    assert headline in body and f"{BOOTSTRAP_N} resamples" in body
    at_chance = held["lower"] <= 0.5
    assert ("not shown to be better than chance" in body) == at_chance
    assert ("WARNING" in CLI_OUTPUT["train"]) == at_chance
    assert "No-learning baseline on the same held-out patients: clinical Cox (age)" in body


def test_uploaded_gmt_is_checked_and_offered(home, tmp_path):
    ws = Workspace(Settings.from_env(home))
    genes = [f"G{i}" for i in range(20)]
    good = "\n".join(f"SET{k}\tmy set {k}\t" + "\t".join(genes[k:] + genes[:k]) for k in range(3)).encode()
    path = add_user_gmt(ws, good, "My sets.gmt")
    assert path.name == "My_sets.gmt" and path in user_gmt_files(ws)
    with pytest.raises(PathVizError, match=r"bad\.gmt, line 1"):
        add_user_gmt(ws, b"no tabs here\n", "bad.gmt")
    assert not (Path(home) / "genesets" / "bad.gmt").exists()
    with pytest.raises(PathVizError):
        add_user_gmt(ws, bytes(range(256)), "binary.gmt")
    assert sorted(p.name for p in (Path(home) / "genesets").iterdir()) == ["My_sets.gmt"]  # nothing half-written


def test_search_and_node_switch(home):
    at = page()
    table = at.dataframe[0].value
    target = table["pathway"].iloc[3]
    at.text_input(key="pw_search").input(target[-5:]).run()
    filtered = at.dataframe[0].value
    assert target in set(filtered["pathway"]) and len(filtered) < len(table)
    before = [c.proto.spec for c in at.get("plotly_chart")]
    at.selectbox(key="pw_node").set_value(target).run()
    assert not at.exception
    after = [c.proto.spec for c in at.get("plotly_chart")]
    assert f"{target}: activation above vs below the median" in after[0] and after[0] != before[0]


def test_add_gmt_from_the_page_selects_it(home, tmp_path):
    gmt = tmp_path / "hallmark_like.gmt"
    genes = [f"G{i}" for i in range(20)]
    gmt.write_text("\n".join(f"H{k}\thallmark {k}\t" + "\t".join(genes) for k in range(2)) + "\n")
    at = page()
    at.text_input(key="pw_gmt_path").input(str(gmt)).run()
    at.button(key="pw_gmt_add").click().run()
    assert not at.exception
    assert at.selectbox(key="pw_library").value.endswith("hallmark_like.gmt")
    assert "hallmark_like.gmt (yours), endpoint" in text(at) and "New version of coxpasnet/" in text(at)
    at.text_input(key="pw_gmt_path").input(str(tmp_path / "missing.gmt")).run()
    at.button(key="pw_gmt_add").click().run()
    assert not at.exception and "Cannot read" in text(at)
