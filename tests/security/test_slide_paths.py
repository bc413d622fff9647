"""Slides from the web UI (trust issue, item 4): only from the workspace, PATHVIZ_SLIDE_ROOTS or an
upload; one message for every path that is not allowed or not found, so the Workspace page is no
file-existence oracle; an upload is written into the workspace and a bad one is not kept."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st

from conftest import app_test
from pathviz.errors import PathVizError, WorkspaceError

from pathviz.auth.policy import operator

OPERATOR = operator()

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "workspace.py")


def _page_error(path: str) -> str:
    st.cache_resource.clear()
    at = app_test(PAGE, default_timeout=120, username="adm", roles=("admin",)).run()
    at.text_input(key="add_path").input(path)
    next(b for b in at.button if b.label == "Add slide").click().run()
    assert not at.exception
    return "\n".join(e.value for e in at.error)


def test_the_page_is_no_file_existence_oracle(ws, tmp_path, demo_svs):
    outside = tmp_path / "outside.svs"
    outside.write_bytes(demo_svs.read_bytes())  # a real slide, readable, outside every allowed root
    probes = [str(outside), str(tmp_path / "missing.svs"), "/etc/passwd", "/etc/no-such-file", "/root", "../../etc/shadow"]
    answers = {p: _page_error(p) for p in probes}
    for p, text in answers.items():
        assert text == f"{p} is not allowed or not found. Fix: choose a file inside the workspace or a folder of " \
                       "PATHVIZ_SLIDE_ROOTS (listed on this page), or upload the file.", text
    assert ws.slides() == [] and not list(ws.slides_dir.iterdir())  # nothing copied or registered


def test_allowed_paths_and_uploads_register(ws, demo_svs, demo_png):
    inside = ws.home / "incoming" / "cmu.svs"
    inside.parent.mkdir()
    inside.write_bytes(demo_svs.read_bytes())
    rec = ws.add_slide_from_ui(OPERATOR, str(inside))
    assert rec.path == str(inside.resolve())
    up = ws.add_uploaded_slide(OPERATOR, "../../evil name.png", demo_png.read_bytes(), mpp=0.5)
    assert Path(up.path).parent == ws.slides_dir and ".." not in Path(up.path).name and up.mpp == 0.5
    with pytest.raises(PathVizError):
        ws.add_uploaded_slide(OPERATOR, "broken.svs", b"garbage" * 100)
    assert sorted(p.name for p in ws.slides_dir.iterdir()) == [Path(up.path).name]  # the bad upload is not kept
    with pytest.raises(WorkspaceError, match="uploads are limited"):
        ws.add_uploaded_slide(OPERATOR, "big.png", b"x" * 2048, mpp=0.5, max_bytes=1024)
