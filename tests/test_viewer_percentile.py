"""Issue 14 "attention heatmaps a pathologist can read": percentile display and a transparency floor
for every score layer (pathviz.layers.overlay, the tile service and routes, the viewer page)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from PIL import Image

from conftest import app_test
from test_tileserver import Server, get, tiles_app
from pathviz.errors import PathVizError
from pathviz.layers.colormap import colorize, percentile_scale
from pathviz.layers.overlay import (OverlayDeepZoom, check_display, display_defaults, display_values,
                                    percentile_ranks)
from pathviz.layers.score import Raster, ScoreLayer, layer_raster
from pathviz.viewer import shared

ROOT = Path(__file__).resolve().parents[1]
VIEWER = str(ROOT / "pages" / "slide_viewer.py")
ATTN = "attention_demo"
CMAP = "viridis"


# -- the transform ---------------------------------------------------------------------------------
def test_percentile_ranks_ties_and_nan():
    v = np.array([3.0, 1.0, np.nan, 2.0, 2.0, 5.0])
    r = percentile_ranks(v)
    assert r.dtype == np.float32 and r.shape == v.shape
    # 1 is the lowest (0), both 2s share one rank (1 of 4 others below), 5 the unique max (100)
    np.testing.assert_array_equal(r, [75.0, 0.0, np.nan, 25.0, 25.0, 100.0])
    assert np.all(percentile_ranks(np.full(4, 7.0)) == 0)  # all equal: one rank
    assert np.isnan(percentile_ranks(np.full(3, np.nan))).all()
    assert percentile_ranks(np.array([])).shape == (0,)
    # exact percentiles stay exact (a floor of 29 keeps the value ranked 29, not 28.999998)
    assert percentile_ranks(np.arange(101.0))[29] == 29.0


def test_display_values_scales_and_floor():
    v = np.array([3.0, 1.0, np.nan, 2.0, 2.0, 5.0], np.float32)
    np.testing.assert_array_equal(display_values(v), v)  # value scale, no floor: unchanged
    np.testing.assert_array_equal(display_values(v, "percentile"), [75, 0, np.nan, 25, 25, 100])
    # floor 25 keeps rank 25 (the tied 2s) and above; floor 26 drops both 2s together
    np.testing.assert_array_equal(display_values(v, "percentile", 25), [75, np.nan, np.nan, 25, 25, 100])
    np.testing.assert_array_equal(display_values(v, "value", 26), [3, np.nan, np.nan, np.nan, np.nan, 5])
    assert np.isnan(display_values(v, "value", 99)[:5]).all() and display_values(v, "value", 99)[5] == 5
    assert not np.shares_memory(display_values(v, "value", 0), v)  # never hands out the layer's own array


def test_sub_patch_layers_rank_over_all_values():
    maps = np.arange(2 * 2 * 2, dtype=np.float32).reshape(2, 2, 2)  # 2 patches of 2x2: values 0..7
    maps[1, 1, 1] = np.nan
    r = display_values(maps, "percentile")
    assert r.shape == (2, 2, 2)
    np.testing.assert_allclose(r.reshape(-1)[:7], np.arange(7) / 6 * 100, rtol=1e-5)  # ranks across patches
    assert np.isnan(r[1, 1, 1])
    kept = display_values(maps, "value", 50)
    np.testing.assert_array_equal(np.isfinite(kept).reshape(-1), [False] * 3 + [True] * 4 + [False])


@pytest.mark.parametrize(("scale", "floor", "match"), [
    ("log", 0, "Unknown display scale"), ("Percentile", 0, "Unknown display scale"),
    ("value", 100, "not an integer percentile"), ("value", -1, "not an integer percentile"),
    ("percentile", 2.5, "not an integer percentile"), ("value", True, "not an integer percentile"),
])
def test_bad_display_settings_are_refused(scale, floor, match):
    with pytest.raises(PathVizError, match=match) as err:
        check_display(scale, floor)
    assert err.value.fix
    with pytest.raises(PathVizError):
        display_values(np.ones(3), scale, floor)


def test_display_defaults_from_layer_meta():
    assert display_defaults({"display": {"scale": "percentile", "floor": 50}}) == ("percentile", 50)
    assert display_defaults({"display": {"floor": 30}}) == ("value", 30)
    assert display_defaults({}) == display_defaults(None) == ("value", 0)
    assert display_defaults({"model_version": "x"}) == ("value", 0)
    for bad in ({"display": "percentile"}, {"display": {"scale": "log", "floor": 150}},
                {"display": {"floor": "many"}}, {"display": {"floor": 2.5}}):
        assert display_defaults(bad) == ("value", 0), bad


def test_overlay_tile_percentile_vs_value_and_floor_without_a_slide():
    # 2x2 patches of 256 px: three nearly equal low values and one outlier ("mostly blue")
    raster = Raster(np.array([[0.001, 0.002], [0.003, 1.0]], np.float32), 256.0, 256.0)
    dz = OverlayDeepZoom(raster, 512, 512, tile_size=512)
    top = dz.level_count - 1
    value = np.asarray(dz.get_tile(top, (0, 0), CMAP, 0.0, 1.0))
    pct = np.asarray(dz.get_tile(top, (0, 0), CMAP, 0.0, 100.0, "percentile"))
    corners = [(0, 0), (0, 300), (300, 0)]  # the three low patches
    assert len({tuple(value[y, x]) for y, x in corners}) == 1  # one cold colour for all three
    assert len({tuple(pct[y, x]) for y, x in corners}) == 3  # ranks 0, 33, 67: three colours
    floored = np.asarray(dz.get_tile(top, (0, 0), CMAP, 0.0, 1.0, "value", 50))
    assert floored[0, 0, 3] == floored[0, 300, 3] == 0  # ranks 0 and 33: transparent
    assert floored[300, 0, 3] == floored[300, 300, 3] == 255  # ranks 67 and 100: drawn
    assert (floored[300, 0] == value[300, 0]).all()  # the floor hides, never recolours
    # zoomed out, a pixel over hidden and kept patches shows the kept one (pooled after the floor)
    assert dz.tile_values(top - 9, (0, 0), "percentile", 50)[0, 0] == 100.0


# -- the tile service and routes over a real slide ----------------------------------------------------
def _attention_layer(ws, sid: str, display: dict | None, k: int = 0, name: str = ATTN) -> ScoreLayer:
    """A skewed layer on the slide's grid: most values tiny, one outlier, one NaN patch (as CLAM's
    attention); ``k`` > 0 makes it a sub-patch layer ``float[n, k, k]``."""
    grid = ws.grid(sid)
    n = len(grid)
    rng = np.random.default_rng(1)
    scores = rng.uniform(0.001, 0.002, (n, k, k) if k else n).astype(np.float32)
    scores[n // 2] = 1.0
    scores[1] = np.nan
    layer = ScoreLayer(name=name, title="Attention (demo)", grid_key=grid.key, scores=scores, units="weight",
                       meta={"display": display} if display else {})
    ws.save_layer(sid, layer)
    return layer


def _png(body: bytes) -> np.ndarray:
    img = Image.open(io.BytesIO(body))
    assert img.mode == "RGBA"
    return np.asarray(img)


def _cells(dz: OverlayDeepZoom, raster: Raster, level: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For tile (0, 0) of ``level``: the raster cell ``(row, col)`` under each pixel and a mask of
    the pixels whose whole level-0 span lies inside that one cell (the others pool several cells)."""
    d = 2 ** (dz.level_count - 1 - level)
    w, h = dz.level_dimensions[level]
    assert w <= 256 and h <= 256, "the level must fit in one tile"
    x0, y0 = np.arange(w) * d, np.arange(h) * d
    cx0, cx1 = (x0 // raster.cell_w).astype(int), ((x0 + d - 1) // raster.cell_w).astype(int)
    cy0, cy1 = (y0 // raster.cell_h).astype(int), ((y0 + d - 1) // raster.cell_h).astype(int)
    inside = (cy0 == cy1)[:, None] & (cx0 == cx1)[None, :]
    rows, cols = np.broadcast_arrays(cy0[:, None], cx0[None, :])
    ok = (rows < raster.values.shape[0]) & (cols < raster.values.shape[1])
    return np.where(ok, rows, 0), np.where(ok, cols, 0), inside & ok


@pytest.fixture
def tiles(demo_ws):
    """The tile routes over the demo workspace, with a skewed layer carrying display defaults."""
    shared.reset()
    sid = demo_ws.slides()[0].slide_id
    _attention_layer(demo_ws, sid, {"scale": "percentile", "floor": 50})
    _attention_layer(demo_ws, sid, None, k=2, name="attention_maps")
    with Server(tiles_app()) as srv:
        yield srv, demo_ws, sid
    shared.reset()


@pytest.mark.parametrize("name", [ATTN, "attention_maps"])
def test_floor_makes_low_ranked_patches_transparent(tiles, name):
    srv, ws, sid = tiles
    svc = shared.tile_service(ws)
    dz = svc._overlay(sid, name)
    level = next(lv for lv in range(dz.level_count) if max(dz.level_dimensions[lv]) <= 256 and
                 max(dz.level_dimensions[lv + 1]) > 256)  # the largest level in one tile
    raster = layer_raster(ws.layer(sid, name), ws.grid(sid))
    ranks = percentile_scale(raster.values) * 100  # ranks over all finite cells, computed independently
    rows, cols, inside = _cells(dz, raster, level)
    rank = ranks[rows, cols]
    url = f"/tiles/overlay/{sid}/{name}/{CMAP}/%s_files/{level}/0_0.png"
    status, headers, body = get(srv.port, url % "percentile-50/0/100")
    assert status == 200 and headers["content-type"] == "image/png"
    tile = _png(body)
    alpha = tile[..., 3]
    low = inside & ~(rank >= 50)  # ranked below the floor, or no value
    high = inside & (rank >= 50)
    assert low.sum() > 100 and high.sum() > 100
    assert (alpha[low] == 0).all() and (alpha[high] == 255).all()
    # kept pixels carry their rank's colour; the value scale colours differently
    expect = colorize(rank.astype(np.float32), CMAP, 0.0, 100.0)  # (up to rounding: one colour-map step)
    assert np.abs(tile[high][:, :3].astype(int) - expect[high][:, :3]).max() <= 4
    status, _, vbody = get(srv.port, url % "value-50/0.001/1")
    value = _png(vbody)
    assert status == 200 and (value[..., 3] == alpha).all() and vbody != body
    assert not (value[high][:, :3] == tile[high][:, :3]).all()
    # without a floor the low patches are drawn again (as in the value scale)
    status, _, nobody = get(srv.port, url % "percentile-0/0/100")
    assert status == 200 and (_png(nobody)[..., 3][low & np.isfinite(rank)] == 255).all()


def test_percentile_map_is_never_uniformly_cold(tiles):
    srv, ws, sid = tiles
    dz = shared.tile_service(ws)._overlay(sid, ATTN)
    level = dz.level_count - 5
    lo, hi = ws.layer(sid, ATTN).value_range()
    value = _png(get(srv.port, f"/tiles/overlay/{sid}/{ATTN}/{CMAP}/value-0/{lo}/{hi}_files/{level}/0_0.png")[2])
    pct = _png(get(srv.port, f"/tiles/overlay/{sid}/{ATTN}/{CMAP}/percentile-0/0/100_files/{level}/0_0.png")[2])
    drawn = value[..., 3] == 255
    colours = lambda t: len(np.unique(t[drawn][:, :3], axis=0))  # noqa: E731
    assert colours(value) <= 3  # one outlier: everything else shares the coldest colour or two
    assert colours(pct) >= 15


def test_old_url_is_value_scale_without_floor(tiles):
    srv, ws, sid = tiles
    top = shared.tile_service(ws).slide_geometry(sid)["levels"] - 1
    a = get(srv.port, f"/tiles/overlay/{sid}/haematoxylin/{CMAP}/0.01/0.08_files/{top - 3}/0_0.png")
    b = get(srv.port, f"/tiles/overlay/{sid}/haematoxylin/{CMAP}/value-0/0.01/0.08_files/{top - 3}/0_0.png")
    assert a[0] == b[0] == 200 and a[2] == b[2]
    # a decoded '..%2f' in the longer form matches no route either: refused, naming no file
    status, _, body = get(srv.port, f"/tiles/overlay/{sid}/..%2f..%2fderived/{CMAP}/value-0/0/1_files/0/0_0.png")
    assert status in (400, 404) and str(ws.home).encode() not in body


@pytest.mark.parametrize(("tail", "says"), [
    ("log-0/0/1", b"Unknown display scale"),
    ("PERCENTILE-0/0/1", b"Malformed display setting"),
    ("percentile/0/1", b"Malformed display setting"),
    ("value-100/0/1", b"Malformed transparency floor"),
    ("value--1/0/1", b"Malformed transparency floor"),
    ("value-5.5/0/1", b"Malformed transparency floor"),
    ("value-abc/0/1", b"Malformed transparency floor"),
    ("value-/0/1", b"Malformed transparency floor"),
    ("value-007/0/1", b"Malformed transparency floor"),
    ("percentile-0/0/150", b"Percentile range outside 0-100"),
    ("percentile-10/-5/100", b"Percentile range outside 0-100"),
    ("percentile-10/nan/100", b"Malformed the minimum"),
])
def test_bad_scale_floor_or_percentile_range_is_refused(tiles, tail, says):
    srv, ws, sid = tiles
    status, headers, body = get(srv.port, f"/tiles/overlay/{sid}/{ATTN}/{CMAP}/{tail}_files/0/0_0.png")
    assert status == 400, (tail, status, body)
    assert says in body and b"Fix:" in body and headers["content-type"].startswith("text/plain")
    assert headers["cache-control"] == "no-store"


def test_tiles_of_different_settings_never_share_a_cache_entry(tiles):
    srv, ws, sid = tiles
    svc = shared.tile_service(ws)
    level = svc.slide_geometry(sid)["levels"] - 5
    addr = (level, 0, 0)
    settings = [("value", 0, 0.001, 1.0), ("percentile", 0, 0.001, 1.0), ("value", 50, 0.001, 1.0),
                ("percentile", 50, 0.001, 1.0), ("percentile", 60, 0.001, 1.0)]
    tiles_by = {}
    for scale, floor, vmin, vmax in settings:
        assert svc.cached_overlay_tile(sid, ATTN, *addr, CMAP, vmin, vmax, scale, floor) is None  # not a neighbour's
        misses = svc.cache.misses
        tiles_by[scale, floor] = svc.overlay_tile(sid, ATTN, *addr, CMAP, vmin, vmax, scale, floor)
        assert svc.cache.misses == misses + 1
    assert len(set(tiles_by.values())) == len(settings)
    for (scale, floor), data in tiles_by.items():  # each setting now answers from its own entry
        assert svc.cached_overlay_tile(sid, ATTN, *addr, CMAP, 0.001, 1.0, scale, floor) == data
    # and the routes hand out the cached tile of the asked setting
    status, _, body = get(srv.port, f"/tiles/overlay/{sid}/{ATTN}/{CMAP}/percentile-50/0.001/1_files/{level}/0_0.png")
    assert status == 200 and body == tiles_by["percentile", 50]


# -- the viewer page (AppTest) -------------------------------------------------------------------------
def _fresh_app():
    st.cache_resource.clear()
    st.cache_data.clear()
    return app_test(VIEWER, default_timeout=90)


def _markdown(at, testid: str) -> str:
    return next(m.value for m in at.markdown if f"'{testid}'" in m.value)


def test_viewer_widgets_start_from_layer_meta_and_show_ranks(demo_ws):
    sid = demo_ws.slides()[0].slide_id
    layer = _attention_layer(demo_ws, sid, {"scale": "percentile", "floor": 50})
    at = _fresh_app().run()
    assert not at.exception
    sid = at.session_state["slide_id"]
    # a layer without display meta: today's defaults, the raw score only
    assert at.radio(key=f"scale_{sid}_haematoxylin").value == "value"
    assert at.slider(key=f"floor_{sid}_haematoxylin").value == 0
    assert "pv-review-rank" not in _markdown(at, "pv-review-patch")
    assert "p0 =" not in _markdown(at, "pv-legend")

    at.selectbox(key="layer").set_value(ATTN).run()
    assert not at.exception
    assert at.radio(key=f"scale_{sid}_{ATTN}").value == "percentile"
    assert at.slider(key=f"floor_{sid}_{ATTN}").value == 50
    assert at.slider(key=f"prange_{sid}_{ATTN}").value == (0.0, 100.0)
    legend = _markdown(at, "pv-legend")
    scores = layer.scores[np.isfinite(layer.scores)]
    ticks = re.findall(r"p(\d+) = ([0-9.e+-]+)", legend)
    assert [p for p, _ in ticks] == ["0", "50", "100"]
    assert float(ticks[0][1]) == pytest.approx(scores.min(), rel=1e-2)
    assert float(ticks[2][1]) == pytest.approx(scores.max(), rel=1e-2)  # the outlier, in raw units
    assert any("ranked below p50" in c.value for c in at.caption)
    card = _markdown(at, "pv-review-patch")
    assert re.search(r"data-testid='pv-review-score'>1<", card)  # the raw value is still shown...
    assert "pv-review-rank'>p100<" in card  # ...with its rank beside it (the outlier: the top)

    # the user can change the starting values; value scale brings back the value range slider
    at.radio(key=f"scale_{sid}_{ATTN}").set_value("value").run()
    at.slider(key=f"floor_{sid}_{ATTN}").set_value(0).run()
    assert not at.exception
    assert at.slider(key=f"range_{sid}_{ATTN}").value == pytest.approx(layer.value_range())
    assert "pv-review-rank" not in _markdown(at, "pv-review-patch")
    assert not any("ranked below" in c.value for c in at.caption)
