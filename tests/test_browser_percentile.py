"""Issue 14 end to end in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright):
a pathologist switches a score layer to percentile display with a transparency floor, and the
viewer asks for (and gets) overlay tiles with those settings.

Screenshot: ``PATHVIZ_PERCENTILE_SHOT`` (default ``/tmp/percentile.png``).
"""

from __future__ import annotations

import os
import re
import time

import pytest
from test_browser import _painted, browser_login, launch_chromium, running_app, wait_for_run  # noqa: F401 (fixture)

WAIT_MS = 30_000
SHOT = os.environ.get("PATHVIZ_PERCENTILE_SHOT", "/tmp/percentile.png")

pytestmark = pytest.mark.browser


def test_percentile_display_and_floor_in_chromium(running_app, demo_ws):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    app_url, _ = running_app
    overlay = re.compile(r"/tiles/overlay/[a-z0-9\-]+/haematoxylin/[^/]+/(value|percentile)-(\d+)/([^/]+)/([^/]+)_files/")
    answers: list[tuple[str, int]] = []
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.on("response", lambda r: answers.append((r.url, r.status)) if "/tiles/overlay/" in r.url else None)
        browser_login(page, app_url, username="drpct", roles=("pathologist",), next_path="slide_viewer")

        def settle() -> None:
            wait_for_run(page, WAIT_MS)

        def overlay_tiles(scale: str, min_floor: int = 0) -> list[tuple[str, int]]:
            return [(u, s) for u, s in answers
                    if (m := overlay.search(u)) and m[1] == scale and int(m[2]) >= min_floor]

        def wait_for_tiles(scale: str, min_floor: int = 0) -> None:
            deadline = time.time() + 30
            while time.time() < deadline and not overlay_tiles(scale, min_floor):
                page.wait_for_timeout(300)

        settle()
        frame = page.wait_for_selector('iframe[title*="pathviz_viewer"]', timeout=60_000).content_frame()
        frame.wait_for_selector("#osd canvas", timeout=WAIT_MS)
        wait_for_tiles("value")
        assert overlay_tiles("value"), f"no value-scale overlay tile was requested: {answers[:3]}"

        sidebar = page.get_by_test_id("stSidebar")
        sidebar.get_by_text("percentile rank within the slide", exact=True).click()
        settle()
        expect(sidebar.get_by_text("Percentile range")).to_be_visible(timeout=WAIT_MS)
        wait_for_tiles("percentile")

        # the floor slider, moved by keyboard as a user can (one rerun when the thumb is released)
        floor_slider = sidebar.locator('[data-testid="stSlider"]').filter(has_text="Transparent below percentile")
        thumb = floor_slider.get_by_role("slider")
        thumb.focus()
        for _ in range(40):
            thumb.press("ArrowRight")
        settle()
        floor = int(thumb.input_value())  # an <input type=range> under the thumb
        wait_for_tiles("percentile", floor)
        expect(page.get_by_text(f"Transparent: patches ranked below p{floor} within this slide")).to_be_visible(timeout=WAIT_MS)
        legend = page.locator('[data-testid="pv-legend"]').inner_text()
        card = page.locator('[data-testid="pv-review-patch"]').inner_text()
        frame.locator("#osd").scroll_into_view_if_needed()
        deadline = time.time() + 20
        while time.time() < deadline and _painted(frame) <= 5000:
            time.sleep(0.5)
        page.wait_for_timeout(1500)  # let the last overlay tiles draw
        page.screenshot(path=SHOT, full_page=True)
        browser.close()

    floored = overlay_tiles("percentile", floor)
    print(f"floor {floor}; {len(floored)} floored percentile tiles, e.g. {floored[:2]}; screenshot {SHOT}")
    assert floor >= 20, f"the floor slider did not move ({floor})"
    assert floored, f"no overlay tile with scale percentile and floor {floor}: {sorted({u for u, _ in answers})[:5]}"
    assert all(status == 200 for _, status in floored), floored[:5]
    assert not [a for a in answers if a[1] >= 400], [a for a in answers if a[1] >= 400][:5]
    vmin, vmax = overlay.search(floored[-1][0]).group(3, 4)
    assert (float(vmin), float(vmax)) == (0.0, 100.0)  # the range is in percentiles now
    assert re.search(r"p0 = \S+.*p50 = \S+.*p100 = \S+", legend, re.S), legend
    assert re.search(r"score \S+ \(p\d+ of this slide's patches\)", card), card
