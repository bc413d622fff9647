"""End to end in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright):
the running app draws slide tiles in the viewer, read from the app's own host and port."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import ALL_ROLES, TEST_PASSWORD, make_user
from pathviz.settings import Settings
from pathviz.store.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("PATHVIZ_CHROMIUM", "/usr/bin/chromium")
REQUIRED = os.environ.get("PATHVIZ_REQUIRE_BROWSER") == "1"

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(url)


@contextlib.contextmanager
def _streamlit_app(home: Path, log_path: Path, base: str = ""):
    """``streamlit run app.py`` on a free port over workspace ``home``; yields the app's URL."""
    if not Path(CHROMIUM).exists() or shutil.which("streamlit", path=str(Path(sys.executable).parent)) is None:
        if REQUIRED:
            pytest.fail(f"Chromium ({CHROMIUM}) or streamlit missing but PATHVIZ_REQUIRE_BROWSER=1")
        pytest.skip(f"Chromium not found at {CHROMIUM} (install Debian's chromium to run this test)")
    port = _free_port()
    env = dict(os.environ, PATHVIZ_HOME=str(home))
    prefix = f"/{base}" if base else ""
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "streamlit"), "run", str(ROOT / "app.py"), "--server.port", str(port),
         "--server.headless", "true", "--browser.gatherUsageStats", "false"]
        + (["--server.baseUrlPath", base] if base else []),
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}{prefix}/_stcore/health", 60)
        yield f"http://127.0.0.1:{port}{prefix}/"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


@pytest.fixture
def running_app(demo_ws, tmp_path):
    """``streamlit run app.py`` on a free port over a copy of the demo workspace.

    Yields ``(app_url, tile_url)``: the app's URL (``http://127.0.0.1:PORT/``) and the base URL of
    its tile routes, on the same host and port (``http://127.0.0.1:PORT/tiles``).
    """
    with _streamlit_app(demo_ws.home, tmp_path / "streamlit.log") as url:
        yield url, f"{url}tiles"


def browser_login(page, app_url: str, username: str = "tester", roles=ALL_ROLES, next_path: str = "") -> None:
    """Log in through the app's own form as a real account of ``PATHVIZ_HOME`` (created if needed):
    open ``app_url + next_path``, get redirected to the form, submit it, wait for the page."""
    make_user(Workspace(Settings.from_env()), username, roles)
    page.goto(app_url + next_path)
    page.wait_for_selector("form input#username", timeout=60_000)
    page.fill("#username", username)
    page.fill("#password", TEST_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector('[data-testid="stApp"]', timeout=60_000)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=90_000)


def wait_for_run(page, timeout_ms: int = 30_000) -> None:
    """Wait until the script run an action started has finished (Streamlit's ``stApp`` script state)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_selector('[data-testid="stApp"]:not([data-test-script-state="notRunning"])', timeout=1500)
    except PlaywrightTimeout:
        pass  # it ran and finished already
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms)


def launch_chromium(playwright):
    """Debian's chromium, headless, with the flags this machine's closed network needs."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--no-first-run"],
    )


def test_viewer_draws_tiles_in_chromium(running_app, tmp_path):
    from playwright.sync_api import sync_playwright

    app_url, tile_url = running_app
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        # every request the page and its frames make for tiles, and the answers (iframes included)
        tile_requests, tile_answers = [], []
        page.on("request", lambda r: tile_requests.append(r.url) if "/tiles/" in r.url else None)
        page.on("response", lambda r: tile_answers.append((r.url, r.status)) if "/tiles/" in r.url else None)
        browser_login(page, app_url)
        page.wait_for_selector('[data-testid="stApp"]', timeout=60_000)
        page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=60_000)
        frame_el = page.wait_for_selector('iframe[title*="pathviz_viewer"]', timeout=60_000)
        frame = frame_el.content_frame()
        frame.wait_for_selector("#osd canvas", timeout=30_000)
        # wait until the drawer has painted tissue: non-blank, non-uniform canvas pixels
        painted = 0
        deadline = time.time() + 30
        while time.time() < deadline:
            painted = _painted(frame)
            if painted > 5000:
                break
            time.sleep(0.5)
        shot = tmp_path / "viewer.png"
        page.screenshot(path=str(shot))
        status = frame.inner_text("#status")

        # "Centre" on a flagged patch zooms the viewer onto it (Python -> JS through the component)
        def um_per_px() -> float:
            return float(frame.inner_text("#status").split("·")[1].split("µm")[0])

        before = um_per_px()
        page.get_by_role("button", name="Centre").first.click()
        deadline = time.time() + 20
        while time.time() < deadline and um_per_px() > before * 0.6:
            time.sleep(0.3)
        after = um_per_px()
        focused = frame.locator(".pv-flag.pv-focus").count()
        page.screenshot(path=str(tmp_path / "viewer_centred.png"))
        stats = page.request.get(f"{tile_url}/stats").json()  # with the logged-in session's cookie
        browser.close()
    print(f"screenshot: {shot}; painted pixels: {painted}; tile server: {stats}; status: {status}")
    assert shot.stat().st_size > 10_000
    assert stats["tiles_served"] > 0, "the viewer requested no tiles"
    origin = urlsplit(app_url)[:2]
    assert tile_requests, "the viewer made no request under /tiles/"
    assert all(urlsplit(u)[:2] == origin and urlsplit(u).path.startswith("/tiles/") for u in tile_requests), \
        f"tile requests left the app's own origin {origin}: {sorted(set(tile_requests))[:5]}"
    assert any(status == 200 for _, status in tile_answers), f"no tile answered 200: {tile_answers[:5]}"
    assert not [a for a in tile_answers if a[1] >= 400], f"tile requests failed: {tile_answers[:5]}"
    assert painted > 5000, "the viewer canvas shows no stained tissue"
    assert "µm/screen px" in status
    print(f"centre: {before:.2f} -> {after:.2f} µm/screen px, focused outlines: {focused}")
    assert after < before * 0.6, "Centre did not zoom the viewer onto the patch"
    assert focused == 1


def _painted(frame) -> int:
    """Pixels of stained tissue (saturated colour) on the viewer's canvas."""
    return frame.evaluate(
        """() => { const c = document.querySelector('#osd .openseadragon-canvas canvas');
           if (!c || !c.width) return 0;
           const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
           let n = 0; for (let i = 0; i < d.length; i += 4) {
             const r = d[i], g = d[i+1], b = d[i+2];
             if (d[i+3] > 0 && (Math.max(r, g, b) - Math.min(r, g, b)) > 40) n++; }
           return n; }"""
    )


def test_viewer_tiles_under_base_url_path(demo_ws, tmp_path):
    """Behind a reverse proxy under a path prefix (``server.baseUrlPath``), the viewer still reads its
    tiles from the app's own origin, under the prefix: ``/pv/tiles/...``."""
    from playwright.sync_api import sync_playwright

    with _streamlit_app(demo_ws.home, tmp_path / "streamlit.log", base="pv") as app_url:
        with sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            answers = []
            page.on("response", lambda r: answers.append((r.url, r.status)) if "/tiles/" in r.url else None)
            browser_login(page, app_url)
            frame = page.wait_for_selector('iframe[title*="pathviz_viewer"]', timeout=60_000).content_frame()
            frame.wait_for_selector("#osd canvas", timeout=30_000)
            deadline = time.time() + 30
            while time.time() < deadline and _painted(frame) <= 5000:
                time.sleep(0.5)
            painted = _painted(frame)
            browser.close()
    origin = urlsplit(app_url)[:2]
    print(f"painted pixels: {painted}; tile answers: {len(answers)}, e.g. {answers[:2]}")
    assert answers and all(urlsplit(u)[:2] == origin and urlsplit(u).path.startswith("/pv/tiles/") for u, _ in answers)
    assert all(status == 200 for _, status in answers), answers[:5]
    assert painted > 5000, "the viewer canvas shows no stained tissue"
