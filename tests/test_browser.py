"""End to end in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright):
the running app draws slide tiles in the viewer."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

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


@pytest.fixture
def running_app(demo_ws, tmp_path):
    if not Path(CHROMIUM).exists() or shutil.which("streamlit", path=str(Path(sys.executable).parent)) is None:
        if REQUIRED:
            pytest.fail(f"Chromium ({CHROMIUM}) or streamlit missing but PATHVIZ_REQUIRE_BROWSER=1")
        pytest.skip(f"Chromium not found at {CHROMIUM} (install Debian's chromium to run this test)")
    port, tile_port = _free_port(), _free_port()
    env = dict(os.environ, PATHVIZ_HOME=str(demo_ws.home), PATHVIZ_TILE_PORT=str(tile_port))
    log = open(tmp_path / "streamlit.log", "w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "streamlit"), "run", str(ROOT / "app.py"), "--server.port", str(port),
         "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/_stcore/health", 60)
        yield f"http://127.0.0.1:{port}/", f"http://127.0.0.1:{tile_port}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


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
        page.goto(app_url)
        page.wait_for_selector('[data-testid="stApp"]', timeout=60_000)
        page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=60_000)
        frame_el = page.wait_for_selector('iframe[title*="pathviz_viewer"]', timeout=60_000)
        frame = frame_el.content_frame()
        frame.wait_for_selector("#osd canvas", timeout=30_000)
        # wait until the drawer has painted tissue: non-blank, non-uniform canvas pixels
        painted = 0
        deadline = time.time() + 30
        while time.time() < deadline:
            painted = frame.evaluate(
                """() => { const c = document.querySelector('#osd .openseadragon-canvas canvas');
                   if (!c || !c.width) return 0;
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   let n = 0; for (let i = 0; i < d.length; i += 4) {
                     const r = d[i], g = d[i+1], b = d[i+2];
                     if (d[i+3] > 0 && (Math.max(r, g, b) - Math.min(r, g, b)) > 40) n++; }
                   return n; }"""
            )
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
        browser.close()
    with urllib.request.urlopen(f"{tile_url}/stats", timeout=5) as r:
        stats = json.loads(r.read())
    print(f"screenshot: {shot}; painted pixels: {painted}; tile server: {stats}; status: {status}")
    assert shot.stat().st_size > 10_000
    assert stats["tiles_served"] > 0, "the viewer requested no tiles"
    assert painted > 5000, "the viewer canvas shows no stained tissue"
    assert "µm/screen px" in status
    print(f"centre: {before:.2f} -> {after:.2f} µm/screen px, focused outlines: {focused}")
    assert after < before * 0.6, "Centre did not zoom the viewer onto the patch"
    assert focused == 1
