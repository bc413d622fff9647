"""Attention MIL / cross-attention through the registry and jobs on a small generated cohort (issue
14): feature store v2 written per slide and resumed after a killed extraction, attention layers of
the registered version shown by the viewer's layer list, weights files only from the workspace."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pathviz.auth.policy import operator
from pathviz.errors import PathVizError
from pathviz.jobs.demo import build_demo_cohort

OPERATOR = operator()

PATIENTS = 24


@pytest.fixture(scope="module")
def mil_home(tmp_path_factory, demo_svs, demo_png) -> Path:
    """A workspace with a 24-patient demo cohort (cohort seed 6), built, registered and analysed."""
    from pathviz.settings import Settings
    from pathviz.store.workspace import Workspace

    home = tmp_path_factory.mktemp("mil") / "ws"
    build_demo_cohort(Workspace(Settings.from_env(home)), seed=6, patients=PATIENTS)
    return home


@pytest.fixture
def mil_ws(mil_home, monkeypatch):
    from pathviz.settings import Settings
    from pathviz.store.workspace import Workspace

    monkeypatch.setenv("PATHVIZ_HOME", str(mil_home))
    monkeypatch.delenv("PATHVIZ_DATABASE_URL", raising=False)
    monkeypatch.setenv("PATHVIZ_THREADS", "1")
    return Workspace(Settings.from_env(mil_home))


_EXTRACT = """
import sys
from pathviz.settings import Settings
from pathviz.store.workspace import Workspace
from pathviz.nn.encoders import build_encoder
from pathviz.jobs.features import extract_features
ws = Workspace(Settings.from_env(sys.argv[1]))
ids = sorted(r.slide_id for r in ws.slides() if r.source == "demo_cohort")
extract_features(ws, ids, build_encoder("pagenet_cnn", device="cpu"), read_mpp=2.0)
"""


def test_a_killed_extraction_resumes_without_recomputing_finished_slides(mil_ws, tmp_path):
    from pathviz.jobs.features import extract_features, feature_version
    from pathviz.nn.encoders import build_encoder
    from pathviz.store.features import PatchFeatureStore

    enc = build_encoder("pagenet_cnn", device="cpu")
    version = feature_version(enc, 2.0, True)
    store = PatchFeatureStore(mil_ws, version)
    ids = sorted(r.slide_id for r in mil_ws.slides() if r.source == "demo_cohort")
    files = [store.path(s, mil_ws.default_grid_key(s)) for s in ids]
    proc = subprocess.Popen([sys.executable, "-c", _EXTRACT, str(mil_ws.home)], env={**os.environ},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and sum(f.exists() for f in files) < 3 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # killed mid-run, as by the OOM killer or a reboot
    proc.wait()
    done = [f for f in files if f.exists()]
    assert 3 <= len(done) < len(files), "the extraction was not caught mid-run"
    stamps = {f: f.stat().st_mtime_ns for f in done}
    got_version, feats = extract_features(mil_ws, ids, enc, read_mpp=2.0)
    assert got_version == version
    assert all(f.stat().st_mtime_ns == stamps[f] for f in done)  # finished slides were not recomputed
    assert sum(v["extracted"] for v in feats.values()) == len(files) - len(done) and all(f.exists() for f in files)
    header, arrays = store.load(ids[0], mil_ws.default_grid_key(ids[0]))
    assert arrays["features"].dtype == np.float16 and arrays["features"].shape == (len(mil_ws.grid(ids[0]).coords), 50)
    assert np.array_equal(arrays["coords"], mil_ws.grid(ids[0]).coords)
    assert header["encoder"]["encoder"] == "pagenet_cnn" and header["read_mpp"] == 2.0 and header["mpp"] == 0.5
    # the same slide re-extracted in a fresh process gives the same features (deterministic encoder)
    again = enc.encode(np.zeros((1, 128, 128, 3), np.uint8))
    assert np.array_equal(again, build_encoder("pagenet_cnn", device="cpu").encode(np.zeros((1, 128, 128, 3), np.uint8)))


@pytest.mark.parametrize("kind", ["attention_mil", "crossattn"])
def test_registered_bag_model_writes_attention_layers_the_viewer_lists(mil_ws, kind):
    from pathviz.jobs.mil import train_registered_mil
    from pathviz.store.registry import ModelRegistry, chosen_layer_refs
    from pathviz.store.workspace import split_model_layer_name

    man = train_registered_mil(mil_ws, "demo", kind, seed=0, encoder="pagenet_cnn")
    assert man.ref.startswith(f"{kind}/demo@v")
    m = man.metrics
    assert set(m["test_c_index"]) == {kind, m["comparator"], "clinical"} and 0 <= m["held_out"]["c_index"] <= 1
    assert m["encoder"]["weights_sha256"] is None and "randomly initialised" in m["encoder"]["notice"]
    assert "ca19_9" in m["baseline_clinical"] and "time" not in m["baseline_clinical"]
    refs = chosen_layer_refs(ModelRegistry(mil_ws.models_dir))
    assert refs[m["layer_tag"]] == man.ref
    sid = sorted(r.slide_id for r in mil_ws.slides() if r.source == "demo_cohort")[0]
    names = mil_ws.layer_names(sid, model_tags=set(refs))
    bases = {split_model_layer_name(n)[0] for n in names if split_model_layer_name(n)[1] == m["layer_tag"]}
    assert bases == ({"attention", "patch_risk"} | ({"attention_median_rna"} if kind == "crossattn" else set()))
    layer = mil_ws.model_layer(sid, "attention", {m["layer_tag"]})
    assert layer.scores.sum() == pytest.approx(1.0, abs=1e-4) and layer.meta["display"] == {"scale": "percentile", "floor": 50}
    assert len(layer.scores) == len(mil_ws.grid(sid).coords)
    risk = mil_ws.model_layer(sid, "patch_risk", {m["layer_tag"]})
    assert len(risk.scores) == len(layer.scores) and risk.meta["display"] == layer.meta["display"]
    if kind == "attention_mil":  # the slide's prognostic index is the attention-weighted mean of the patch scores
        assert risk.meta["attention_weighted_mean"] == pytest.approx(risk.meta["prognostic_index"], abs=1e-4)
    folder = ModelRegistry(mil_ws.models_dir).path(man.ref)
    table = json.loads((folder / "metrics.json").read_text())
    assert table["layer_tag"] == m["layer_tag"] and (folder / "model.pt").exists()
    if kind == "crossattn":  # the counterfactual query gives another map
        cf = mil_ws.model_layer(sid, "attention_median_rna", {m["layer_tag"]})
        assert not np.allclose(cf.scores, layer.scores)


def test_mil_job_refuses_weights_outside_the_workspace_and_unknown_encoders(mil_ws, tmp_path):
    import torch

    from pathviz.cli import add_weights_file
    from pathviz.jobs.queue import JobQueue
    from pathviz.nn.encoders import build_encoder

    q = JobQueue(mil_ws.db, mil_ws.home)
    outside = tmp_path / "cnn.pt"
    torch.save(build_encoder("pagenet_cnn", device="cpu").module.state_dict(), outside)
    with pytest.raises(PathVizError, match="not a file added to this workspace"):
        q.submit("attention_mil", {"cohort": "demo", "weights": str(outside), "encoder": "pagenet_cnn"}, actor=OPERATOR)
    with pytest.raises(PathVizError, match="Unknown patch encoder"):
        q.submit("attention_mil", {"cohort": "demo", "encoder": "vgg"}, actor=OPERATOR)
    added = add_weights_file(mil_ws.home, str(outside))
    assert added.parent == mil_ws.home / "weights" and added.read_bytes() == outside.read_bytes()
    job = q.submit("attention_mil", {"cohort": "demo", "weights": added.name, "encoder": "pagenet_cnn"}, actor=OPERATOR)
    assert job.params["weights"] == str(added.resolve())
    q.cancel(job.id, actor=OPERATOR)
    evil = tmp_path / "evil.pt"
    evil.write_bytes(b"\x80\x04\x95\x00")
    with pytest.raises(PathVizError):
        add_weights_file(mil_ws.home, str(evil))
    assert not any(p.name.endswith("evil.pt") for p in (mil_ws.home / "weights").iterdir())
