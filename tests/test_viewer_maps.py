"""The patch detail view's map images (pathviz.viewer.maps): shapes, shared scale, upsampling, errors."""

from __future__ import annotations

import numpy as np
import pytest

from pathviz.errors import PathVizError
from pathviz.layers.colormap import colormap_lut
from pathviz.viewer.maps import patch_map_images


def test_maps_are_upsampled_blocks_on_one_shared_scale():
    strong = np.arange(16, dtype=np.float32).reshape(4, 4) * 10.0  # 0..150
    weak = np.arange(16, dtype=np.float32).reshape(4, 4) * 0.001  # far below the strong map
    silent = np.zeros((4, 4), np.float32)
    out = patch_map_images(np.stack([strong, weak, silent]), cmap="inferno", upsample=8)
    assert len(out.images) == 3
    for img in out.images:
        assert img.shape == (32, 32, 3) and img.dtype == np.uint8
    # nearest neighbour: every 8x8 block is one colour, the colour of its map cell
    a = out.images[0]
    assert (a[8:16, 24:32] == a[8, 24]).all() and not (a[0, 0] == a[31, 31]).all()
    lut = colormap_lut("inferno")
    assert (a[0, 0] == lut[0]).all() and (a[31, 31] == lut[255]).all()  # lowest and the unique highest value
    # the weak map keeps its structure (percentile ranks), rather than being painted all black
    w = out.images[1]
    assert len({tuple(w[y, x]) for y in range(0, 32, 8) for x in range(0, 32, 8)}) > 4
    assert out.silent == [False, False, True]
    assert [p for p, _ in out.ticks] == [0.0, 50.0, 100.0]
    assert out.ticks[0][1] == 0.0 and out.ticks[-1][1] == pytest.approx(150.0)
    assert len(out.legend) == 11 and all(c.startswith("#") for c in out.legend)


def test_nan_cells_are_black_and_default_upsampling_is_16():
    maps = np.ones((1, 2, 2), np.float32)
    maps[0, 0, 0] = np.nan
    maps[0, 1, 1] = 2.0
    out = patch_map_images(maps)
    img = out.images[0]
    assert img.shape == (32, 32, 3)
    assert (img[:16, :16] == 0).all()  # NaN: pure black
    assert (img[16:, 16:] == colormap_lut("inferno")[255]).all()


@pytest.mark.parametrize(
    ("maps", "upsample", "match"),
    [
        (np.ones((4, 4)), 16, "expected \\(n_maps, h, w\\)"),
        (np.ones((0, 4, 4)), 16, "expected \\(n_maps, h, w\\)"),
        (np.full((1, 2, 2), np.nan), 16, "No finite values"),
        (np.ones((1, 2, 2)), 0, "not a positive integer"),
        (np.ones((1, 2, 2)), 2.5, "not a positive integer"),
        ([[["a"]]], 16, "must be numeric"),
    ],
)
def test_bad_input_is_refused_with_a_fix(maps, upsample, match):
    with pytest.raises(PathVizError, match=match) as err:
        patch_map_images(maps, upsample=upsample)
    assert err.value.fix


def test_unknown_colour_map():
    with pytest.raises(PathVizError, match="Unknown colour map"):
        patch_map_images(np.ones((1, 2, 2)), cmap="nope")


def test_viewer_page_draws_the_patch_maps_from_the_backend(demo_ws):
    """The slide viewer's patch detail view shows a PAGE-Net layer's top maps (drawn by
    patch_map_images: the page itself does no reshaping)."""
    from pathlib import Path

    import streamlit as st
    from conftest import app_test

    from pathviz.layers.score import ScoreLayer
    from pathviz.store.features import FeatureStore

    sid = demo_ws.slides()[0].slide_id
    grid = demo_ws.grid(sid)
    rng = np.random.default_rng(0)
    n = len(grid)
    demo_ws.save_layer(sid, ScoreLayer(
        "survival_score", "Survival score", grid.key, rng.random(n).astype(np.float32),
        meta={"top_maps": [0, 2], "model_version": "vtest", "prognostic_index": 0.25},
    ))
    maps = rng.random((n, 3, 4, 4)).astype(np.float32)
    maps[:, 2] = 0.0  # map 2 silent everywhere
    coords = np.array([grid.rect(i)[:2] for i in range(n)])
    FeatureStore(demo_ws, "vtest").save(sid, coords, maps.mean(axis=(2, 3)), maps)

    st.cache_resource.clear()
    st.cache_data.clear()
    at = app_test(str(Path(__file__).resolve().parents[1] / "pages" / "slide_viewer.py"), default_timeout=60)
    at.session_state["slide_id"] = sid
    at.session_state["layer"] = "survival_score"
    at.run()
    assert not at.exception
    assert any(m.label == "Patient's PAGE-Net prognostic index" for m in at.metric)
    captions = " ".join(c.value for c in at.caption)
    assert "Map 2 is 0 everywhere in this patch" in captions
    assert "pv-maps-legend" in " ".join(m.value for m in at.markdown)
