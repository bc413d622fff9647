"""Application logs carry no patient identifiers (trust issue): a slide whose original file name
names a patient (``PATIENT-Smith-1234.tif``) goes through a real job (queue -> worker -> job
process, failing on the missing slide file) and through the viewer's tile service (a corrupt
tile); the job's log and the captured log records never contain the name, while the error shown
to the user who ran the job still says which file is missing."""

from __future__ import annotations

import logging
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tifffile

from pathviz.errors import SlideError
from pathviz.jobs.queue import JobQueue
from pathviz.jobs.worker import Worker, jobs_dir
from pathviz.slide.writer import write_pyramidal_tiff
from pathviz.viewer.tiles import TileService, _without_paths

NAME = "PATIENT-Smith-1234"
SECRETS = ("Smith", "PATIENT-Smith", "1234.tif")

PLUGIN = textwrap.dedent('''
    """A job kind that reads one registered slide by id (as the training and analysis jobs do)."""
    from pathviz.jobs.queue import JobContext, JobKind, register_job_kind


    def _read_slide(ctx: JobContext) -> dict:
        ctx.progress(0.1, "opening the slide")
        with ctx.workspace.open(ctx.params["slide"]) as slide:
            w, h = slide.dimensions
        ctx.progress(1.0, "read")
        return {"width": w, "height": h}


    register_job_kind(JobKind("read_slide_for_tests", "test job: open a slide by id", _read_slide, {"slide": {"default": ""}}))
''')


def _slide(folder: Path, corrupt: bool = False) -> Path:
    rng = np.random.default_rng(0)
    rgb = (200 + rng.integers(0, 40, (2048, 2048, 3))).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    path = write_pyramidal_tiff(folder / f"{NAME}.tif", rgb, 0.5, compression="jpeg")
    if corrupt:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            index = 2 * -(-page.imagewidth // page.tilewidth) + 3  # level-0 tile at column 3, row 2
            offset, size = page.dataoffsets[index], page.databytecounts[index]
        with open(path, "r+b") as fh:
            fh.seek(offset + 2)
            fh.write(b"\xff\xd9" + bytes(rng.integers(0, 256, size - 4, dtype=np.uint8)))
    return path


@pytest.fixture
def plugin_ws(ws, tmp_path, monkeypatch):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "read_slide_job_for_tests.py").write_text(PLUGIN)
    monkeypatch.setenv("PATHVIZ_JOB_PLUGINS", "read_slide_job_for_tests")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(plugins), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.syspath_prepend(str(plugins))
    return ws


def _submit(q, kind: str, params: dict):
    """Submit as the system where the queue asks who submits (``actor``)."""
    import inspect

    if "actor" in inspect.signature(q.submit).parameters:
        from pathviz.auth.policy import SYSTEM

        return q.submit(kind, params, actor=SYSTEM)
    return q.submit(kind, params)


def _run_job(ws, slide_id: str):
    q = JobQueue(ws.db, ws.home)
    job = _submit(q, "read_slide_for_tests", {"slide": slide_id})
    assert Worker(ws, log=lambda line: None).run(once=True) == 1
    return q.get(job.id)


def test_job_logs_name_no_patient(plugin_ws, caplog):
    ws = plugin_ws
    caplog.set_level(logging.DEBUG)
    rec = ws.add_slide(_slide(ws.home / "incoming"))
    ok = _run_job(ws, rec.slide_id)
    assert ok.status == "succeeded", ok.error
    Path(rec.path).unlink()  # the slide file disappears: the job fails on it, its message names the file
    failed = _run_job(ws, rec.slide_id)
    assert failed.status == "failed" and NAME in failed.error  # the user who ran the job is told which file
    for job in (ok, failed):
        log = Path(job.log_path).read_text()
        assert log.strip()
        assert not [s for s in SECRETS if s in log], log
    assert "SlideError" in Path(failed.log_path).read_text()  # the log still says what failed, and where
    for path in jobs_dir(ws.home).glob("*.log"):  # worker logs too
        assert not [s for s in SECRETS if s in path.read_text()]
    assert not [r for r in caplog.records if any(s in r.getMessage() for s in SECRETS)]


def test_corrupt_tile_log_names_no_patient(ws, caplog):
    rec = ws.add_slide(_slide(ws.home / "incoming", corrupt=True))
    service = TileService(ws)
    top = service.slide_geometry(rec.slide_id)["levels"] - 1
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SlideError):
        service.slide_tile(rec.slide_id, top, 3, 2)
    warnings = [r for r in caplog.records if r.name == "pathviz.viewer.tiles"]
    assert warnings and all(rec.slide_id in r.getMessage() for r in warnings)
    assert not [r for r in caplog.records if any(s in r.getMessage() for s in SECRETS)]


def test_decoder_messages_lose_file_names():
    """libtiff quotes the file (``TIFFReadEncodedTile: <path>: ...``): tile log lines drop it."""
    msg = _without_paths(f"TIFFReadEncodedTile: /data/scans/{NAME}.svs: Read error at row 4294967295, tile 12")
    assert NAME not in msg and "Read error at row" in msg
    assert _without_paths(f"Cannot open {NAME}.ndpi") == "Cannot open <file>"
    assert _without_paths("JPEG datastream contains no image") == "JPEG datastream contains no image"


def test_slide_ids_carry_no_file_name(ws):
    rec = ws.add_slide(_slide(ws.home / "incoming"))
    assert "smith" not in rec.slide_id.lower()
