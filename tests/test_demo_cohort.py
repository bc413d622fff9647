"""The demo cohort is the benchmark generator (v3) at first-start size: built, registered and analysed on
the planted grid; a different demo is refused, not replaced; and PAGE-Net trains on it with the
ground truth unreadable (no model code reads it)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from pathviz.cohort import load_cohort
from pathviz.cohort.benchmark import PATCH, parse_layout, patch_classes
from pathviz.cohort.demo import DEMO_MPP, read_ground_truth
from pathviz.errors import PathVizError
from pathviz.jobs.demo import build_demo_cohort, demo_cohort_dir, demo_cohort_ready

PATIENTS = 40

_BLOCKED: list[str] = []  # while non-empty, opening a file whose name is in it raises (audit hook)


def _audit(event: str, args: tuple) -> None:
    if _BLOCKED and event == "open" and args and isinstance(args[0], (str, bytes, Path)):
        name = Path(args[0].decode() if isinstance(args[0], bytes) else args[0]).name
        if name in _BLOCKED:
            raise PermissionError(f"{name} is unreadable in this test")


sys.addaudithook(_audit)  # audit hooks cannot be removed; this one acts only while _BLOCKED is set


@pytest.fixture(scope="module")
def demo_cohort_home(tmp_path_factory, demo_svs, demo_png) -> Path:
    """A workspace with a 40-patient demo cohort (cohort seed 5), built, registered and analysed."""
    from pathviz.settings import Settings
    from pathviz.store.workspace import Workspace

    home = tmp_path_factory.mktemp("democohort") / "ws"
    build_demo_cohort(Workspace(Settings.from_env(home)), seed=5, patients=PATIENTS)
    return home


@pytest.fixture
def demo_cohort_ws(demo_cohort_home, monkeypatch):
    from pathviz.settings import Settings
    from pathviz.store.workspace import Workspace

    monkeypatch.setenv("PATHVIZ_HOME", str(demo_cohort_home))
    monkeypatch.delenv("PATHVIZ_DATABASE_URL", raising=False)
    return Workspace(Settings.from_env(demo_cohort_home))


def test_demo_cohort_registered_on_the_planted_grid(demo_cohort_ws):
    ws = demo_cohort_ws
    folder = demo_cohort_dir(ws)
    truth = read_ground_truth(folder)
    assert truth["generator_version"] == 3 and truth["seed"] == 5 and truth["patients_n"] == PATIENTS
    assert demo_cohort_ready(ws)
    recs = [r for r in ws.slides() if r.source == "demo_cohort"]
    assert len(recs) == PATIENTS
    cohort = load_cohort("demo")
    assert {"slide", "split"} <= set(cohort.id_columns) and "split" not in cohort.clinical_covariates()
    for rec in recs[:5]:
        grid = ws.grid(rec.slide_id)
        assert grid.patch_size == PATCH and grid.mpp == pytest.approx(DEMO_MPP)
        # every grid patch sits on the generator's 8 x 8 patch lattice, and patches without tissue are left out
        xy = grid.coords
        assert (xy % PATCH == 0).all()
        pid = Path(rec.path).stem
        tissue = patch_classes(parse_layout(truth["patients"][pid]["tile_classes"]), None)
        kept = tissue[xy[:, 1] // PATCH, xy[:, 0] // PATCH]
        assert (kept >= 1).all() and len(xy) <= (tissue >= 1).sum()


def test_a_different_demo_is_refused_and_nothing_replaced(demo_cohort_ws):
    ws = demo_cohort_ws
    before = sorted(p.name for p in (demo_cohort_dir(ws) / "slides").iterdir())
    build_demo_cohort(ws, seed=5, patients=PATIENTS)  # the same one: kept, nothing rebuilt
    with pytest.raises(PathVizError, match="already holds a demo cohort.*seed 5, 40 patients.*PATHVIZ_HOME"):
        build_demo_cohort(ws, seed=6, patients=PATIENTS)
    with pytest.raises(PathVizError, match="already holds"):
        build_demo_cohort(ws, seed=5, patients=60)
    assert sorted(p.name for p in (demo_cohort_dir(ws) / "slides").iterdir()) == before
    assert read_ground_truth(demo_cohort_dir(ws))["seed"] == 5


def test_pagenet_trains_with_the_ground_truth_unreadable(demo_cohort_ws, tmp_path):
    """The issue's guard: with ground_truth.json unreadable (any open of it raises), PAGE-Net still
    trains end to end, writes its layers and uses the generator's test patients."""
    from pathviz.jobs.pagenet import train_pagenet_model

    ws = demo_cohort_ws
    gt = demo_cohort_dir(ws) / "ground_truth.json"
    truth = json.loads(gt.read_text())
    _BLOCKED.append(gt.name)
    try:
        with pytest.raises(PermissionError):
            gt.read_text()  # the guard works
        metrics = train_pagenet_model(ws, tmp_path / "out", "demo", seed=1, epochs_cnn=1)
    finally:
        _BLOCKED.clear()
    assert metrics["cnn_px"] == 64 and metrics["k1"] == 32  # 256 px at 0.5 um/px read at 2 um/px; half of 8 x 8
    import pandas as pd

    table = pd.read_csv(tmp_path / "out" / "prognostic_index.csv")
    test = set(table.loc[table["split"] == "test", "patient_id"])
    assert test == {p for p, v in truth["patients"].items() if v["split"] == "test"}
    assert set(table["split"]) == {"train", "validation", "test"}
    assert np.isfinite(table["prognostic_index"]).all()
    sid = table["slide_id"].iloc[0]
    layer = ws.model_layer(sid, "survival_score", {metrics["layer_tag"]})
    assert len(layer.scores) == len(ws.grid(sid))


def test_old_demo_cohort_is_not_taken_for_the_current_generator(demo_cohort_ws, tmp_path):
    from pathviz.settings import Settings
    from pathviz.store.workspace import Workspace

    home = tmp_path / "old"
    shutil.copytree(demo_cohort_dir(demo_cohort_ws), home / "cohorts" / "demo", ignore=shutil.ignore_patterns("slides"))
    gt = home / "cohorts" / "demo" / "ground_truth.json"
    truth = json.loads(gt.read_text())
    truth.pop("generator_version")
    gt.write_text(json.dumps(truth))
    ws = Workspace(Settings.from_env(home))
    assert not demo_cohort_ready(ws)
    with pytest.raises(PathVizError, match="generator v1"):
        build_demo_cohort(ws, seed=5, patients=PATIENTS)
    # a v1 clinical table (no generator split) is refused by name, not read with a confusing column error
    import pandas as pd

    from pathviz.cohort.demo import load_demo_cohort

    table = home / "cohorts" / "demo" / "clinical.csv"
    pd.read_csv(table).drop(columns=["split"]).to_csv(table, index=False)
    with pytest.raises(PathVizError, match="earlier PathViz.*fresh workspace"):
        load_demo_cohort(home / "cohorts" / "demo")


def test_a_readable_older_demo_is_kept_as_it_is(demo_cohort_ws, tmp_path):
    """A workspace whose demo was built by generator v2 (same files and columns) keeps it after an
    upgrade: it is ready, `pathviz demo` keeps it (models and reviews refer to its slides) and
    says how to get the current generator."""
    from pathviz.settings import Settings
    from pathviz.store.workspace import Workspace

    home = tmp_path / "v2"
    shutil.copytree(demo_cohort_dir(demo_cohort_ws), home / "cohorts" / "demo", copy_function=shutil.copy)
    gt = home / "cohorts" / "demo" / "ground_truth.json"
    truth = json.loads(gt.read_text())
    truth["generator_version"] = 2
    gt.write_text(json.dumps(truth))
    before = gt.read_bytes()
    ws = Workspace(Settings.from_env(home))
    messages = []
    build_demo_cohort(ws, lambda f, m: messages.append(m), seed=5, patients=PATIENTS, analyse=False)
    assert gt.read_bytes() == before and any("keeping the generator v2" in m for m in messages)
    assert len(ws.slides()) == PATIENTS
