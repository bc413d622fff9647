"""The workspace database under concurrency, corruption and read-only files (pathviz.store.db).

Every failure must be a WorkspaceError naming the file and a fix, never a raw sqlite3 traceback,
and a damaged file must never be written to. Writers run as plain subprocesses (not
multiprocessing.Pool), all released at once by a start file.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pathviz.errors import WorkspaceError
from pathviz.store.db import Database
from pathviz.store.models import SlideRecord

ROOT = Path(__file__).resolve().parents[2]


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def _slide(slide_id: str = "s1") -> SlideRecord:
    return SlideRecord(slide_id=slide_id, name=f"{slide_id}.svs", path=f"/slides/{slide_id}.svs", declared_mpp=None,
                       mpp=0.5, width=1000, height=800, vendor="aperio")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _spawn(script: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *args], cwd=str(ROOT), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_all(procs, timeout: float = 300.0) -> list[tuple[int, str, str]]:
    out = []
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            so, se = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for q in procs:
                if q.poll() is None:
                    q.kill()
            pytest.fail("a subprocess hung (database lock never released?)")
        out.append((p.returncode, so, se))
    return out


_WAIT_GO = """
import os, sys, time
go = sys.argv[2]
while not os.path.exists(go):
    time.sleep(0.005)
"""


def _valid_db(path: Path, n_reviews: int = 400) -> None:
    """A valid workspace database with one slide and ``n_reviews`` reviews, checkpointed into the file."""
    db = Database(_url(path))
    db.add_slide(_slide())

    from pathviz.store.models import Review

    with db.session() as s:  # plain session: the setup works on any version of Database
        for i in range(n_reviews):
            s.add(Review(slide_id="s1", layer="he", grid_key="g", x=i, y=i, width=256, height=256, score=0.5,
                         verdict="agree", comment="x" * 40, reviewer="ann"))
        s.commit()
    db.engine.dispose()  # last connection closes: the WAL is checkpointed into the main file
    for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        assert not extra.exists() or extra.stat().st_size == 0 or extra.name.endswith("-shm")


# -- concurrency --------------------------------------------------------------------------------
def test_eight_writer_processes_lose_no_review(tmp_path):
    """8 processes x 200 add_review on one workspace: 0 errors, 1,600 rows."""
    dbfile = tmp_path / "pathviz.db"
    Database(_url(dbfile)).add_slide(_slide())
    go = tmp_path / "go"
    script = _WAIT_GO + """
from pathviz.store.db import Database
db = Database(sys.argv[1])
errors = 0
for i in range(200):
    try:
        db.add_review("s1", "he", "g", (i, i, 256, 256), "agree", "r%d" % os.getpid(), score=0.5)
    except Exception as exc:
        errors += 1
        print(type(exc).__name__, exc, file=sys.stderr)
print(errors)
sys.exit(1 if errors else 0)
"""
    procs = [_spawn(script, _url(dbfile), str(go)) for _ in range(8)]
    time.sleep(1.0)
    go.touch()
    results = _wait_all(procs)
    failures = [(rc, se[-2000:]) for rc, _, se in results if rc != 0]
    assert not failures, failures
    con = sqlite3.connect(dbfile)
    try:
        assert con.execute("SELECT count(*) FROM reviews").fetchone()[0] == 1600
    finally:
        con.close()


def test_forty_processes_open_a_fresh_workspace_at_once(tmp_path):
    """40 processes opening a non-existent database together: all succeed, the schema exists once."""
    dbfile = tmp_path / "fresh" / "pathviz.db"
    dbfile.parent.mkdir()
    go = tmp_path / "go"
    script = _WAIT_GO + """
from pathviz.store.db import Database
db = Database(sys.argv[1])
print(len(db.slides()))
"""
    procs = [_spawn(script, _url(dbfile), str(go)) for _ in range(40)]
    time.sleep(1.5)
    go.touch()
    results = _wait_all(procs)
    failures = [(rc, se[-1500:]) for rc, _, se in results if rc != 0]
    assert not failures, f"{len(failures)} of 40 failed: {failures[:3]}"
    con = sqlite3.connect(dbfile)
    try:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    finally:
        con.close()
    assert sorted(names) == sorted(set(names))
    assert {"slides", "reviews"} <= set(names)


# -- damaged files ------------------------------------------------------------------------------
def test_random_bytes_file_is_refused_and_untouched(tmp_path):
    dbfile = tmp_path / "pathviz.db"
    dbfile.write_bytes(os.urandom(64 * 1024))
    before = _sha(dbfile)
    with pytest.raises(WorkspaceError) as err:
        Database(_url(dbfile))
    msg = str(err.value)
    assert str(dbfile) in msg and err.value.path == str(dbfile)
    assert "backup" in msg and "move it aside" in msg
    assert _sha(dbfile) == before


def test_half_corrupt_database_is_refused_and_untouched(tmp_path):
    """A valid database with garbage written over the middle of its table pages."""
    dbfile = tmp_path / "pathviz.db"
    _valid_db(dbfile)
    data = bytearray(dbfile.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 65536
    n_pages = len(data) // page
    assert n_pages >= 6, n_pages
    mid = (n_pages // 2) * page
    data[mid: mid + page // 2] = b"\xa5" * (page // 2)  # b-tree page header + cell pointers of a middle page
    dbfile.write_bytes(bytes(data))
    before = _sha(dbfile)
    refused = False
    try:
        db = Database(_url(dbfile))
    except WorkspaceError as exc:
        refused = True
        assert str(dbfile) in str(exc) and "backup" in str(exc)
    else:
        with pytest.raises(WorkspaceError):
            db.add_review("s1", "he", "g", (1, 2, 3, 4), "agree", "bob")
        db.engine.dispose()
    assert _sha(dbfile) == before
    assert refused  # today quick_check refuses it at open; the else branch covers a subtler corruption


def test_truncated_database_is_refused_and_untouched(tmp_path):
    dbfile = tmp_path / "pathviz.db"
    _valid_db(dbfile)
    data = dbfile.read_bytes()
    dbfile.write_bytes(data[: len(data) // 2])
    before = _sha(dbfile)
    with pytest.raises(WorkspaceError) as err:
        Database(_url(dbfile))
    assert str(dbfile) in str(err.value)
    assert _sha(dbfile) == before


# -- read-only ----------------------------------------------------------------------------------
def test_read_only_file_and_folder_refuse_writes_clearly(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("running as root: root ignores file permissions, so chmod cannot make the database read-only")
    folder = tmp_path / "ro"
    folder.mkdir()
    dbfile = folder / "pathviz.db"
    _valid_db(dbfile, n_reviews=3)
    for extra in folder.glob("pathviz.db-*"):
        extra.unlink()
    dbfile.chmod(stat.S_IRUSR | stat.S_IRGRP)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        try:
            db = Database(_url(dbfile))
        except WorkspaceError as exc:  # allowed: a WAL file that cannot be opened read-only is refused clearly
            assert str(dbfile) in str(exc)
            return
        assert db.read_only
        with pytest.raises(WorkspaceError) as err:
            db.add_review("s1", "he", "g", (1, 2, 3, 4), "agree", "bob")
        assert str(dbfile) in str(err.value) and "read-only" in str(err.value)
    finally:
        folder.chmod(stat.S_IRWXU)
        dbfile.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_read_only_uri_reads_work_and_writes_refused(tmp_path):
    """A ``mode=ro`` URI (works as root too): reads work, writes raise a read-only WorkspaceError."""
    dbfile = tmp_path / "pathviz.db"
    _valid_db(dbfile, n_reviews=3)
    before = _sha(dbfile)
    db = Database(f"sqlite:///file:{dbfile}?mode=ro&uri=true")
    assert [s.slide_id for s in db.slides()] == ["s1"]
    assert len(db.reviews("s1")) == 3
    with pytest.raises(WorkspaceError) as err:
        db.add_review("s1", "he", "g", (1, 2, 3, 4), "agree", "bob")
    assert str(dbfile) in str(err.value) and "read-only" in str(err.value)
    with pytest.raises(WorkspaceError):
        db.add_slide(_slide("s2"))
    db.engine.dispose()
    assert _sha(dbfile) == before


def test_raw_operational_error_becomes_workspace_error(tmp_path):
    """A SQLite error in a write (here: a table dropped behind the Database's back) is translated."""
    dbfile = tmp_path / "pathviz.db"
    db = Database(_url(dbfile))
    db.add_slide(_slide())
    con = sqlite3.connect(dbfile)
    con.execute("DROP TABLE reviews")
    con.commit()
    con.close()
    with pytest.raises(WorkspaceError) as err:
        db.add_review("s1", "he", "g", (1, 2, 3, 4), "agree", "bob")
    assert str(dbfile) in str(err.value)
    with pytest.raises(WorkspaceError):
        db.reviews("s1")


def test_write_helper_retries_when_locked(tmp_path):
    """Database.write: BEGIN IMMEDIATE waits for a writer holding the lock, then commits."""
    import threading

    dbfile = tmp_path / "pathviz.db"
    db = Database(_url(dbfile))
    db.add_slide(_slide())
    holder = sqlite3.connect(dbfile, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    threading.Timer(0.5, lambda: (holder.execute("COMMIT"), holder.close())).start()
    t0 = time.monotonic()
    db.write(lambda s: s.add(_slide("s2")))
    assert time.monotonic() - t0 >= 0.4
    assert [s.slide_id for s in db.slides()] == ["s1", "s2"]


_RMW = _WAIT_GO + """
import pathviz.store.db as dbmod
if len(sys.argv) > 3 and sys.argv[3] == "deferred":  # control run: what BEGIN IMMEDIATE prevents
    dbmod._sqlite_begin = lambda conn: conn.exec_driver_sql("BEGIN")
from sqlalchemy import func, select
from pathviz.store.models import Review
db = dbmod.Database(sys.argv[1])

def next_x(s):
    top = s.scalar(select(func.max(Review.x))) or 0
    s.add(Review(slide_id="s1", layer="he", grid_key="g", x=top + 1, y=0, width=1, height=1, score=None,
                 verdict="agree", comment="", reviewer="rmw"))
    return top + 1

errors = 0
for _ in range(100):
    try:
        db.write(next_x)
    except Exception as exc:
        errors += 1
        print(type(exc).__name__, str(exc)[:200], file=sys.stderr)
sys.exit(1 if errors else 0)
"""


def test_read_modify_write_transactions_are_serialized(tmp_path):
    """4 processes x 100 Database.write(read max(x), insert max+1): BEGIN IMMEDIATE takes the write
    lock before the read, so every transaction sees the previous one's row: x = 1..400, no
    duplicates, no errors (deferred BEGIN gives SQLITE_BUSY 'database is locked' or duplicates)."""
    dbfile = tmp_path / "pathviz.db"
    Database(_url(dbfile)).add_slide(_slide())
    go = tmp_path / "go"
    procs = [_spawn(_RMW, _url(dbfile), str(go)) for _ in range(4)]
    time.sleep(1.0)
    go.touch()
    results = _wait_all(procs)
    failures = [(rc, se[-1500:]) for rc, _, se in results if rc != 0]
    assert not failures, failures
    con = sqlite3.connect(dbfile)
    try:
        xs = sorted(r[0] for r in con.execute("SELECT x FROM reviews WHERE reviewer='rmw'"))
    finally:
        con.close()
    assert xs == list(range(1, 401))
