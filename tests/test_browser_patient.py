"""Real browser (Debian's chromium via Playwright): the patient page's former dead ends (issue 9,
"Why" item 5) are gone for a new user: on gbsg2 no serum-marker panel offers the oestrogen
receptor, no PAGE-Net command is suggested for a cohort without slides, p-values read "p = " /
"p < ", and the model's held-out C-index is shown with its CI."""

from __future__ import annotations

import re

import pytest
from test_browser import browser_login, launch_chromium, running_app  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser


def _settle(page) -> None:
    page.wait_for_selector('[data-testid="stApp"]', timeout=60_000)
    page.wait_for_timeout(500)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=180_000)


def test_patient_page_dead_ends_gone_on_gbsg2(running_app, tmp_path):  # noqa: F811
    from playwright.sync_api import sync_playwright

    app_url, _ = running_app
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        browser_login(page, app_url, next_path="patient")
        _settle(page)
        cohort_box = page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first
        cohort_box.click()
        page.get_by_role("option", name="gbsg2", exact=True).click()
        _settle(page)
        page.wait_for_selector("text=Serum marker inside each risk group", timeout=120_000)
        body = page.inner_text("body")
        page.screenshot(path=str(tmp_path / "patient_gbsg2.png"), full_page=True)
        browser.close()
    assert "has no serum-marker column" in body
    assert "estrec >" not in body and "Marker" not in re.findall(r"^Marker$", body, re.M)
    assert "pathviz train pagenet" not in body and "PAGE-Net needs a slide and an expression profile" in body
    assert re.search(r"Harrell's C: \d\.\d{3} \(95% CI \d\.\d{3}-\d\.\d{3}\)", body)
    assert "1000 resamples" in body
    assert "p=<" not in body and re.search(r"Interaction \(treatment x risk group\): p [=<] ", body)
