"""What the demo cohort can and cannot show, as the pages state it (:func:`pathviz.cohort.demo.demo_statement`)."""

from __future__ import annotations

from pathviz.cohort.demo import demo_statement, read_ground_truth
from pathviz.jobs.demo import demo_cohort_dir

#: Shown beside a stain layer on a demo-cohort slide.
STAIN_LAYER_NOTE = ("Demo-cohort slide: every tile has the same colours (colour-matched), so this stain layer carries "
                    "no planted signal; the planted tissue differs in morphology only.")


def demo_note(ws) -> str:
    """The plain statement for the workspace's demo cohort; a generic line when it is not built."""
    folder = demo_cohort_dir(ws)
    if not (folder / "ground_truth.json").exists():
        return "Semi-synthetic demo cohort: real H&E tissue and real expression profiles, simulated outcomes."
    return demo_statement(read_ground_truth(folder))
