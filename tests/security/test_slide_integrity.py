"""Slide integrity (trust issue, part 4): registration decodes a sample of every pyramid level,
analysis skips corrupt patches instead of crashing, and the same bytes cannot be registered twice.

Slides are real JPEG-compressed pyramidal TIFFs (tifffile) whose tiles are damaged in place, as
in ``test_corrupt_tile.py``. Geometry: 2048x2048 px at 0.5 mpp, 256-px tiles, levels of 2048,
1024, 512, 256 and 128 px. The default analysis grid (256-px patches at 0.5 mpp) reads its
64-px stain patches from level 2 (downsample 4), whose four tiles each cover a 1024x1024 level-0
quadrant, while the 2048-px tissue-mask thumbnail comes from level 0.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import tifffile

from pathviz.cli import main
from pathviz.errors import SlideError, WorkspaceError
from pathviz.slide.reader import open_slide
from pathviz.slide.writer import write_pyramidal_tiff

SIZE = 2048


def _rgb() -> np.ndarray:
    """Pink tissue with noise over the whole slide but a strip of white glass at the top."""
    rng = np.random.default_rng(0)
    pink = np.array([230, 160, 200], np.int16)
    rgb = np.clip(pink + rng.integers(-12, 13, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    rgb[:200] = 245
    return rgb


def _damage(path, page_index: int, tile_indices) -> None:
    """Overwrite the inside of JPEG tiles (an early EOI marker, then garbage) of one TIFF page."""
    rng = np.random.default_rng(1)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[page_index]
        spans = [(page.dataoffsets[i], page.databytecounts[i]) for i in tile_indices]
    with open(path, "r+b") as fh:
        for offset, size in spans:
            fh.seek(offset + 2)
            fh.write(b"\xff\xd9" + bytes(rng.integers(0, 256, size - 4, dtype=np.uint8)))


@pytest.fixture
def slides(ws):
    """``(intact, damaged)`` copies of one slide inside the workspace; in the damaged one the
    level-2 tile at column 1, row 0 (level-0 quadrant x 1024-2047, y 0-1023) is corrupt."""
    inc = ws.home / "incoming"
    inc.mkdir()
    intact = write_pyramidal_tiff(inc / "intact.tif", _rgb(), 0.5, compression="jpeg")
    damaged = inc / "damaged.tif"
    shutil.copyfile(intact, damaged)
    _damage(damaged, 2, [1])
    return intact, damaged


def test_sampling_is_bounded_and_covers_corners_and_centre():
    from pathviz.slide.integrity import sample_tiles

    cells = sample_tiles(100, 40)
    assert len(cells) == 8 and len(set(cells)) == 8
    assert {(0, 0), (99, 0), (0, 39), (99, 39), (50, 20)} <= set(cells)
    assert sample_tiles(1, 1) == [(0, 0)]
    assert sorted(sample_tiles(2, 2)) == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_a_broken_level_is_refused_with_its_name_and_a_fix(ws, slides):
    intact, _ = slides
    broken = ws.home / "incoming" / "broken.tif"
    shutil.copyfile(intact, broken)
    _damage(broken, 1, range(16))  # every tile of level 1 (1024x1024 px)
    with open_slide(broken):  # the old check (smallest level only) lets it through
        pass
    with pytest.raises(SlideError) as err:
        ws.add_slide(broken)
    text = str(err.value)
    assert "level 1 (1024x1024 px)" in text and "broken.tif" in text and "Fix: " in text and "copy it again" in text
    assert ws.slides() == []
    assert not list((ws.home / "derived").iterdir())


def test_a_corrupt_tile_registers_and_is_listed(ws, slides):
    intact, damaged = slides
    rec = ws.add_slide(damaged)
    stored = json.loads((ws.derived_dir(rec.slide_id) / "integrity.json").read_text())
    assert stored["regions"][0]["rect"] == [1024, 0, 1024, 1024] and stored["regions"][0]["level"] == 2
    regions = ws.integrity(rec.slide_id)
    assert [(r.level, r.rect, r.found_by) for r in regions] == [(2, (1024, 0, 1024, 1024), "registration")]
    assert regions[0].error
    clean = ws.add_slide(intact)
    assert ws.integrity(clean.slide_id) == []

    from pathviz.slide.integrity import check_pyramid

    with open_slide(damaged) as s:
        found = check_pyramid(s)
        assert s.read_region((0, 0), 2, (64, 64)).size == (64, 64)  # the handle was reopened
    assert [(r.level, r.rect) for r in found] == [(2, (1024, 0, 1024, 1024))]


def test_analysis_skips_corrupt_patches_and_keeps_the_others(ws, slides):
    intact, damaged = slides
    good = ws.add_slide(intact)
    bad = ws.add_slide(damaged)
    messages = []
    grid_good = ws.analyse(good.slide_id)
    grid_bad = ws.analyse(bad.slide_id, progress=lambda f, m: messages.append(m))
    assert np.array_equal(grid_good.cells, grid_bad.cells)  # same tissue mask and grid
    skipped = ws.integrity(bad.slide_id, found_by="analysis", grid_key=grid_bad.key)
    xy = grid_bad.coords
    in_quadrant = np.flatnonzero((xy[:, 0] >= 1024) & (xy[:, 1] < 1024))
    assert sorted(r.patch for r in skipped) == in_quadrant.tolist() and len(in_quadrant) > 0
    assert all(r.level == 2 and r.rect == grid_bad.rect(r.patch) for r in skipped)
    assert messages[-1].startswith(f"done; {len(in_quadrant)} patches skipped (corrupt regions): patch ")
    # the registration finding is kept next to the analysis ones
    assert [r.found_by for r in ws.integrity(bad.slide_id)].count("registration") == 1
    for name in ("haematoxylin", "eosin"):
        ref, got = ws.layer(good.slide_id, name).scores, ws.layer(bad.slide_id, name).scores
        assert np.isnan(got[in_quadrant]).all()
        keep = np.setdiff1d(np.arange(len(got)), in_quadrant)
        assert np.isfinite(got[keep]).all() and np.array_equal(got[keep], ref[keep])
        assert ws.layer(bad.slide_id, name).meta["skipped_patches"] == in_quadrant.tolist()
    # a second analysis replaces (does not duplicate) the skipped-patch records
    ws.analyse(bad.slide_id, force=True)
    assert len(ws.integrity(bad.slide_id, found_by="analysis")) == len(in_quadrant)


def test_an_unreadable_thumbnail_is_a_clear_error(ws):
    # one level only (no coarser level to fall back to); the open check reads its first 512 px,
    # the tile at column 5, row 5 is corrupt, so the slide opens and registers
    path = write_pyramidal_tiff(ws.home / "flat.tif", _rgb(), 0.5, compression="jpeg", min_size=4 * SIZE)
    _damage(path, 0, [5 * (SIZE // 256) + 5])
    rec = ws.add_slide(path)
    with pytest.raises(SlideError, match=r"tissue mask of .*flat.tif cannot be computed.* level 0 .*Fix: .*copy it again"):
        ws.analyse(rec.slide_id)


def test_cli_analyse_reports_skipped_regions(ws, slides, capsys):
    _, damaged = slides
    assert main(["slide", "add", str(damaged)]) == 0
    out, err = capsys.readouterr()
    slide_id = out.split()[1]
    assert "warning: 1 sampled tile" in err and "level 2 x=1024 y=0 1024x1024" in err
    assert main(["slide", "analyse", slide_id]) == 0
    out, err = capsys.readouterr()
    assert "patches skipped (corrupt regions): patch " in out and "(level 2 x=1024 y=" in out
    assert main(["slide", "analyse", slide_id, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["skipped"] and all(r["level"] == 2 for r in payload["skipped"])


def test_same_bytes_are_not_registered_twice_even_with_copy(ws, slides, tmp_path):
    intact, _ = slides
    first = ws.add_slide(intact)
    outside = tmp_path / "elsewhere" / "renamed.tif"
    outside.parent.mkdir()
    shutil.copyfile(intact, outside)
    before = sorted(p.name for p in ws.slides_dir.iterdir())
    with pytest.raises(WorkspaceError) as err:
        ws.add_slide(outside, copy=True)
    assert f"renamed.tif has the same content as slide {first.slide_id!r} (already registered)" in str(err.value)
    assert "Fix: " in str(err.value)
    assert sorted(p.name for p in ws.slides_dir.iterdir()) == before  # nothing copied left behind
    assert [r.slide_id for r in ws.slides()] == [first.slide_id]
    assert first.content_sha256 == _sha256_of(intact)
    # rows registered before hashes were recorded (NULL) never match
    ws.db.write(lambda s: s.get(type(first), first.slide_id).__setattr__("content_sha256", None))
    assert ws.db.find_slide_by_hash(_sha256_of(intact)) is None
    again = ws.add_slide(outside, copy=True)
    assert again.content_sha256 == _sha256_of(intact) and (ws.slides_dir / "renamed.tif").exists()


def _sha256_of(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()
