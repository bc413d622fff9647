"""Workspace registration and bad input: clear errors, and nothing already stored is lost."""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pytest
from PIL import Image

from pathviz.errors import EmptyTissueMaskError, MissingMppError, SlideError, SlideTooLargeError, WorkspaceError
from pathviz.settings import Settings
from pathviz.slide import open_slide, tile_grid, tissue_mask, write_pyramidal_tiff
from pathviz.store.workspace import Workspace


@pytest.fixture
def ws_with_review(demo_ws):
    """Demo workspace holding one review: the state bad input must not disturb."""
    sid = demo_ws.slides()[0].slide_id
    grid = demo_ws.grid(sid)
    demo_ws.db.add_review(sid, "haematoxylin", grid.key, grid.rect(0), "agree", "Dr Keep", "keep me", 0.1)
    return demo_ws


def snapshot(ws: Workspace):
    slides = [(r.slide_id, r.path) for r in ws.slides()]
    reviews = [(r.slide_id, r.x, r.y, r.verdict, r.comment) for r in ws.db.reviews(slides[0][0])]
    files = sorted(p.relative_to(ws.home) for p in ws.home.rglob("*") if p.is_file() and "pathviz.db" not in p.name)
    return slides, reviews, files


def test_add_slide_in_place_and_copy(ws, demo_svs, demo_png):
    rec = ws.add_slide(demo_svs, copy=True)
    assert rec.width == 2220 and rec.mpp == pytest.approx(0.499)
    assert (ws.slides_dir / demo_svs.name).exists()
    rec2 = ws.add_slide(demo_png, mpp=0.5, copy=True)
    assert rec2.declared_mpp == 0.5
    # the same bytes again are refused by content hash, whatever the name
    inside = ws.home / "mine.png"
    shutil.copyfile(demo_png, inside)
    with pytest.raises(WorkspaceError, match="same content as slide"):
        ws.add_slide(inside, mpp=0.25)
    # a (different) file already inside the workspace registers in place
    from PIL import Image

    Image.open(demo_png).convert("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(inside)
    rec3 = ws.add_slide(inside, mpp=0.25)
    assert rec3.path == str(inside.resolve())
    assert [r.slide_id for r in ws.slides()] == [rec.slide_id, rec2.slide_id, rec3.slide_id]
    with pytest.raises(WorkspaceError, match="already registered"):
        ws.add_slide(inside, mpp=0.25)


def test_path_outside_workspace_refused_unless_allowed(ws, demo_svs, monkeypatch):
    with pytest.raises(WorkspaceError) as err:
        ws.add_slide(demo_svs)
    assert str(demo_svs) in str(err.value) and "--copy" in str(err.value)
    # symlink inside the workspace pointing outside is resolved and refused too
    link = ws.home / "link.svs"
    link.symlink_to(demo_svs)
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        ws.add_slide(link)
    monkeypatch.setenv("PATHVIZ_SLIDE_ROOTS", str(demo_svs.parent))
    allowed = Workspace(Settings.from_env(ws.home))
    assert allowed.add_slide(demo_svs).path == str(demo_svs)


def _bad_files(tmp_path, demo_svs):
    corrupt = tmp_path / "corrupt.svs"
    corrupt.write_bytes(np.random.default_rng(0).bytes(200_000))
    truncated = tmp_path / "truncated.svs"
    truncated.write_bytes(demo_svs.read_bytes()[: demo_svs.stat().st_size // 3])
    text = tmp_path / "notes.png"
    text.write_text("this is not an image\n" * 100)
    trunc_png = tmp_path / "cut.png"
    buf = (tmp_path / "full.png")
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (300, 300, 3), dtype=np.uint8)).save(buf)
    trunc_png.write_bytes(buf.read_bytes()[:5000])
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20_000, 20_000)).save(bomb)  # 400 Mpx, a few kB on disk
    return {"corrupt": corrupt, "truncated": truncated, "text": text, "trunc_png": trunc_png, "bomb": bomb}


@pytest.mark.parametrize(
    "kind, error, words",
    [
        ("corrupt", SlideError, "not a slide format"),
        ("truncated", SlideError, "truncated"),
        ("text", SlideError, "not a readable image"),
        ("trunc_png", SlideError, "truncated"),
        ("bomb", SlideTooLargeError, "pyramidal tiled TIFF"),
    ],
)
def test_bad_slide_files_give_clear_errors_and_lose_nothing(ws_with_review, tmp_path, demo_svs, kind, error, words):
    ws = ws_with_review
    path = _bad_files(tmp_path, demo_svs)[kind]
    before = snapshot(ws)
    with pytest.raises(error) as err:
        ws.add_slide(path, mpp=0.5, copy=True)
    msg = str(err.value)
    assert str(path) in msg and words in msg and "Fix:" in msg
    assert snapshot(ws) == before
    assert not any(p.name.endswith(".partial") for p in ws.home.rglob("*"))


def test_missing_mpp_and_unknown_suffix(ws_with_review, demo_png, tmp_path):
    ws = ws_with_review
    before = snapshot(ws)
    with pytest.raises(MissingMppError, match="declare it"):
        ws.add_slide(demo_png, copy=True)
    odd = tmp_path / "slide.docx"
    odd.write_bytes(b"PK\x03\x04")
    with pytest.raises(WorkspaceError, match="not a slide format PathViz reads"):
        ws.add_slide(odd, copy=True)
    with pytest.raises(SlideError, match="not a positive number"):
        ws.add_slide(demo_png, mpp=-1.0, copy=True)
    assert snapshot(ws) == before


def test_blank_slide_has_empty_mask_error(ws, tmp_path):
    blank = write_pyramidal_tiff(tmp_path / "blank.tif", np.full((1024, 1024, 3), 243, np.uint8), 0.5)
    with open_slide(blank) as s:
        m = tissue_mask(s)
        assert not m.mask.any()
        with pytest.raises(EmptyTissueMaskError) as err:
            tile_grid(s, m)
    assert str(blank) in str(err.value) and "min_tissue=0" in str(err.value)
    rec = ws.add_slide(blank, copy=True)
    with pytest.raises(EmptyTissueMaskError):
        ws.analyse(rec.slide_id)
    assert ws.default_grid_key(rec.slide_id) is None  # no half-made analysis recorded


def test_cli_reports_errors_with_exit_status_2(tmp_path, ws):
    import subprocess
    import sys

    bad = tmp_path / "broken.svs"
    bad.write_bytes(b"\x00" * 1000)
    proc = subprocess.run([sys.executable, "-m", "pathviz", "slide", "info", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("error:") and str(bad) in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "pathviz", "export-geojson", "nope", "--out", str(tmp_path / "x.json")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "No slide with id 'nope'" in proc.stderr


def test_database_file_is_real_sqlite(demo_ws):
    con = sqlite3.connect(demo_ws.home / "pathviz.db")
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    con.close()
    assert {"slides", "reviews"} <= tables
