"""Every CLI command given a missing model, slide or cohort answers one line
``error: <what> Fix: <how>`` on stderr with status 2 (never a traceback), and "unknown id"
errors suggest the closest ids instead of listing them all."""

from __future__ import annotations

import pytest

from pathviz.cli import main

MISSING = [
    ["slide", "info", "/nonexistent/slide.svs"],
    ["slide", "tiles", "/nonexistent/slide.svs", "--out", "/nonexistent/t.csv"],
    ["slide", "add", "/nonexistent/slide.svs"],
    ["slide", "analyse", "no-such-slide"],
    ["export-geojson", "no-such-slide", "--out", "{tmp}/x.geojson"],
    ["heatmap", "no-such-slide", "--out", "{tmp}/x.png"],
    ["heatmap", "{slide}", "--model", "{tmp}/no-model", "--out", "{tmp}/x.png"],
    ["survival", "km", "--cohort", "no_such_cohort", "--group-by", "risk"],
    ["survival", "km", "--cohort", "gbsg2", "--group-by", "no_such_column"],
    ["survival", "cindex", "--cohort", "no_such_cohort"],
    ["train", "coxpasnet", "--cohort", "no_such_cohort"],
    ["train", "coxpasnet", "--cohort", "gbsg2"],  # no expression
    ["train", "coxpasnet", "--cohort", "gse1992", "--genesets", "{tmp}/missing.gmt"],
    ["train", "pagenet", "--cohort", "gbsg2"],  # no slides
    ["train", "pagenet", "--cohort", "no_such_cohort"],
    ["pathways", "rank", "--model", "{tmp}/no-model"],
]


@pytest.mark.parametrize("argv", MISSING, ids=lambda a: " ".join(a[:3]))
def test_missing_input_gives_error_fix_status_2(argv, demo_ws, tmp_path, capsys):
    slide = demo_ws.slides()[0].slide_id
    args = [a.format(tmp=tmp_path, slide=slide) for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and " Fix: " in err, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err


def test_unknown_slide_suggests_closest_ids_not_all(demo_ws, capsys):
    ids = [r.slide_id for r in demo_ws.slides()]
    assert main(["slide", "analyse", ids[0][:-2]]) == 2
    err = capsys.readouterr().err
    assert f"did you mean {ids[0]!r}" in err
    assert main(["slide", "analyse", "zzzz"]) == 2
    err = capsys.readouterr().err
    assert not any(i in err for i in ids) and "pathviz slide list" in err


def test_suggested_commands_work(demo_ws, capsys):
    """The commands the fixes point to exist and run."""
    assert main(["cohort", "list"]) == 0
    assert "gbsg2" in capsys.readouterr().out
    assert main(["slide", "list"]) == 0


def test_a_closed_pipe_is_not_reported_as_a_missing_file(tmp_path):
    """`pathviz ... | head -1`: the reader leaves early; no misleading 'check that the path exists'."""
    import subprocess
    import sys

    env = {**__import__("os").environ, "PATHVIZ_HOME": str(tmp_path / "ws")}
    out = subprocess.run(f"{sys.executable} -m pathviz --help >/dev/null; {sys.executable} -m pathviz cohort list | head -1",
                         shell=True, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0 and "check that the path exists" not in out.stderr, out.stderr
