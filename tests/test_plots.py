"""Figures of pathviz.report.plots (no markers on CI bands, legible at-risk rows, p labels, full forest
labels) and the small-group refusal of pathviz.survival.check_group_sizes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pathviz.errors import PathVizError
from pathviz.report.plots import TEXT_DARK, effect_by_stratum_figure, forest_figure, km_figure, wrap_label
from pathviz.survival import (
    SmallGroupError,
    check_group_sizes,
    km_by_group,
    marker_by_stratum,
    p_label,
    treatment_by_stratum,
)


def _small_groups(seed=0):
    """Three short groups (3, 6 and 8 patients): plotly would draw markers on traces this short."""
    rng = np.random.default_rng(seed)
    g = np.array(["low"] * 8 + ["intermediate"] * 6 + ["high"] * 3, dtype=object)
    t = rng.exponential(20, len(g)).round(1) + 0.5
    e = (rng.random(len(g)) < 0.7).astype(int)
    e[[0, 8, 14]] = 1
    return t, e, g


def _by_stratum(seed=1, n=40):
    rng = np.random.default_rng(seed)
    s = np.where(rng.random(n) < 0.5, "high", "low").astype(object)
    t = rng.exponential(np.where(s == "high", 10, 25)) + 0.5
    e = (rng.random(n) < 0.75).astype(int)
    return t, e, s, rng.lognormal(3.2, 1.0, n), (rng.random(n) < 0.5).astype(int)


def _assert_no_markers_on_fills(fig):
    fills = [tr for tr in fig.data if getattr(tr, "fill", None) not in (None, "none")]
    assert fills, "the figure should have CI bands"
    for tr in fills:
        # mode unset means plotly's default, which is lines+markers for traces under 20 points
        assert tr.mode is not None and "markers" not in tr.mode, tr


def test_km_bands_have_no_markers_and_at_risk_rows_are_dark():
    t, e, g = _small_groups()
    comp = km_by_group(t, e, g, reference="low", ordered=["low", "intermediate", "high"])
    fig = km_figure(comp, "tiny groups", highlight="high")
    _assert_no_markers_on_fills(fig)
    texts = [tr for tr in fig.data if tr.mode == "text"]
    assert len(texts) == 3 and all(tr.textfont.color == TEXT_DARK for tr in texts)
    ticktext = " ".join(fig.layout.yaxis2.ticktext)
    assert all(lab in ticktext for lab in ("low", "intermediate", "high"))
    assert fig.layout.template.layout.paper_bgcolor in ("white", "#fff", "#ffffff", "rgb(255,255,255)")


def test_km_band_is_a_step_polygon_between_the_ci_curves():
    t, e, g = _small_groups()
    comp = km_by_group(t, e, g, reference="low")
    fig = km_figure(comp)
    band = next(tr for tr in fig.data if tr.fill == "toself")
    curve = comp.curves[0]
    k = len(curve.timeline)
    y = np.asarray(band.y)
    assert len(y) == 4 * k
    assert np.allclose(y[: 2 * k], np.repeat(curve.upper, 2)) and np.allclose(y[2 * k:], np.repeat(curve.lower, 2)[::-1])


def test_effect_by_stratum_bands_have_no_markers_and_p_labels():
    t, e, s, marker, treated = _by_stratum()
    for eff in (marker_by_stratum(t, e, s, marker, 37.0, "CA19-9"), treatment_by_stratum(t, e, s, treated)):
        fig = effect_by_stratum_figure(eff, "by stratum")
        _assert_no_markers_on_fills(fig)
        title = fig.layout.title.text
        assert "p=" not in title and ("interaction p = " in title or "interaction p < 0.0001" in title)
        for ann in fig.layout.annotations:  # subplot titles with the stratum HR
            assert "p=" not in ann.text


def test_km_title_uses_spaced_p_label():
    rng = np.random.default_rng(0)
    g = np.array(["low"] * 200 + ["high"] * 200, dtype=object)
    t = rng.exponential(np.where(g == "high", 5, 40))
    comp = km_by_group(t, np.ones(400, int), g, reference="low", ordered=["low", "high"])
    title = km_figure(comp, "cohort").layout.title.text
    assert "log-rank p < 0.0001" in title and "p=" not in title


@pytest.mark.parametrize("p, expected", [(1e-7, "p < 0.0001"), (0.0123, "p = 0.012"), (0.5, "p = 0.500"),
                                         (0.005, "p = 0.0050"), (None, "p n/a"), (float("nan"), "p n/a")])
def test_p_label(p, expected):
    assert p_label(p) == expected


def test_p_label_with_a_name():
    assert p_label(1e-7, "log-rank p") == "log-rank p < 0.0001"
    assert p_label(0.0123, "interaction p") == "interaction p = 0.012"


def test_small_group_refused_with_names_sizes_and_fix():
    g = np.array(["low"] * 10 + ["high"] * 4, dtype=object)
    e = np.r_[np.ones(5), np.zeros(5), np.ones(2), np.zeros(2)]
    with pytest.raises(SmallGroupError) as info:
        check_group_sizes(g, e)
    err = info.value
    assert isinstance(err, PathVizError)
    assert "'high' has n=4, events=2" in err.message and "low" not in err.message.split("Groups")[0]
    assert "median" in err.fix and "all patients" in err.fix
    assert err.small == [("high", 4, 2)]


def test_group_without_events_refused():
    g = np.array(["low"] * 10 + ["intermediate"] * 8 + ["high"] * 6, dtype=object)
    e = np.r_[np.ones(4), np.zeros(6), np.zeros(8), np.ones(6)]
    with pytest.raises(SmallGroupError, match="'intermediate' has n=8, events=0 \\(no events\\)") as info:
        check_group_sizes(g, e, labels=["low", "intermediate", "high"])
    assert "fewer groups" in info.value.fix and "all patients" in info.value.fix
    with pytest.raises(SmallGroupError) as info:
        check_group_sizes(g, e, suggest_all_patients=False)
    assert "fewer groups" in info.value.fix and "all patients" not in info.value.fix


def test_tertiles_like_demo_split_names_every_small_group():
    g = np.array(["low"] * 1 + ["intermediate"] * 17 + ["high"] * 6, dtype=object)
    e = np.r_[0, np.ones(17), np.zeros(6)]
    with pytest.raises(SmallGroupError) as info:
        check_group_sizes(g, e, labels=["low", "intermediate", "high"], context="validation patients, tertiles cut-off")
    msg = str(info.value)
    assert "'low' has n=1, events=0" in msg and "'high' has n=6, events=0" in msg and "intermediate" not in msg.split("Groups")[0]
    assert "validation patients, tertiles cut-off" in msg and "Fix:" in msg


def test_adequate_groups_pass_and_empty_expected_group_is_refused():
    g = np.array(["low"] * 5 + ["high"] * 5 + ["missing"] * 2, dtype=object)
    e = np.array([1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 1])
    assert check_group_sizes(g, e) is None  # 'missing' is ignored
    with pytest.raises(SmallGroupError, match="'intermediate' has n=0, events=0"):
        check_group_sizes(g, e, labels=["low", "intermediate", "high"])
    with pytest.raises(PathVizError, match="one length"):
        check_group_sizes(g, e[:-1])


LONG = "subtype=Mesenchymal-like (immune-desert) vs Proneural"


def test_wrap_label_keeps_all_text():
    w = wrap_label(LONG, 20)
    assert "<br>" in w and w.replace("<br>", "") == LONG
    assert all(len(line) <= 20 for line in w.split("<br>"))
    assert wrap_label("age", 20) == "age"
    assert wrap_label("x" * 50, 20).replace("<br>", "") == "x" * 50


def test_forest_labels_are_full_and_margin_fits():
    df = pd.DataFrame({"term": ["high_risk", LONG, "grade=3 (poorly differentiated)"],
                       "hazard_ratio": [2.1, 1.3, None], "lower_95": [1.4, 0.8, None], "upper_95": [3.2, 2.1, None],
                       "p_value": [1e-6, 0.31, None], "note": ["", "", "no events in group '3'"]})
    fig = forest_figure(df, title="Multivariable Cox")
    cats = list(fig.layout.yaxis.categoryarray)
    shown = [c.replace("<br>", "") for c in cats]
    assert shown == df["term"].tolist()
    assert [c.replace("<br>", "") for c in fig.layout.yaxis.ticktext] == df["term"].tolist()
    assert not any("…" in c or "..." in c for c in cats)
    assert list(fig.data[0].customdata) == df["term"].tolist()
    assert fig.layout.margin.l >= 7 * max(len(line) for c in cats for line in c.split("<br>"))
    assert all("p=" not in s for s in fig.data[0].text)
    assert "p < 0.0001" in fig.data[0].text[0]
