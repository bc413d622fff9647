"""The admin page in real headless Chromium: launch a Cox-PASNet training on gse1992, watch its
progress bar move, see the new version with its metrics, promote it; the pathway and patient
pages then use it; roll back and they use the previous version. The viewer's tiles come from
the app's own port."""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import pytest

from pathviz.jobs.queue import JobQueue
from pathviz.jobs.worker import Worker
from pathviz.store.registry import ModelRegistry
from test_browser import _streamlit_app, browser_login, launch_chromium  # noqa: E402

from pathviz.auth.policy import operator

OPERATOR = operator()

pytestmark = pytest.mark.browser
REF = re.compile(r"coxpasnet/gse1992@(v\d{4})")
COXPASNET = "Cox-PASNet"  # the patient page's risk-model option


def _settle(page, timeout=90_000) -> None:
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    page.wait_for_timeout(300)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=timeout)


def _used_version(page, url: str, selector_label: str | None = None, option: str | None = None) -> str:
    """The Cox-PASNet version a page says it uses for gse1992 (after choosing the cohort in the
    selectbox ``selector_label`` and clicking the option labelled ``option``, if given)."""
    page.goto(url)
    _settle(page)
    if selector_label:
        box = page.get_by_label(selector_label, exact=True)
        box.click()
        page.keyboard.type("gse1992")
        page.keyboard.press("Enter")
        _settle(page)
    if option:
        page.locator('[data-testid="stRadio"] label').filter(has_text=option).first.click()
        _settle(page)
    deadline = time.time() + 60
    while time.time() < deadline:
        found = REF.findall(page.inner_text('[data-testid="stMain"]'))
        if found:
            return found[0]
        page.wait_for_timeout(500)
    raise AssertionError(f"no coxpasnet/gse1992 version shown on {url}")


def test_admin_trains_promotes_and_rolls_back_in_chromium(demo_ws, tmp_path):
    from playwright.sync_api import sync_playwright

    queue, registry = JobQueue(demo_ws.db, demo_ws.home), ModelRegistry(demo_ws.models_dir)
    first = queue.submit("coxpasnet", {"cohort": "gse1992"}, actor=OPERATOR)  # an earlier version, trained beforehand
    Worker(demo_ws).run(once=True)
    assert queue.get(first.id).status == "succeeded", queue.get(first.id).error
    demo_ws.registry().promote("coxpasnet/gse1992@v0001", actor=OPERATOR)
    with _streamlit_app(demo_ws.home, tmp_path / "streamlit.log") as app_url, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        tiles = []
        page.on("response", lambda r: tiles.append((r.url, r.status)) if "/tiles/" in r.url else None)
        # the viewer (default page) draws tiles from the app's own host and port
        browser_login(page, app_url)
        _settle(page)
        page.wait_for_selector('iframe[title*="pathviz_viewer"]', timeout=120_000)
        deadline = time.time() + 30
        while time.time() < deadline and not any(s == 200 for _, s in tiles):
            page.wait_for_timeout(300)
        origin = urlsplit(app_url)
        assert tiles and all(urlsplit(u).netloc == origin.netloc for u, _ in tiles), tiles[:5]
        assert any(s == 200 for _, s in tiles)

        # launch a training on gse1992 from the admin page
        page.goto(app_url + "admin")
        _settle(page)
        cohort = page.get_by_label("Cohort", exact=True)
        cohort.click()
        page.keyboard.type("gse1992")
        page.keyboard.press("Enter")
        _settle(page)
        page.get_by_role("button", name="Start training").click()
        # the job row is the real effect (the page's "queued" message is transient: any rerun clears it)
        deadline = time.time() + 120
        while time.time() < deadline and not any(j.id > first.id for j in queue.list(kind="coxpasnet")):
            page.wait_for_timeout(300)
        assert any(j.id > first.id for j in queue.list(kind="coxpasnet")), "Start training queued no job"
        values = set()
        deadline = time.time() + 600
        while time.time() < deadline:
            for bar in page.locator('[data-testid="stProgress"] [role="progressbar"]').all():
                try:
                    values.add(float(bar.get_attribute("aria-valuenow", timeout=1000)))
                except Exception:  # noqa: BLE001 (the fragment redraws the bar between calls)
                    pass
            if len(registry.versions("coxpasnet", "gse1992")) == 2:
                break
            page.wait_for_timeout(300)
        assert len(registry.versions("coxpasnet", "gse1992")) == 2, queue.list(limit=3)
        assert len({v for v in values if 0 < v < 100}) >= 2, f"the progress bar did not move: {sorted(values)}"
        page.screenshot(path=str(tmp_path / "admin_trained.png"))
        # the page reruns when the job ends: the new version appears with its held-out C and CI
        page.wait_for_selector("text=Versions v0002, v0001 · production → v0001", timeout=120_000)
        main = page.inner_text('[data-testid="stMain"]')
        assert "coxpasnet/gse1992" in main

        # promote v0002 (with confirmation)
        page.get_by_label("Version", exact=True).first.click()
        page.keyboard.type("v0002")
        page.keyboard.press("Enter")
        _settle(page)
        page.get_by_text("I confirm: pages will use this version").first.click()
        page.get_by_role("button", name="Promote").first.click()
        try:
            page.wait_for_selector("text=Promoted: production of coxpasnet/gse1992 v0001 → v0002", timeout=120_000)
        except Exception:
            page.screenshot(path=str(tmp_path / "admin_promote_failed.png"), full_page=True)  # for the CI log
            print("main text at failure:", page.inner_text('[data-testid="stMain"]')[:3000])
            raise
        page.screenshot(path=str(tmp_path / "admin_promoted.png"))
        assert registry.aliases("coxpasnet", "gse1992")["production"] == "v0002"
        assert _used_version(page, app_url + "pathways", "Cohort") == "v0002"
        assert _used_version(page, app_url + "patient", "Cohort", COXPASNET) == "v0002"

        # roll back: both pages use v0001 again
        page.goto(app_url + "admin")
        _settle(page)
        page.get_by_text("I confirm: pages go back to the previous version").first.click()
        page.get_by_role("button", name="Roll back").first.click()
        page.wait_for_selector("text=Rolled back: production of coxpasnet/gse1992 v0002 → v0001", timeout=120_000)
        assert registry.aliases("coxpasnet", "gse1992")["production"] == "v0001"
        assert _used_version(page, app_url + "pathways", "Cohort") == "v0001"
        assert _used_version(page, app_url + "patient", "Cohort", COXPASNET) == "v0001"
        browser.close()
