"""Reviews in the database and QuPath GeoJSON / CSV export, round-tripped."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from pathviz.errors import PathVizError
from pathviz.report.export import export_csv, export_geojson, flagged_table
from pathviz.settings import Settings
from pathviz.store.workspace import Workspace


def test_flagged_table_orders_by_score_and_matches_grid(demo_ws):
    sid = demo_ws.slides()[0].slide_id
    t = flagged_table(demo_ws, sid, "haematoxylin", top_k=8)
    layer = demo_ws.layer(sid, "haematoxylin")
    grid = demo_ws.grid(sid)
    assert list(t["rank"]) == list(range(1, 9))
    assert t["score"].is_monotonic_decreasing
    assert t["score"].iloc[0] == pytest.approx(float(layer.scores.max()))
    for r in t.itertuples():
        assert (r.x, r.y, r.width, r.height) == grid.rect(r.patch_index)


def test_reviews_persist_across_workspace_instances(demo_ws):
    sid = demo_ws.slides()[0].slide_id
    rect = demo_ws.grid(sid).rect(int(demo_ws.layer(sid, "haematoxylin").top_patches(1)[0]))
    demo_ws.db.add_review(sid, "haematoxylin", demo_ws.grid(sid).key, rect, "agree", "Dr A", "dense nuclei", 0.07)
    demo_ws.db.add_review(sid, "haematoxylin", demo_ws.grid(sid).key, rect, "disagree", "Dr B", "crush artefact", 0.07)
    demo_ws.db.add_review(sid, "haematoxylin", demo_ws.grid(sid).key, rect, "disagree", "Dr A", "changed my mind", 0.07)
    again = Workspace(Settings.from_env(demo_ws.home))
    revs = again.db.reviews(sid, "haematoxylin")
    assert [(r.reviewer, r.verdict) for r in revs] == [("Dr A", "agree"), ("Dr B", "disagree"), ("Dr A", "disagree")]
    latest = again.db.latest_reviews(sid, "haematoxylin")[rect]
    assert sorted((r.reviewer, r.verdict) for r in latest) == [("Dr A", "disagree"), ("Dr B", "disagree")]
    row = flagged_table(again, sid, "haematoxylin", 3).iloc[0]
    assert (row.verdict, row.comment, row.n_agree, row.n_disagree) == ("disagree", "changed my mind", 0, 2)


def test_review_validation(demo_ws):
    sid = demo_ws.slides()[0].slide_id
    with pytest.raises(PathVizError, match="Verdict"):
        demo_ws.db.add_review(sid, "haematoxylin", "k", (0, 0, 1, 1), "maybe", "Dr A")
    with pytest.raises(PathVizError, match="reviewer"):
        demo_ws.db.add_review(sid, "haematoxylin", "k", (0, 0, 1, 1), "agree", "  ")
    with pytest.raises(PathVizError, match="No slide"):
        demo_ws.db.add_review("ghost", "haematoxylin", "k", (0, 0, 1, 1), "agree", "Dr A")
    assert demo_ws.db.reviews(sid) == []


def test_geojson_is_qupath_shaped_and_round_trips(demo_ws, tmp_path):
    sid = demo_ws.slides()[0].slide_id
    grid = demo_ws.grid(sid)
    table = flagged_table(demo_ws, sid, "haematoxylin", 5)
    first = table.iloc[0]
    demo_ws.db.add_review(sid, "haematoxylin", grid.key, (first.x, first.y, first.width, first.height),
                          "agree", "Dr A", "mitoses", float(first.score))
    out = tmp_path / "flagged.geojson"
    n = export_geojson(demo_ws, sid, "haematoxylin", out, top_k=5)
    gj = json.loads(out.read_text())
    assert gj["type"] == "FeatureCollection" and n == len(gj["features"]) == 5
    f0 = gj["features"][0]
    assert f0["geometry"]["type"] == "Polygon"
    ring = f0["geometry"]["coordinates"][0]
    x, y, w, h = (int(v) for v in (first.x, first.y, first.width, first.height))
    assert ring == [[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]
    props = f0["properties"]
    assert props["objectType"] == "annotation"
    assert props["classification"] == {"name": "Flagged: agree", "color": [220, 40, 40]}
    assert props["measurements"]["score"] == pytest.approx(float(first.score))
    assert props["comment"] == "mitoses" and props["reviewer"] == "Dr A"
    assert gj["features"][1]["properties"]["classification"]["name"] == "Flagged: unreviewed"
    csv = tmp_path / "flagged.csv"
    export_csv(demo_ws, sid, "haematoxylin", csv, top_k=5)
    back = pd.read_csv(csv, keep_default_na=False)
    assert list(back["x"]) == list(table["x"]) and back.loc[0, "verdict"] == "agree"


def test_cli_export_geojson(demo_ws, tmp_path):
    sid = demo_ws.slides()[0].slide_id
    out = tmp_path / "cli.geojson"
    proc = subprocess.run(
        [sys.executable, "-m", "pathviz", "export-geojson", sid, "--out", str(out), "--top-k", "7",
         "--csv", str(tmp_path / "cli.csv"), "--json"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["features"] == 7
    assert len(json.loads(out.read_text())["features"]) == 7
    assert len(pd.read_csv(tmp_path / "cli.csv")) == 7


def test_cli_demo_and_list(tmp_path, monkeypatch):
    monkeypatch.setenv("PATHVIZ_HOME", str(tmp_path / "fresh"))
    # a 40-patient demo cohort (the default 200 takes ~6 min on 2 cores)
    proc = subprocess.run([sys.executable, "-m", "pathviz", "demo", "--patients", "40", "--json"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["slides"]) == 2
    proc = subprocess.run([sys.executable, "-m", "pathviz", "slide", "list", "--json"], capture_output=True, text=True)
    slides = json.loads(proc.stdout)["slides"]
    demo = [s for s in slides if s["source"] == "demo"]
    assert {s["vendor"] for s in demo} == {"aperio", "image"}
    png = next(s for s in demo if s["vendor"] == "image")
    assert png["declared_mpp"] == 0.5
    cohort = [s for s in slides if s["source"] == "demo_cohort"]
    assert len(cohort) == 40 and {(s["vendor"], s["mpp"]) for s in cohort} == {("generic-tiff", 0.5)}
    # another size in the same workspace is refused by name, and the built demo is kept
    proc = subprocess.run([sys.executable, "-m", "pathviz", "demo", "--patients", "60"], capture_output=True, text=True)
    assert proc.returncode != 0 and "already holds a demo cohort" in proc.stderr and "40 patients" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "pathviz", "slide", "list", "--json"], capture_output=True, text=True)
    assert sum(s["source"] == "demo_cohort" for s in json.loads(proc.stdout)["slides"]) == 40
