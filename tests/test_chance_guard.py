"""The chance guard: every model figure comes with its held-out C-index and one bootstrap CI
(same resamples and seed on the pages and in the CLI), and a visible warning when the CI
includes 0.5."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import streamlit as st
from streamlit.testing.v1 import AppTest

from conftest import app_test

from pathviz.cli import main
from pathviz.survival import harrell_c_bootstrap
from pathviz.survival.chance import BOOTSTRAP_N, BOOTSTRAP_SEED, HeldOutC, held_out_c_index, model_evidence

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "patient.py")


def _data(n: int, signal: float, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t = rng.exponential(1.0 / np.exp(signal * x))
    c = rng.exponential(2.0, n)
    return np.minimum(t, c), (t <= c).astype(int), x


def test_planted_signal_passes_noise_and_reversal_warn():
    strong = held_out_c_index([_data(200, 1.5, 0)])
    assert strong.better_than_chance and strong.warning is None and strong.lower > 0.6
    t, e, _ = _data(60, 1.5, 1)
    noise = held_out_c_index([(t, e, np.random.default_rng(2).normal(size=60))])
    assert not noise.better_than_chance and "not shown to be better than chance" in noise.warning
    t, e, x = _data(200, 1.5, 3)
    reverse = held_out_c_index([(t, e, -x)])
    assert reverse.worse_than_chance and "wrong direction" in reverse.warning


def test_model_evidence_warns_below_chance_or_below_a_baseline():
    good = HeldOutC(0.70, 0.62, 0.78, 100, 60).to_dict()
    noise = HeldOutC(0.55, 0.45, 0.65, 100, 60).to_dict()
    ref = "attention_mil/demo@v0001"
    line, warning = model_evidence(ref, {"kind": "attention_mil", "held_out": good,
                                         "test_c_index": {"attention_mil": 0.70, "mean_pooling": 0.61, "clinical": 0.64}})
    assert warning is None and "0.700 (95% CI 0.620-0.780)" in line and "mean pooling 0.610" in line
    assert "clinical 0.640" in line and "attention_mil 0.7" not in line  # its own figure once, as the headline
    _, warning = model_evidence(ref, {"kind": "attention_mil", "held_out": good,
                                      "test_c_index": {"attention_mil": 0.70, "clinical": 0.72}})
    assert warning and "does not beat clinical" in warning
    _, warning = model_evidence(ref, {"kind": "attention_mil", "held_out": noise, "test_c_index": {}})
    assert warning and "includes 0.5" in warning
    line, warning = model_evidence(ref, {})
    assert "no held-out estimate" in line and "Retrain" in warning


def test_single_split_ci_is_the_plain_bootstrap_and_repeats_give_mean_sd():
    t, e, x = _data(80, 0.8, 4)
    one = held_out_c_index([(t, e, x)])
    c, lo, hi = harrell_c_bootstrap(t, e, x, n_boot=BOOTSTRAP_N, seed=BOOTSTRAP_SEED)
    assert (one.c_index, one.lower, one.upper) == (c, lo, hi)
    splits = [_data(60, 0.8, s) for s in (5, 6, 7)]
    rep = held_out_c_index(splits)
    cs = [held_out_c_index([s]).c_index for s in splits]
    assert rep.c_index == np.mean(cs) and rep.sd == np.std(cs, ddof=1) and "± " in rep.headline()
    assert held_out_c_index(splits) == rep  # fixed seed: the same CI every time
    assert HeldOutC.from_dict(json.loads(json.dumps(rep.to_dict()))) == rep


def test_patient_page_and_cli_show_the_same_ci_and_warn_at_chance(tmp_path, monkeypatch):
    """gse3143's elastic net (split seed 0) is not better than chance on its validation patients:
    the page says so above its strata, with the CI the CLI prints."""
    monkeypatch.setenv("PATHVIZ_HOME", str(tmp_path))
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["survival", "cindex", "--cohort", "gse3143", "--json"]) == 0
    cli = json.loads(out.getvalue())
    held = HeldOutC.from_dict(cli["held_out"])
    assert (held.n_boot, held.seed) == (BOOTSTRAP_N, BOOTSTRAP_SEED)
    st.cache_resource.clear()
    at = app_test(PAGE, default_timeout=180)
    at.session_state["cohort"] = "gse3143"
    at.run()
    assert not at.exception
    body = "\n".join(str(e.value) for e in [*at.markdown, *at.error])
    assert held.headline() in body and f"{BOOTSTRAP_N} resamples" in body
    assert held.lower <= 0.5 and cli["warning"] and any("not shown to be better than chance" in e.value for e in at.error)
