"""Trust issue, in a real browser (Debian's chromium driven by Playwright): a pathologist logs in
through the app's form, reviews a patch (the review names her account) and has no admin page;
an admin then sees her actions in the audit log; without a session the app's own port refuses
tiles and sends pages to the login form."""

from __future__ import annotations

import re

from conftest import make_user
from test_browser import browser_login, launch_chromium, running_app  # noqa: F401 (fixture)

WAIT_MS = 60_000


def _settle(page) -> None:
    page.wait_for_selector('[data-testid="stApp"]', timeout=WAIT_MS)
    page.wait_for_timeout(400)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=90_000)


def test_pathologist_reviews_admin_audits_anonymous_refused(running_app, demo_ws, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    app_url = running_app[0]
    sid = demo_ws.slides()[0].slide_id
    tile = f"{app_url}tiles/slide/{sid}_files/8/0_0.jpeg"
    make_user(demo_ws, "adm", ("admin",))
    with sync_playwright() as p:
        browser = launch_chromium(p)
        anon = browser.new_context()
        page = anon.new_page()
        r = page.request.get(tile)
        assert r.status == 401 and r.text() == "Log in first."  # no session: no tile, no slide names
        page.goto(app_url + "admin")
        assert "/session/login" in page.url  # pages go to the login form
        anon.close()

        # the pathologist
        ctx = browser.new_context(viewport={"width": 1400, "height": 1100})
        page = ctx.new_page()
        browser_login(page, app_url, username="pat", roles=("pathologist",))
        _settle(page)
        assert page.request.get(tile).status == 200  # her session's cookie opens the tiles
        nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
        assert "Slide viewer" in nav and "Account" in nav
        assert not re.search("Models and jobs|Users and audit|Workspace|Patient risk", nav)
        expect(page.get_by_text("Logged in as pat (pathologist)")).to_be_visible(timeout=WAIT_MS)
        page.locator('[data-testid="stRadio"]').filter(has_text="Verdict").get_by_text("agree", exact=True).click()
        _settle(page)
        page.get_by_role("button", name="Save review").click()
        _settle(page)
        expect(page.get_by_text("Saved: agree on patch #1 by pat")).to_be_visible(timeout=WAIT_MS)
        expect(page.get_by_text(re.compile(r"agree by pat"))).to_be_visible(timeout=WAIT_MS)  # the history line
        page.screenshot(path=str(tmp_path / "pathologist.png"), full_page=True)
        page.goto(app_url + "users")  # the admin page by its URL: not hers
        _settle(page)
        assert page.get_by_text("Audit log").count() == 0 and page.get_by_text("Create user").count() == 0
        page.screenshot(path=str(tmp_path / "pathologist_admin_url.png"))
        page.goto(app_url)
        _settle(page)
        page.get_by_test_id("pv-logout").click()
        page.wait_for_url(re.compile(r"/session/login"), timeout=WAIT_MS)
        assert page.request.get(tile).status == 401  # logged out: the session is gone on the server
        ctx.close()

        # the admin sees what the pathologist did
        ctx = browser.new_context(viewport={"width": 1400, "height": 1100})
        page = ctx.new_page()
        browser_login(page, app_url, username="adm", roles=("admin",), next_path="users")
        _settle(page)
        expect(page.get_by_text("Users and audit").first).to_be_visible(timeout=WAIT_MS)
        audit_text = page.locator('[data-testid="stText"]').last.inner_text()
        assert f"pat  review.saved  slide:{sid}" in audit_text, audit_text
        assert "pat  login  user:pat" in audit_text and "pat  logout  user:pat" in audit_text
        page.screenshot(path=str(tmp_path / "admin_audit.png"), full_page=True)
        browser.close()
    assert demo_ws.db.reviews(sid)[-1].reviewer == "pat"
    assert demo_ws.audit.verify().ok
