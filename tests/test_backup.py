"""Backup and restore (pathviz.store.backup) on real workspaces: a round trip keeps reviews and
verifiable registry versions, a backup taken while another process writes is a consistent
prefix, tampered or unfinished backups are refused without touching the target, an existing
workspace is only replaced with force (and kept aside), and the CLI handlers speak the same."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pathviz.errors import PathVizError
from pathviz.settings import Settings
from pathviz.store.backup import add_cli, backup, restore
from pathviz.store.registry import ModelRegistry
from pathviz.store.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.delenv("PATHVIZ_DATABASE_URL", raising=False)
    monkeypatch.delenv("PATHVIZ_SLIDE_ROOTS", raising=False)


def _writer(value: float):
    def write(folder: Path) -> dict:
        (folder / "weights.pt").write_bytes(os.urandom(2048))
        (folder / "model.json").write_text(json.dumps({"value": value}))
        return {"c_index": value}
    return write


def _workspace(home: Path, slide: Path) -> tuple[Workspace, str]:
    """A workspace with one slide copied in, 3 reviews, 2 registry versions (one promoted),
    a derived file and writer debris that must not be backed up."""
    ws = Workspace(Settings.from_env(home))
    rec = ws.add_slide(slide, copy=True)
    for i, verdict in enumerate(("agree", "disagree", "agree")):
        ws.db.add_review(rec.slide_id, "haematoxylin", "g256", (i * 256, 0, 256, 256), verdict, f"dr {i}", comment=f"c{i}")
    reg = ModelRegistry(ws.models_dir)
    m1 = reg.create_version("coxpasnet", "m", _writer(0.6), cohort="demo")
    reg.create_version("coxpasnet", "m", _writer(0.7), cohort="demo", parent=m1.ref)
    folder = ws.models_dir / "coxpasnet" / "m"  # the production alias, as the registry writes it
    (folder / "aliases.json").write_text(json.dumps({"production": m1.version}))
    (folder / "aliases.log").write_text(json.dumps({"time": "2024-01-01T00:00:00+00:00", "alias": "production",
                                                    "version": m1.version, "previous": None, "action": "promote"}) + "\n")
    d = ws.derived_dir(rec.slide_id)
    d.mkdir(parents=True, exist_ok=True)
    (d / "analysis.json").write_text(json.dumps({"grid": "g256"}))
    (ws.models_dir / "coxpasnet" / "m" / ".tmp-dead").mkdir()  # a killed writer's folder
    (ws.models_dir / "coxpasnet" / "m" / ".tmp-dead" / "weights.pt").write_bytes(b"half")
    (d / "layer.tmp.npz").write_bytes(b"half")
    (ws.slides_dir / "upload.tif.partial").write_bytes(b"half")
    return ws, rec.slide_id


def _reviews(ws: Workspace, slide_id: str) -> list[tuple]:
    return [(r.x, r.verdict, r.reviewer, r.comment) for r in ws.db.reviews(slide_id)]


def test_round_trip_with_slides(tmp_path, planted_tiff):
    ws, sid = _workspace(tmp_path / "ws", planted_tiff)
    before = _reviews(ws, sid)
    from pathviz.auth.policy import operator
    from pathviz.jobs.queue import JobQueue

    queued = JobQueue(ws.db, ws.home).submit("verify_models", actor=operator())  # waiting when the backup is taken
    out = tmp_path / "backups" / "b1"
    s = backup(ws.settings, out, include_slides=True)
    assert out.is_dir() and not (tmp_path / "backups" / "b1.partial").exists()
    assert s["counts"] == {"slides": 1, "reviews": 3, "jobs": 1, "users": 0, "audit_rows": 1, "model_versions": 2}
    assert s["slides_not_in_backup"] == []
    meta = json.loads((out / "backup.json").read_text())
    assert meta["database"] == "pathviz.db" and meta["slides_included"] is True
    assert meta["source_home"] == str(ws.home) and meta["created_at"].endswith("+00:00") and meta["pathviz_version"]
    files = set(meta["files"])
    assert "pathviz.db" in files and "models/coxpasnet/m/v0001/manifest.json" in files
    assert "models/coxpasnet/m/aliases.json" in files and "models/coxpasnet/m/aliases.log" in files
    assert any(f.startswith("slides/") for f in files) and f"derived/{sid}/analysis.json" in files
    assert not any("/." in "/" + f or f.endswith((".partial", ".tmp.npz")) for f in files)  # no writer debris
    assert set(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == files | {"backup.json"}
    assert not list(out.glob("pathviz.db-*"))  # one self-contained file

    home2 = tmp_path / "restored"
    r = restore(out, home2)
    assert r["slides_rewritten"] == 1 and r["missing_slides"] == [] and r["moved_aside"] == []
    ws2 = Workspace(Settings.from_env(home2))
    assert r["jobs_interrupted"] == 1 and JobQueue(ws2.db, ws2.home).get(queued.id).status == "interrupted"
    assert ws2.audit.verify().ok and ws2.audit.verify().rows == 1  # the audit chain came along intact
    rec2 = ws2.db.get_slide(sid)
    assert Path(rec2.path).is_relative_to(home2) and Path(rec2.path).is_file()
    assert _reviews(ws2, sid) == before
    reg1, reg2 = ModelRegistry(ws.models_dir), ModelRegistry(ws2.models_dir)
    assert [m.to_dict() for m in reg2.versions()] == [m.to_dict() for m in reg1.versions()]
    for m in reg2.versions():
        reg2.verify(m)
    assert reg2.get("coxpasnet/m").version == "v0001"  # the production alias came along
    assert reg2.alias_history("coxpasnet", "m") == reg1.alias_history("coxpasnet", "m")
    assert (ws2.derived_dir(sid) / "analysis.json").read_text() == (ws.derived_dir(sid) / "analysis.json").read_text()
    assert not list(home2.glob(".restore-*")) and not (home2 / "pathviz.db.restore-tmp").exists()
    ws2.db.add_review(sid, "haematoxylin", "g256", (0, 256, 256, 256), "agree", "dr new")  # writable as usual
    assert len(ws2.db.reviews(sid)) == 4


def test_without_slides_reports_missing_slide_files(tmp_path, planted_tiff):
    ws, sid = _workspace(tmp_path / "ws", planted_tiff)
    out = tmp_path / "b"
    s = backup(ws.home, out)
    assert [x["slide_id"] for x in s["slides_not_in_backup"]] == [sid]
    assert not any(f.startswith("slides/") for f in json.loads((out / "backup.json").read_text())["files"])
    Path(ws.db.get_slide(sid).path).unlink()  # the old workspace's slide file is gone
    r = restore(out, tmp_path / "new")
    assert r["slides_rewritten"] == 0 and [m["slide_id"] for m in r["missing_slides"]] == [sid]
    assert len(Workspace(Settings.from_env(tmp_path / "new")).db.reviews(sid)) == 3


_WRITER = """
import sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from pathviz.settings import Settings
from pathviz.store.workspace import Workspace
ws = Workspace(Settings.from_env({home!r}))
i = 0
while not Path({stop!r}).exists():
    ws.db.add_review({sid!r}, "haematoxylin", "g256", (i, 0, 256, 256), "agree", "writer", comment=str(i))
    i += 1
    if i == 20:
        print("writing", flush=True)
print(i, flush=True)
"""


def test_backup_while_another_process_writes(tmp_path, planted_tiff):
    ws, sid = _workspace(tmp_path / "ws", planted_tiff)
    with sqlite3.connect(ws.home / "pathviz.db") as con:
        con.execute("DELETE FROM reviews")
    stop = tmp_path / "stop"
    code = _WRITER.format(root=str(ROOT), home=str(ws.home), stop=str(stop), sid=sid)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        counts = []
        for k in range(3):  # several backups while rows keep arriving
            lo = _count(ws.home / "pathviz.db")
            s = backup(ws.settings, tmp_path / f"b{k}")
            hi = _count(ws.home / "pathviz.db")
            n = s["counts"]["reviews"]
            assert lo <= n <= hi, (lo, n, hi)
            copy = tmp_path / f"b{k}" / "pathviz.db"
            with sqlite3.connect(copy) as con:
                assert con.execute("PRAGMA quick_check").fetchone()[0] == "ok"
                comments = [int(c) for (c,) in con.execute("SELECT comment FROM reviews ORDER BY id")]
            assert comments == list(range(n))  # a prefix of the writer's sequence: no gap, no torn row
            counts.append(n)
            time.sleep(0.2)
    finally:
        stop.touch()
        written = int(proc.communicate(timeout=60)[0].strip().splitlines()[-1])
    assert proc.returncode == 0 and counts == sorted(counts) and counts[-1] > counts[0] and written >= counts[-1]


def _count(db: Path) -> int:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute("SELECT count(*) FROM reviews").fetchone()[0]
    finally:
        con.close()


def _tree(home: Path) -> dict:
    return {str(p.relative_to(home)): (p.read_bytes() if p.is_file() else None) for p in sorted(home.rglob("*"))}


def test_tampered_backup_is_refused_and_target_untouched(tmp_path, planted_tiff):
    ws, _ = _workspace(tmp_path / "ws", planted_tiff)
    out = tmp_path / "b"
    backup(ws.settings, out, include_slides=True)
    target = tmp_path / "target"
    target.mkdir()
    (target / "note.txt").write_text("keep")
    snapshot = _tree(target)
    weights = out / "models" / "coxpasnet" / "m" / "v0002" / "weights.pt"
    data = bytearray(weights.read_bytes())
    data[100] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(PathVizError, match="models/coxpasnet/m/v0002/weights.pt was changed"):
        restore(out, target)
    assert _tree(target) == snapshot
    weights.unlink()
    with pytest.raises(PathVizError, match="weights.pt is missing"):
        restore(out, target)
    assert _tree(target) == snapshot
    (out / "backup.json").unlink()
    with pytest.raises(PathVizError, match="not a complete PathViz backup"):
        restore(out, target)
    assert _tree(target) == snapshot


_HOLDER = """
import sys, time
sys.path.insert(0, {root!r})
from pathviz.settings import Settings
from pathviz.store.workspace import Workspace
ws = Workspace(Settings.from_env({home!r}))
ws.db.add_review({sid!r}, "haematoxylin", "g256", (9999, 0, 256, 256), "disagree", "after backup")
print("open", flush=True)
time.sleep(60)
"""


def test_existing_workspace_needs_force_and_is_kept_aside(tmp_path, planted_tiff):
    ws, sid = _workspace(tmp_path / "ws", planted_tiff)
    out = tmp_path / "b"
    backup(ws.settings, out)
    ModelRegistry(ws.models_dir).create_version("coxpasnet", "m", _writer(0.8))
    db_bytes = (ws.home / "pathviz.db").read_bytes()
    with pytest.raises(PathVizError, match="already holds data.*--force"):
        restore(out, ws.settings)
    assert (ws.home / "pathviz.db").read_bytes() == db_bytes and len(ws.db.reviews(sid)) == 3
    ws.db.engine.dispose()  # this process lets go of the database

    # a dashboard/worker process writes a review and keeps the database open: refused even with force
    code = _HOLDER.format(root=str(ROOT), home=str(ws.home), sid=sid)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "open"
        with pytest.raises(PathVizError, match="open in a running process"):
            restore(out, ws.settings, force=True)
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # killed: its last review sits in the WAL, not checkpointed
        proc.wait(timeout=10)
    assert (ws.home / "pathviz.db-wal").stat().st_size > 0

    r = restore(out, ws.settings, force=True)
    aside = [Path(p) for p in r["moved_aside"]]
    names = {p.name.split(".before-restore-")[0] for p in aside}
    assert {"pathviz.db", "models", "derived"} <= names and all(p.exists() for p in aside)
    old_db = next(p for p in aside if p.name.startswith("pathviz.db.before-restore-") and p.name[-4:] not in ("-wal", "-shm"))
    assert old_db.with_name(old_db.name + "-wal").exists()
    with sqlite3.connect(f"file:{old_db}?mode=ro", uri=True) as con:  # the old database, whole (its WAL came along)
        assert con.execute("SELECT count(*) FROM reviews").fetchone()[0] == 4
    old_models = next(p for p in aside if p.name.startswith("models.before-restore-"))
    assert len(ModelRegistry(old_models).versions()) == 3
    ws2 = Workspace(Settings.from_env(ws.home))
    assert len(ws2.db.reviews(sid)) == 3 and len(ModelRegistry(ws2.models_dir).versions()) == 2
    assert Path(ws2.db.get_slide(sid).path).is_file()  # slides/ was not in the backup and stays in place


def test_killed_backup_is_not_restorable_and_blocks_nothing(tmp_path, planted_tiff):
    ws, _ = _workspace(tmp_path / "ws", planted_tiff)
    out = tmp_path / "b1"
    code = (f"import sys, time; sys.path.insert(0, {str(ROOT)!r})\n"
            "import pathviz.store.backup as b\n"
            "orig = b._copy_tree\n"
            "def slow(*a):\n    orig(*a)\n    print('copying', flush=True)\n    time.sleep(60)\n"
            "b._copy_tree = slow\n"
            f"b.backup({str(ws.home)!r}, {str(out)!r}, include_slides=True)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "copying"
        with pytest.raises(PathVizError, match="Another backup is writing"):
            backup(ws.settings, out)  # the live writer's folder is left alone
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    partial = tmp_path / "b1.partial"
    assert partial.is_dir() and not out.exists() and (partial / "pathviz.db").is_file()
    with pytest.raises(PathVizError, match="unfinished backup"):
        restore(partial, tmp_path / "t1")
    with pytest.raises(PathVizError, match="No backup folder"):
        restore(out, tmp_path / "t1")
    assert not (tmp_path / "t1").exists()
    s = backup(ws.settings, tmp_path / "b2")  # another folder: not blocked
    assert restore(tmp_path / "b2", tmp_path / "t2")["counts"]["reviews"] == s["counts"]["reviews"] == 3
    backup(ws.settings, out)  # the same folder again: the dead writer's debris is cleared
    assert out.is_dir() and not partial.exists()


def test_refusals(tmp_path, planted_tiff):
    ws, _ = _workspace(tmp_path / "ws", planted_tiff)
    out = tmp_path / "b"
    out.mkdir()
    (out / "x").write_text("x")
    with pytest.raises(PathVizError, match="already exists and is not empty"):
        backup(ws.settings, out)
    with pytest.raises(PathVizError, match="inside"):
        backup(ws.settings, ws.models_dir / "backup")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert backup(ws.settings, empty)["counts"]["reviews"] == 3  # an existing empty folder is fine
    pg = Settings(home=ws.home, database_url="postgresql://admin:secret@db.example/pathviz")
    with pytest.raises(PathVizError, match="pg_dump") as exc:
        backup(pg, tmp_path / "pg")
    assert "secret" not in str(exc.value) and not (tmp_path / "pg").exists()
    with pytest.raises(PathVizError, match="pg_dump"):
        restore(empty, pg)
    with pytest.raises(PathVizError, match="no workspace database"):
        backup(tmp_path / "nohome", tmp_path / "b3")
    assert not (tmp_path / "b3").exists() and not (tmp_path / "b3.partial").exists()


def test_cli_handlers(tmp_path, planted_tiff, monkeypatch, capsys):
    ws, sid = _workspace(tmp_path / "ws", planted_tiff)
    parser = argparse.ArgumentParser(prog="pathviz")
    add_cli(parser.add_subparsers(dest="command", required=True))
    monkeypatch.setenv("PATHVIZ_HOME", str(ws.home))
    out = tmp_path / "b"
    args = parser.parse_args(["backup", str(out), "--with-slides", "--json"])
    assert args.func(args) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["out"] == str(out) and payload["slides_included"] and payload["counts"]["reviews"] == 3

    monkeypatch.setenv("PATHVIZ_HOME", str(tmp_path / "new"))
    args = parser.parse_args(["restore", str(out)])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "3 reviews" in text and "1 slide paths re-pointed" in text
    args = parser.parse_args(["restore", str(out), "--json"])
    with pytest.raises(PathVizError, match="--force"):
        args.func(args)
    args = parser.parse_args(["restore", str(out), "--force", "--json"])
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out)["moved_aside"]
    args = parser.parse_args(["backup", str(tmp_path / "plain")])
    assert args.func(args) == 0 and "backup written to" in capsys.readouterr().out
