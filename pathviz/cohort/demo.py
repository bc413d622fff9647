"""The multimodal demo cohort: the planted-truth benchmark cohort (generator v3, :mod:`pathviz.cohort.benchmark`)
at the size a first start can build.

Every part a model sees is real tissue or a real expression profile except the outcomes and the
planted couplings, which follow the generator's frozen settings
(:data:`pathviz.cohort.benchmark.SETTINGS`); ``ground_truth.json`` records them, and no model reads
it. The demo is the current generator with cohort seed 0 (the development seed) and
:data:`DEMO_PATIENTS` patients (the benchmark uses 500), so the cohort and PAGE-Net are ready
within minutes of a first start; ``pathviz demo --cohort-seed N --patients N`` builds another.

What the demo can show: pages and models working end to end on slides whose planted tissue,
expression coupling and survival model are known, so a heatmap or a risk score can be checked
against the truth. What it cannot show at this size: the CA19-9 and treatment interactions (they
need about 500 patients to be detected with the *true* risk groups at power 0.8; at 200 the
power is well below), and any claim about real patients (the outcomes are simulated). The
haematoxylin layer carries no planted signal here: every tile is colour-matched, so the classes
differ in morphology only.
"""

from __future__ import annotations

import json
from pathlib import Path

from pathviz.cohort.benchmark import LABEL, MPP, PATCH, load_generated_cohort
from pathviz.cohort.schema import Cohort

#: Patients of the first-start demo (the benchmark's default is 500).
DEMO_PATIENTS = 200
#: Cohort seed of the demo (0 = the development seed all settings were chosen on).
DEMO_SEED = 0
#: The demo slides' analysis grid: 256 px patches at 0.5 um/px (each 2 x 2 planted tiles).
DEMO_MPP, DEMO_PATCH = MPP, PATCH
#: Share of a patch that must be tissue for the grid to keep it.
DEMO_MIN_TISSUE = 0.5


def load_demo_cohort(folder: str | Path) -> Cohort:
    """The generated demo cohort as a :class:`Cohort` (``semi_synthetic=True``; ``slide`` and the
    generator's ``split`` are identifiers, never covariates).

    Raises:
        PathVizError: no demo cohort in ``folder``, or one built by the demo generator v1 (an
            earlier PathViz), which pages and models no longer read.
    """
    from pathviz.errors import PathVizError

    clinical = Path(folder) / "clinical.csv"
    if clinical.exists() and "split" not in clinical.read_text().partition("\n")[0].strip().split(","):
        raise PathVizError(f"The demo cohort at {folder} was built by an earlier PathViz (demo generator v1); this "
                           "version reads only the planted-truth generator (v2 or later).",
                           "start a fresh workspace (PATHVIZ_HOME=/new/folder) and run `pathviz demo`, or move "
                           f"{folder} aside and run `pathviz demo` here (its old slides stay registered).")
    return load_generated_cohort(folder, "demo", "PathViz demo cohort (" + LABEL + ")", ["slide", "split"],
                                 "build it with `pathviz demo`.")


def read_ground_truth(folder: str | Path) -> dict:
    """The cohort's ``ground_truth.json`` (benches, tests and docs read it; models never do)."""
    return json.loads((Path(folder) / "ground_truth.json").read_text())


def demo_statement(truth: dict) -> str:
    """What the built demo cohort can and cannot show, in plain words for the pages (Markdown), from
    its ``ground_truth.json`` (size and seed only: no planted value is shown)."""
    from pathviz.cohort.benchmark import SETTINGS

    n, seed = truth.get("patients_n", len(truth.get("patients", {}))), truth.get("seed", 0)
    size = (f"{n} patients (cohort seed {seed}); the benchmark behind it uses {SETTINGS.patients}"
            if n < SETTINGS.patients else f"{n} patients (cohort seed {seed})")
    return (f"**Semi-synthetic demo cohort**, {size}. Real H&E tissue (colour-matched tiles of two real "
            "slides) and real expression profiles; the outcomes are simulated from a documented model. "
            "**It can show** every page and model working end to end, and whether a heatmap or risk score "
            "finds what was planted (tissue, an expression pathway, CA19-9 and treatment effects by risk "
            "group). **It cannot show** anything about real patients, and "
            + ("at this size the CA19-9 and treatment interactions are usually not detectable, even with the "
               "true risk groups (about 500 patients are needed for a power of 0.8). "
               if n < SETTINGS.patients else "")
            + "The haematoxylin and eosin layers carry no planted signal on its slides: every tile has the same "
              "colours, so the planted tissue differs in morphology only.")
