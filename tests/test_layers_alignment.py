"""Score layers, rasters and DeepZoom overlays: values, geometry, and alignment with the slide."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import HOT_BOX

from pathviz.layers import (
    OverlayDeepZoom,
    ScoreLayer,
    colorize,
    deepzoom_level_dimensions,
    layer_raster,
    stain_density_layers,
    tissue_fraction_layer,
)
from pathviz.layers.score import Raster
from pathviz.slide import TileGrid, open_slide, tile_grid, tissue_mask
from pathviz.errors import PathVizError

PATCH = 128  # px at 0.5 mpp on a 0.5 mpp slide: 128 level-0 px per tile


@pytest.fixture(scope="module")
def planted(planted_tiff):
    slide = open_slide(planted_tiff)
    grid = tile_grid(slide, tissue_mask(slide), mpp=0.5, patch_size=PATCH, min_tissue=0.5)
    h, e = stain_density_layers(slide, grid)
    yield slide, grid, h, e
    slide.close()


def _dist_to_box(x, y, box):
    x0, y0, x1, y1 = box
    dx = max(x0 - x, 0, x - x1)
    dy = max(y0 - y, 0, y - y1)
    return math.hypot(dx, dy)


def test_haematoxylin_layer_peaks_on_planted_region(planted):
    slide, grid, h, e = planted
    top = int(h.top_patches(1)[0])
    x, y, w, hh = grid.rect(top)
    x0, y0, x1, y1 = HOT_BOX
    assert x0 <= x and x + w <= x1 and y0 <= y and y + hh <= y1  # fully inside the purple square
    # eosin is not the nuclear proxy: its top patch is pink stroma, outside the square
    ex, ey, _, _ = grid.rect(int(e.top_patches(1)[0]))
    assert _dist_to_box(ex, ey, HOT_BOX) > 0


def test_overlay_geometry_equals_openslide_deepzoom(planted):
    slide, grid, h, _ = planted
    dz = slide.deepzoom(tile_size=256, overlap=0)
    ov = OverlayDeepZoom(layer_raster(h, grid), *slide.dimensions, tile_size=256)
    assert ov.level_count == dz.level_count
    assert ov.level_dimensions == list(dz.level_dimensions)
    for lvl in range(dz.level_count):
        assert ov.level_tiles(lvl) == dz.level_tiles[lvl]
        assert deepzoom_level_dimensions(*slide.dimensions)[lvl] == dz.level_dimensions[lvl]


def _assemble(fn, cols, rows):
    return np.concatenate([np.concatenate([fn(c, r) for c in range(cols)], axis=1) for r in range(rows)], axis=0)


@pytest.mark.parametrize("min_level_px", [1])
def test_heatmap_maximum_aligned_with_planted_region_at_every_zoom(planted, min_level_px):
    """At every DeepZoom level, the hottest overlay pixel and the darkest slide pixel both lie
    within one tile of the planted square (tolerance: one grid tile, or one level pixel when a
    level pixel is larger), and overlay and slide tiles share the same geometry."""
    slide, grid, h, _ = planted
    dz = slide.deepzoom(tile_size=256, overlap=0)
    ov = OverlayDeepZoom(layer_raster(h, grid), *slide.dimensions, tile_size=256)
    for lvl in range(ov.level_count):
        cols, rows = ov.level_tiles(lvl)
        heat = _assemble(lambda c, r: ov.tile_values(lvl, (c, r)), cols, rows)
        assert heat.shape == dz.level_dimensions[lvl][::-1]
        scale = 2.0 ** (ov.level_count - 1 - lvl)  # level-0 px per level px
        tol = max(grid.tile_size_x, scale) * 1.0
        r, c = np.unravel_index(np.nanargmax(heat), heat.shape)
        assert _dist_to_box((c + 0.5) * scale, (r + 0.5) * scale, HOT_BOX) <= tol, f"level {lvl}"
        # the slide tiles the viewer draws under it: darkest blue-ish pixel is the planted square
        # (OpenSlide may return a tile a pixel short of its nominal size; the viewer stretches it
        # to the nominal size, as this does.)
        def slide_tile(c, r):
            th, tw = ov.tile_values(lvl, (c, r)).shape
            return np.asarray(dz.get_tile(lvl, (c, r)).convert("RGB").resize((tw, th)))

        img = _assemble(slide_tile, cols, rows)
        assert img.shape[:2] == heat.shape
        lum = img.astype(float).mean(axis=2)
        r2, c2 = np.unravel_index(np.argmin(lum), lum.shape)
        assert _dist_to_box((c2 + 0.5) * scale, (r2 + 0.5) * scale, HOT_BOX) <= max(scale, 2.0), f"level {lvl}"


def test_full_resolution_overlay_marks_exactly_the_flagged_tile(planted):
    slide, grid, h, _ = planted
    ov = OverlayDeepZoom(layer_raster(h, grid), *slide.dimensions, tile_size=256)
    top = int(h.top_patches(1)[0])
    x, y, w, hh = grid.rect(top)
    lvl = ov.level_count - 1
    vals = ov.tile_values(lvl, (x // 256, y // 256))
    lx, ly = x % 256, y % 256
    block = vals[ly : ly + hh, lx : lx + w]
    assert np.all(block == h.scores[top])


def test_sub_patch_maps_rasterise_inside_their_patch():
    grid = TileGrid(mpp=0.5, patch_size=4, tile_size_x=4.0, tile_size_y=4.0, slide_width=12, slide_height=8,
                    n_cols=3, n_rows=2, cells=np.array([[0, 0], [2, 1]], np.int32),
                    tissue_fraction=np.ones(2, np.float32), min_tissue=0.5)
    maps = np.arange(2 * 2 * 2, dtype=np.float32).reshape(2, 2, 2)
    layer = ScoreLayer(name="cam", title="CAM", grid_key=grid.key, scores=maps)
    r = layer_raster(layer, grid)
    assert r.values.shape == (4, 6) and r.cell_w == 2.0
    np.testing.assert_array_equal(r.values[0:2, 0:2], maps[0])
    np.testing.assert_array_equal(r.values[2:4, 4:6], maps[1])
    assert np.isnan(r.values[0:2, 2:6]).all() and np.isnan(r.values[2:4, 0:4]).all()
    np.testing.assert_allclose(layer.patch_scores, [1.5, 5.5])


def test_zoomed_out_overlay_keeps_single_hot_cell_visible():
    values = np.zeros((64, 64), np.float32)
    values[37, 11] = 9.0
    ov = OverlayDeepZoom(Raster(values, 16.0, 16.0), 1024, 1024, tile_size=256)
    for lvl in range(ov.level_count):
        cols, rows = ov.level_tiles(lvl)
        heat = _assemble(lambda c, r: ov.tile_values(lvl, (c, r)), cols, rows)
        assert np.nanmax(heat) == 9.0, f"level {lvl}"
        r, c = np.unravel_index(np.nanargmax(heat), heat.shape)
        scale = 2.0 ** (ov.level_count - 1 - lvl)
        assert _dist_to_box((c + 0.5) * scale, (r + 0.5) * scale, (176, 592, 192, 608)) <= scale


def test_layer_validation_and_round_trip(tmp_path, planted):
    _, grid, h, _ = planted
    back = ScoreLayer.load(h.save(tmp_path / "h.npz"))
    np.testing.assert_array_equal(back.scores, h.scores)
    assert back.title == h.title and back.grid_key == grid.key
    with pytest.raises(PathVizError, match="Layer name"):
        ScoreLayer(name="Bad Name!", title="x", grid_key="k", scores=np.zeros(3))
    with pytest.raises(PathVizError, match="float\\[n_patches\\]"):
        ScoreLayer(name="ok", title="x", grid_key="k", scores=np.zeros((3, 2, 4)))
    other = ScoreLayer(name="ok", title="x", grid_key=grid.key, scores=np.zeros(len(grid) + 1))
    with pytest.raises(PathVizError, match="does not belong"):
        layer_raster(other, grid)
    (tmp_path / "junk.npz").write_bytes(b"not a numpy file")
    with pytest.raises(PathVizError, match="not a readable"):
        ScoreLayer.load(tmp_path / "junk.npz")


def test_tissue_fraction_layer_and_colorize(planted):
    _, grid, _, _ = planted
    t = tissue_fraction_layer(grid)
    assert t.scores.min() >= 0.5 and t.scores.max() <= 1.0
    rgba = colorize(np.array([[np.nan, 0.0, 1.0]]), "viridis", 0.0, 1.0)
    assert rgba[0, 0, 3] == 0 and rgba[0, 1, 3] == 255
    assert tuple(rgba[0, 1, :3]) == (68, 1, 84)  # viridis start
    assert tuple(rgba[0, 2, :3]) == (253, 231, 37)  # viridis end
    with pytest.raises(PathVizError, match="Unknown colour map"):
        colorize(np.zeros((1, 1)), "nope", 0, 1)
