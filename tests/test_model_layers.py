"""Viewer layers written by model versions: named for the version's tag, so a retrained model
never overwrites another version's layers, and the viewer lists only the chosen versions'."""

from __future__ import annotations

import numpy as np
import pytest

from pathviz.errors import WorkspaceError
from pathviz.layers.score import ScoreLayer
from pathviz.store.registry import ModelRegistry, chosen_layer_refs, chosen_layer_tags
from pathviz.store.workspace import layer_label, model_layer_name, split_model_layer_name

from pathviz.auth.policy import operator

OPERATOR = operator()


def _version(reg: ModelRegistry, tag: str):
    def write(folder):
        (folder / "pagenet.pt").write_bytes(b"p")
        (folder / "cnn.pt").write_bytes(b"c")
        return {"layer_tag": tag}

    return reg.create_version("pagenet", "demo", write, cohort="demo")


def test_retraining_keeps_each_versions_layers_and_viewer_shows_the_chosen(ws, planted_tiff):
    rec = ws.add_slide(planted_tiff, copy=True)
    ws.analyse(rec.slide_id)
    grid = ws.grid(rec.slide_id)
    reg = ModelRegistry(ws.models_dir)
    for tag, value in (("aaaaaa01", 1.0), ("bbbbbb02", 2.0)):
        ws.save_layer(rec.slide_id, ScoreLayer(name=model_layer_name("survival_score", tag), title="t", grid_key=grid.key,
                                               scores=np.full(len(grid.coords), value, np.float32), units="u"))
        _version(reg, tag)
    # v0002 is the newest, so it is chosen until an alias says otherwise
    assert chosen_layer_tags(reg) == {"bbbbbb02"}
    names = ws.layer_names(rec.slide_id, model_tags=chosen_layer_tags(reg))
    assert "survival_score-mbbbbbb02" in names and "survival_score-maaaaaa01" not in names
    assert "haematoxylin" in names  # stain layers are not model layers: always listed
    assert float(ws.model_layer(rec.slide_id, "survival_score", chosen_layer_tags(reg)).scores[0]) == 2.0
    reg.promote("pagenet/demo@v0001", actor=OPERATOR)
    assert float(ws.model_layer(rec.slide_id, "survival_score", chosen_layer_tags(reg)).scores[0]) == 1.0  # untouched
    assert layer_label("survival_score-maaaaaa01", chosen_layer_refs(reg)) == "survival_score · pagenet/demo@v0001"
    assert layer_label("haematoxylin", chosen_layer_refs(reg)) == "haematoxylin"
    assert split_model_layer_name("survival_maps-m0123abcd") == ("survival_maps", "0123abcd")
    assert split_model_layer_name("eosin") == ("eosin", None)
    with pytest.raises(WorkspaceError, match="no 'survival_maps' layer of the chosen model version"):
        ws.model_layer(rec.slide_id, "survival_maps", chosen_layer_tags(reg))
    with pytest.raises(ValueError):
        model_layer_name("survival_score", "NOT-HEX")


def test_a_broken_alias_does_not_hide_other_models(ws):
    reg = ModelRegistry(ws.models_dir)
    _version(reg, "cccccc03")
    (ws.models_dir / "pagenet" / "demo" / "aliases.json").write_text('{"production": "v0009"}')  # points at nothing
    assert reg.chosen("pagenet") == {}  # skipped, not a crash of every page
