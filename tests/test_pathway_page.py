"""AppTest page tests for the researcher's pathway page."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from pathviz.settings import Settings
from pathviz.training import load_library, train_pathway_model
from pathviz.training.coxpasnet_job import default_model_dir
from pathviz.workspace import Workspace

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "pathways.py")


def text(at: AppTest) -> str:
    parts = [e.value for e in at.markdown] + [e.value for e in at.caption] + [e.value for e in at.info]
    parts += [e.value for e in at.subheader] + [e.value for e in at.error]
    return "\n".join(map(str, parts))


def page(cohort: str = "gse4335", repeats: int = 2) -> AppTest:
    st.cache_resource.clear()
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["pw_cohort"] = cohort
    at.session_state["pw_repeats"] = repeats
    return at.run()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A workspace holding a Cox-PASNet model of gse4335 (KEGG, seed 0, 2 splits)."""
    home = tmp_path_factory.mktemp("pw") / "ws"
    ws = Workspace(Settings.from_env(home))
    train_pathway_model("gse4335", load_library("kegg"), default_model_dir(ws.models_dir, "gse4335", "kegg", 0), repeats=2)
    old = os.environ.get("PATHVIZ_HOME")
    os.environ["PATHVIZ_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("PATHVIZ_HOME", None)
    else:
        os.environ["PATHVIZ_HOME"] = old


def test_train_button_builds_model(tmp_path, monkeypatch):
    monkeypatch.setenv("PATHVIZ_HOME", str(tmp_path / "ws"))
    at = page("gse4335", repeats=1)
    assert "No Cox-PASNet model for gse4335" in text(at)
    at.button(key="pw_train").click().run()
    assert not at.exception
    assert "Ranked pathways" in text(at)
    assert (tmp_path / "ws" / "models" / "coxpasnet" / "gse4335-kegg-seed0" / "weights.pt").exists()


def test_rankings_km_and_stability(home):
    at = page()
    assert not at.exception
    body = text(at)
    assert "Kaplan-Meier by pathway node" in body and "Log-rank p=" in body
    assert any(m.label == "Validation C-index" for m in at.metric)
    table = at.dataframe[0].value
    assert list(table["rank"][:3]) == [1, 2, 3] and table["importance"].is_monotonic_decreasing
    assert table["stability"].between(0, 1).all() and "Validation C over 2 splits" in body


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
