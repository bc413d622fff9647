"""Issue 9 "Reviews" end to end in real headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright): the reported review bugs, reproduced as a pathologist would meet them.

- after saving a review on patch #1 and choosing #2, the comment box is empty and no verdict is set;
- the gallery badge of #1 says agree right after saving (as the export table does);
- keyboard shortcuts save a verdict and move to the next patch;
- after switching slides the review panel's score is the new slide's gallery score.

Screenshots: the reviewed gallery and panel (``PATHVIZ_REVIEW_SHOT``, default ``tmp_path/review.png``) and
the panel after the slide switch (``*_switched.png`` beside it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from test_browser import browser_login, launch_chromium, running_app  # noqa: F401 (the app on a free port over a copy of the demo workspace)

WAIT_MS = 20_000

pytestmark = pytest.mark.browser


def test_review_state_in_chromium(running_app, demo_ws, tmp_path):  # noqa: F811
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect, sync_playwright

    slides = demo_ws.slides()
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        browser_login(page, running_app[0], username="drpage", roles=("pathologist",))
        page.wait_for_selector('[data-testid="stApp"]', timeout=60_000)
        page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=60_000)

        def settle() -> None:
            """Wait until the script run an action started has finished."""
            try:
                page.wait_for_selector('[data-testid="stApp"]:not([data-test-script-state="notRunning"])', timeout=1500)
            except PlaywrightTimeout:
                pass  # it ran and finished already
            page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=WAIT_MS)

        def choose(label: str, option: str) -> None:
            page.get_by_role("combobox", name=label, exact=True).click()
            page.get_by_role("option", name=option, exact=True).click()
            settle()

        def caption(rank: int):
            return page.locator('[data-testid="stCaptionContainer"]').filter(
                has_text=re.compile(rf"^#{rank} · score")).first

        comment = page.get_by_label("Comment")
        verdicts = page.locator('[data-testid="stRadio"]').filter(has_text="Verdict")
        panel_score = page.locator('[data-testid="pv-review-score"]')

        # the pathologist names herself and chooses a layer
        settle()
        choose("Score layer", "eosin")
        expect(page.get_by_text("Top 10 flagged patches · Eosin density")).to_be_visible(timeout=WAIT_MS)
        expect(page.get_by_text("Reviewed 0 of 10")).to_be_visible(timeout=WAIT_MS)

        # save a review with a comment on patch #1
        verdicts.get_by_text("agree", exact=True).click()
        settle()
        comment.fill("dense atypical nuclei")
        comment.press("Tab")  # a text area commits its value on blur
        settle()
        page.get_by_role("button", name="Save review").click()
        settle()
        expect(page.get_by_text("Saved: agree on patch #1 by drpage")).to_be_visible(timeout=WAIT_MS)
        # the gallery badge says agree at once (it said "unreviewed" while the export said agree)
        expect(caption(1)).to_contain_text("agree", timeout=WAIT_MS)
        expect(page.get_by_text("Reviewed 1 of 10")).to_be_visible(timeout=WAIT_MS)

        # patch #2: a blank form (the comment box kept #1's text and the verdict stayed selected)
        choose("Patch", "#2")
        expect(comment).to_have_value("", timeout=WAIT_MS)
        expect(verdicts.locator("input:checked")).to_have_count(0)
        expect(caption(1)).to_contain_text("agree")
        # back to #1: its saved verdict and comment
        choose("Patch", "#1")
        expect(comment).to_have_value("dense atypical nuclei", timeout=WAIT_MS)
        expect(verdicts.locator("input:checked")).to_have_count(1)

        # keyboard: N = next patch, D = disagree and save (keys go to the page, not a text box)
        page.get_by_role("heading", name="Review").click()
        page.keyboard.press("n")
        settle()
        expect(page.locator('[data-testid="pv-review-patch"]')).to_contain_text("Patch #2", timeout=WAIT_MS)
        page.keyboard.press("d")
        settle()
        expect(page.get_by_text("Saved: disagree on patch #2 by drpage")).to_be_visible(timeout=WAIT_MS)
        expect(caption(2)).to_contain_text("disagree", timeout=WAIT_MS)
        expect(page.get_by_text("Reviewed 2 of 10")).to_be_visible(timeout=WAIT_MS)

        shot = Path(os.environ.get("PATHVIZ_REVIEW_SHOT", tmp_path / "review.png"))
        shot.parent.mkdir(parents=True, exist_ok=True)
        gallery = page.get_by_role("heading", name=re.compile("^Top 10 flagged patches"))
        gallery.evaluate("e => e.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(300)
        page.screenshot(path=str(shot))

        # another slide: the panel is the new slide's patch #1, with the gallery's score
        current = next(r for r in slides if r.slide_id != slides[0].slide_id)
        choose("Slide", current.name)
        expect(page.locator('[data-testid="pv-review-patch"]')).to_contain_text(current.name, timeout=WAIT_MS)
        expect(page.locator('[data-testid="pv-review-counter"]')).to_have_text(re.compile(r"^Reviewed 0 of \d+$"))
        gallery_score = caption(1).inner_text().split(" · ")[1].removeprefix("score ")
        shown_score = panel_score.inner_text()
        expect(comment).to_have_value("")
        page.get_by_role("heading", name="Review").evaluate("e => e.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(300)
        page.screenshot(path=str(shot.with_name(shot.stem + "_switched.png")))
        browser.close()
    print(f"screenshot: {shot}; gallery #1 score {gallery_score}, review panel score {shown_score}")
    assert shown_score == gallery_score
    assert [r.verdict for r in demo_ws.db.reviews(slides[0].slide_id, "eosin")] == ["agree", "disagree"]
