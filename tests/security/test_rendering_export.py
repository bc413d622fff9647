"""Rendering and export (trust issue, item 6): a review comment or reviewer name is shown as plain
text (a Markdown image is never fetched), CSV cells cannot run as spreadsheet formulas, and
exports name slides by id, not by their original file name."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import streamlit as st
from streamlit.testing.v1 import AppTest

from conftest import app_test

from pathviz.cli import main
from pathviz.report.export import csv_safe, flagged_csv, flagged_table

VIEWER = str(Path(__file__).resolve().parents[2] / "pages" / "slide_viewer.py")
IMAGE = "![x](http://attacker.example/img.png)"
FORMULA = '=HYPERLINK("http://attacker.example","click")'


def _review(ws, comment: str, reviewer: str = "Dr <b>Page</b>"):
    sid = ws.slides()[0].slide_id
    table = flagged_table(ws, sid, "haematoxylin", 5)
    r = table.iloc[0]
    ws.db.add_review(sid, "haematoxylin", ws.grid(sid).key, (r.x, r.y, r.width, r.height), "agree", reviewer, comment, float(r.score))
    return sid


def test_comment_markdown_is_shown_as_text_not_rendered(demo_ws):
    sid = _review(demo_ws, IMAGE)
    st.cache_resource.clear()
    at = app_test(VIEWER, default_timeout=120)
    at.session_state["slide_id"] = sid
    at.session_state["layer"] = "haematoxylin"
    at.run()
    assert not at.exception
    texts = [t.value for t in at.text]
    assert any(IMAGE in t and "Dr <b>Page</b>" in t for t in texts)  # shown verbatim
    rendered = [m.value for m in at.markdown] + [c.value for c in at.caption]
    assert not any("attacker.example" in m for m in rendered)  # never as Markdown / HTML


def test_csv_cells_cannot_run_as_formulas(demo_ws, tmp_path):
    table = pd.DataFrame({"comment": [FORMULA, "+1", "-2", "@SUM(A1)", "fine", None], "score": [1.0, -2.0, 3, 4, 5, 6]})
    safe = csv_safe(table)
    assert list(safe["comment"][:5]) == ["'" + FORMULA, "'+1", "'-2", "'@SUM(A1)", "fine"]
    assert list(safe["score"]) == [1.0, -2.0, 3, 4, 5, 6]  # numbers untouched
    sid = _review(demo_ws, FORMULA)
    out = tmp_path / "flagged.csv"
    assert main(["export-geojson", sid, "--layer", "haematoxylin", "--top-k", "5", "--out", str(tmp_path / "f.geojson"),
                 "--csv", str(out)]) == 0
    text = out.read_text()
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text and '"=HYPERLINK' not in text
    assert flagged_csv(flagged_table(demo_ws, sid, "haematoxylin", 5)).count("'=HYPERLINK") == 1


def test_exports_name_the_slide_by_id(demo_ws, tmp_path):
    rec = demo_ws.slides()[0]
    _review(demo_ws, "ok")
    out = tmp_path / "f.geojson"
    assert main(["export-geojson", rec.slide_id, "--layer", "haematoxylin", "--top-k", "3", "--out", str(out)]) == 0
    features = json.loads(out.read_text())["features"]
    assert {f["properties"]["slide"] for f in features} == {rec.slide_id}
    assert rec.name not in out.read_text()
