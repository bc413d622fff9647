"""Issue 14 in real headless Chromium: a pathologist opens a cohort slide's attention layer of a
registered attention-MIL version. The viewer shows it by percentile rank within the slide with the
lower half transparent (the overlay tiles asked for carry ``percentile-50``), flags the top-attended
patches, and prints the version's held-out C-index beside the map.

Screenshot: ``PATHVIZ_ATTENTION_SHOT`` (default ``/tmp/attention_layer.png``).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from test_browser import _painted, _streamlit_app, browser_login, launch_chromium, wait_for_run

from pathviz.jobs.demo import build_demo_cohort

WAIT_MS = 60_000
SHOT = os.environ.get("PATHVIZ_ATTENTION_SHOT", "/tmp/attention_layer.png")

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def attention_home(tmp_path_factory, demo_svs, demo_png) -> tuple[Path, str, str]:
    """A workspace with a 16-patient demo cohort and one registered attention-MIL version
    (PAGE-Net's small CNN as the encoder, to keep it quick); ``(home, version ref, layer tag)``."""
    from pathviz.jobs.mil import train_registered_mil
    from pathviz.settings import Settings
    from pathviz.store.workspace import Workspace

    home = tmp_path_factory.mktemp("attention") / "ws"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATHVIZ_HOME", str(home))
        mp.setenv("PATHVIZ_THREADS", "1")
        mp.delenv("PATHVIZ_DATABASE_URL", raising=False)
        ws = Workspace(Settings.from_env(home))
        build_demo_cohort(ws, seed=7, patients=16)
        man = train_registered_mil(ws, "demo", "attention_mil", seed=0, encoder="pagenet_cnn")
    return home, man.ref, str(man.metrics["layer_tag"])


def test_attention_layer_percentile_and_flagged_patches_in_chromium(attention_home, tmp_path, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    from pathviz.settings import Settings
    from pathviz.store.workspace import Workspace

    home, ref, tag = attention_home
    monkeypatch.setenv("PATHVIZ_HOME", str(home))
    monkeypatch.delenv("PATHVIZ_DATABASE_URL", raising=False)
    ws = Workspace(Settings.from_env(home))
    slide = sorted((r for r in ws.slides() if r.source == "demo_cohort"), key=lambda r: r.name)[0]
    layer_name = f"attention-m{tag}"
    overlay = re.compile(rf"/tiles/overlay/[a-z0-9\-]+/{re.escape(layer_name)}/[^/]+/(value|percentile)-(\d+)/")
    answers: list[tuple[str, int]] = []
    with _streamlit_app(home, tmp_path / "streamlit.log") as app_url, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.on("response", lambda r: answers.append((r.url, r.status)) if "/tiles/overlay/" in r.url else None)
        browser_login(page, app_url, username="drattn", roles=("pathologist",), next_path="slide_viewer")
        sidebar = page.get_by_test_id("stSidebar")
        for label, text in (("Slide", slide.name), ("Score layer", f"attention · {ref}")):
            sidebar.get_by_label(label, exact=True).click()
            page.keyboard.type(text)
            page.keyboard.press("Enter")
            wait_for_run(page, WAIT_MS)
        expect(page.get_by_text(f"Top 10 flagged patches · Attention MIL: attention weight")).to_be_visible(timeout=WAIT_MS)
        try:
            frame = page.wait_for_selector('iframe[title*="pathviz_viewer"]', timeout=WAIT_MS).content_frame()
            frame.wait_for_selector("#osd canvas", state="attached", timeout=WAIT_MS)
        except Exception:
            page.screenshot(path=str(tmp_path / "attention_failed.png"), full_page=True)  # for the CI log
            print("main text at failure:", page.inner_text('[data-testid="stMain"]')[:3000])
            raise
        deadline = time.time() + 30
        while time.time() < deadline and not [u for u, _ in answers if overlay.search(u)]:
            page.wait_for_timeout(300)
        legend = page.locator('[data-testid="pv-legend"]').inner_text()
        main = page.inner_text('[data-testid="stMain"]')
        frame.locator("#osd").scroll_into_view_if_needed()
        deadline = time.time() + 20
        while time.time() < deadline and _painted(frame) <= 5000:
            time.sleep(0.5)
        page.wait_for_timeout(1500)
        page.screenshot(path=SHOT, full_page=True)
        browser.close()

    tiles = [(u, s) for u, s in answers if overlay.search(u)]
    assert tiles, f"no overlay tile of {layer_name} was requested: {sorted({u for u, _ in answers})[:5]}"
    assert {overlay.search(u).group(1, 2) for u, _ in tiles} == {("percentile", "50")}, tiles[:3]
    assert all(s == 200 for _, s in tiles), tiles[:5]
    assert "attention weight (percentile rank within the slide)" in legend, legend
    assert "Transparent: patches ranked below p50 within this slide" in main
    assert re.search(rf"{re.escape(ref)}: held-out C \d\.\d{{3}} \(95% CI", main), main[:2000]
    flagged = re.findall(r"#(\d+) · score (\S+) · x", main)
    layer = ws.layer(slide.slide_id, layer_name)
    assert [int(r) for r, _ in flagged[:3]] == [1, 2, 3], main[:2000]
    top = float(flagged[0][1])
    assert top == pytest.approx(float(layer.scores.max()), rel=1e-2)  # #1 is the most-attended patch
