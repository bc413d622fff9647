"""Issue 9 "Reviews": per-patch review state on the slide viewer (AppTest, no browser), and the
shared percentile scale of the PAGE-Net survival-map thumbnails."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from conftest import app_test

from pathviz.errors import PathVizError
from pathviz.report.export import flagged_table, review_progress
from pathviz.layers.colormap import colorize, percentile_scale, percentile_ticks

ROOT = Path(__file__).resolve().parents[1]
VIEWER = str(ROOT / "pages" / "slide_viewer.py")


def fresh_app() -> AppTest:
    st.cache_resource.clear()
    st.cache_data.clear()
    return app_test(VIEWER, default_timeout=60)


def gallery_caption(at: AppTest, rank: int) -> str:
    return next(c.value for c in at.caption if c.value.startswith(f"#{rank} · score"))


def panel(at: AppTest) -> str:
    return next(m.value for m in at.markdown if "pv-review-patch" in m.value)


def panel_score(at: AppTest) -> str:
    return re.search(r"data-testid='pv-review-score'>([^<]+)<", panel(at)).group(1)


def counter(at: AppTest) -> str:
    return re.sub(r"<[^>]+>", "", next(m.value for m in at.markdown if "pv-review-counter" in m.value))


def test_form_follows_the_patch_and_badges_update_at_once(demo_ws):
    at = fresh_app().run()
    assert not at.exception
    n = len(flagged_table(demo_ws, at.session_state["slide_id"], "haematoxylin", 10))
    assert counter(at).startswith(f"Reviewed 0 of {n}")
    assert at.radio(key="verdict").value is None and at.text_area(key="comment").value == ""
    at.radio(key="verdict").set_value("agree")
    at.text_area(key="comment").input("dense atypical nuclei")
    at.button(key="save_review").click().run()
    assert not at.exception
    # the badge, the counter and the export table say so in the very run that saved
    assert "✅ agree" in gallery_caption(at, 1)
    assert "unreviewed" in gallery_caption(at, 2)
    assert counter(at).startswith(f"Reviewed 1 of {n}")
    assert at.dataframe[0].value.iloc[0]["verdict"] == "agree"
    assert any("Saved: agree on patch #1 by tester" in s.value for s in at.success)

    at.selectbox(key="selected_rank").set_value(2).run()
    assert at.radio(key="verdict").value is None
    assert at.text_area(key="comment").value == ""
    assert "#2" in panel(at) and "unreviewed" in panel(at)

    at.selectbox(key="selected_rank").set_value(1).run()
    assert at.radio(key="verdict").value == "agree"
    assert at.text_area(key="comment").value == "dense atypical nuclei"
    assert "✅ agree" in panel(at)


def test_quick_buttons_and_next_patch(demo_ws):
    at = fresh_app().run()
    at.text_area(key="comment").input("crush artefact")
    at.button(key="quick_disagree").click().run()
    assert not at.exception
    assert "❌ disagree" in gallery_caption(at, 1)
    assert at.radio(key="verdict").value == "disagree"

    at.button(key="next_patch").click().run()
    assert at.selectbox(key="selected_rank").value == 2
    assert at.session_state["focus"]["rank"] == 2  # the viewer centres on it too
    assert at.radio(key="verdict").value is None and at.text_area(key="comment").value == ""
    at.button(key="quick_agree").click().run()
    assert "✅ agree" in gallery_caption(at, 2)
    assert counter(at).startswith("Reviewed 2 of")

    at.button(key="prev_patch").click().run()
    assert at.selectbox(key="selected_rank").value == 1
    assert (at.radio(key="verdict").value, at.text_area(key="comment").value) == ("disagree", "crush artefact")
    sid = at.session_state["slide_id"]
    assert review_progress(flagged_table(demo_ws, sid, "haematoxylin", 10)) == (2, 10)


def test_saving_without_a_verdict_is_refused(demo_ws):
    at = fresh_app().run()
    at.button(key="save_review").click().run()
    assert any("No verdict chosen" in e.value for e in at.error)
    assert demo_ws.db.reviews(at.session_state["slide_id"]) == []


def test_review_panel_belongs_to_the_current_slide_and_layer(demo_ws):
    at = fresh_app().run()
    at.selectbox(key="selected_rank").set_value(3).run()
    at.radio(key="verdict").set_value("agree")
    at.text_area(key="comment").input("first slide")
    at.button(key="save_review").click().run()
    assert gallery_caption(at, 3).split(" · ")[1] == f"score {panel_score(at)}"

    other = next(r.slide_id for r in demo_ws.slides() if r.slide_id != at.session_state["slide_id"])
    at.selectbox(key="slide_id").set_value(other).run()
    assert not at.exception
    # back to patch #1 of the new slide; score, form and counter are the new slide's
    assert at.selectbox(key="selected_rank").value == 1
    assert gallery_caption(at, 1).split(" · ")[1] == f"score {panel_score(at)}"
    assert at.radio(key="verdict").value is None and at.text_area(key="comment").value == ""
    assert counter(at).startswith("Reviewed 0 of")

    at.selectbox(key="layer").set_value("eosin").run()
    assert at.selectbox(key="selected_rank").value == 1
    assert gallery_caption(at, 1).split(" · ")[1] == f"score {panel_score(at)}"
    assert "Eosin density" in panel(at)


def test_percentile_scale_keeps_weak_maps_visible():
    rng = np.random.default_rng(0)
    strong = rng.uniform(50, 100, (2, 8, 8))
    weak = rng.uniform(0.0, 0.5, (3, 8, 8))  # far below the strong maps' maximum
    maps = np.concatenate([strong, weak])
    scaled = percentile_scale(maps)
    assert scaled.shape == maps.shape and scaled.min() == 0.0 and scaled.max() == 1.0
    for m in scaled[2:]:
        rgb = colorize(m, "inferno", 0.0, 1.0)[..., :3]
        assert rgb.max() > 40, "a weak map came out all black"
        assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 10, "a weak map lost its structure"
    # the old linear scale (0 to the overall max) paints them black: the reported bug
    assert colorize(weak[0], "inferno", 0.0, float(maps.max()))[..., :3].max() < 10
    # one shared, monotone scale: a larger value never gets a darker colour, in any map
    order = np.argsort(maps, axis=None)
    assert np.all(np.diff(scaled.reshape(-1)[order]) >= 0)


def test_percentile_scale_edge_cases():
    assert np.all(percentile_scale(np.zeros((2, 3, 3))) == 0)
    v = np.array([[0.0, 0.0, 1.0, np.nan]])
    out = percentile_scale(v)
    assert out[0, 0] == out[0, 1] == 0.0 and out[0, 2] == 1.0 and np.isnan(out[0, 3])
    assert percentile_ticks(np.arange(11.0), (0, 50, 100)) == [(0.0, 0.0), (50.0, 5.0), (100.0, 10.0)]
    with pytest.raises(PathVizError, match="no values"):
        percentile_scale(np.array([]))
    with pytest.raises(PathVizError, match="0-100"):
        percentile_ticks(np.arange(3.0), (0, 150))


def test_a_session_ended_since_the_page_was_drawn_saves_nothing(demo_ws):
    """Button callbacks run before the page's own login check: a review clicked after the account
    was disabled (or the session expired, or the user logged out elsewhere) is refused, not saved
    under the old identity."""
    from pathviz.auth.policy import operator

    from conftest import make_user

    make_user(demo_ws, "root", ("admin",))  # tester may not be the last admin to disable
    at = fresh_app().run()
    at.radio(key="verdict").set_value("agree")
    demo_ws.accounts.set_active(operator(), "tester", False)
    at.button(key="save_review").click().run()
    assert demo_ws.db.reviews(at.session_state["slide_id"]) == []
    assert any("You are not logged in" in w.value for w in at.warning)
    assert not [r for r in demo_ws.audit.search(operator(), action="review.saved")]
