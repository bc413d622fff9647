"""The audit log (trust issue, item 2): every sensitive action leaves a row naming the user; the
rows are hash-chained, SQLite refuses to change them, and `pathviz audit verify` detects an edit,
a deletion or a reordering made behind PathViz's back. Also: the schema is owned by Alembic
migrations, and a database made before them is upgraded in place with its rows."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import sys
from pathlib import Path

import pytest

from conftest import TEST_PASSWORD, login_token, make_user
from pathviz.auth.audit import AuditLog, entry_hash
from pathviz.auth.policy import operator
from pathviz.cli import main
from pathviz.settings import Settings
from pathviz.store.db import Database
from pathviz.store.workspace import Workspace

OP = operator()


def _db_file(ws) -> Path:
    return ws.settings.home / "pathviz.db"


def test_rows_are_chained_and_updates_and_deletes_are_refused(ws):
    for i in range(5):
        ws.audit.record(OP, "test.event", "thing", i, {"n": i})
    rep = ws.audit.verify()
    assert rep.ok and rep.rows == 5
    con = sqlite3.connect(_db_file(ws))
    rows = con.execute("SELECT prev_hash, hash, at, username, roles, action, object_type, object_id, details FROM audit_log "
                       "ORDER BY id").fetchall()
    assert rows[0][0] == "0" * 64 and all(rows[i][0] == rows[i - 1][1] for i in range(1, 5))
    assert all(entry_hash(r[0], *r[2:]) == r[1] for r in rows)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE audit_log SET username='someone' WHERE id=2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("DELETE FROM audit_log WHERE id=2")


@pytest.mark.parametrize("tamper, bad_id, word", [
    ("UPDATE audit_log SET details='{\"n\":99}' WHERE id=3", 3, "edited"),
    ("DELETE FROM audit_log WHERE id=3", 4, "deleted"),
    ("UPDATE audit_log SET id=id+100 WHERE id=2", 3, "deleted"),  # row 2 moved to the end: reordered
])
def test_tampering_behind_pathviz_is_detected(ws, capsys, tamper, bad_id, word):
    for i in range(5):
        ws.audit.record(OP, "test.event", "thing", i, {"n": i})
    con = sqlite3.connect(_db_file(ws))
    con.executescript("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")  # an attacker with the file
    con.execute(tamper)
    con.commit()
    rep = AuditLog(ws.db).verify()
    assert not rep.ok and rep.first_bad_id == bad_id and word in rep.reason
    assert main(["audit", "verify"]) == 1
    assert f"BROKEN at row {bad_id}" in capsys.readouterr().out


def _append(home: str, n: int, who: str) -> None:
    ws = Workspace(Settings.from_env(home))
    for i in range(n):
        ws.audit.record(who, "test.concurrent", "n", i)


def test_concurrent_writers_keep_one_chain(ws):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append, args=(str(ws.home), 40, f"w{k}")) for k in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)  # each child imports the package first: slow on a loaded 2-core machine
        assert p.exitcode == 0, f"writer exit code {p.exitcode}"
    rep = ws.audit.verify()
    assert rep.ok and rep.rows == 8 * 40


def test_actions_are_audited_with_the_logged_in_user(demo_ws):
    token = login_token(demo_ws, "pat", ("pathologist",))
    pat = demo_ws.accounts.session_actor(token)
    sid = demo_ws.slides()[0].slide_id
    demo_ws.save_review(pat, sid, "haematoxylin", demo_ws.grid(sid).key, (0, 0, 256, 256), "agree", "gland, see =1+1")
    demo_ws.record_export(pat, sid, "csv", 20)
    demo_ws.accounts.logout(token)
    assert demo_ws.db.reviews(sid)[-1].reviewer == "pat"
    rows = demo_ws.audit.search(OP, username="pat")
    assert [r["action"] for r in rows] == ["logout", "export.downloaded", "review.saved", "login"]
    review = rows[2]
    assert review["object_id"] == sid and '"verdict":"agree"' in review["details"]
    assert "gland" not in review["details"]  # free text (possible identifiers) stays out of the log
    assert demo_ws.audit.verify().ok


def test_pre_migration_database_is_upgraded_with_its_rows(tmp_path):
    """A workspace database created before Alembic (PathViz's old create_all schema) is stamped at
    the baseline and upgraded; its slides, reviews and jobs stay."""
    db_file = tmp_path / "old.db"
    con = sqlite3.connect(db_file)
    con.executescript(OLD_SCHEMA)
    con.execute("INSERT INTO slides VALUES ('s1','a.svs','/x/a.svs',NULL,0.5,100,100,'aperio','user','2026-01-01 00:00:00')")
    con.execute("INSERT INTO reviews (slide_id,layer,grid_key,x,y,width,height,score,verdict,comment,reviewer,created_at) "
                "VALUES ('s1','h','g',0,0,1,1,0.5,'agree','','ana','2026-01-01 00:00:00')")
    con.commit()
    con.close()
    db = Database(f"sqlite:///{db_file}")
    assert [s.slide_id for s in db.slides()] == ["s1"] and db.reviews("s1")[0].reviewer == "ana"
    con = sqlite3.connect(db_file)
    from pathviz.store.migrations import HEAD

    assert con.execute("SELECT version_num FROM alembic_version").fetchone()[0] == HEAD
    assert {"users", "auth_sessions", "audit_log"} <= {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    assert con.execute("SELECT added_by, content_sha256 FROM slides").fetchone() == ("", None)


def test_migrations_match_the_models(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from pathviz.store.models import Base

    db = Database(f"sqlite:///{tmp_path / 'new.db'}")
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


OLD_SCHEMA = """
CREATE TABLE jobs (id INTEGER NOT NULL, kind VARCHAR(64) NOT NULL, params TEXT NOT NULL, status VARCHAR(16) NOT NULL,
 progress FLOAT NOT NULL, message TEXT NOT NULL, device VARCHAR(32) NOT NULL, timeout_s FLOAT, cancel_requested INTEGER NOT NULL,
 worker_host VARCHAR(255), worker_pid INTEGER, job_pid INTEGER, result TEXT, error TEXT, log_path TEXT,
 submitted_by VARCHAR(128) NOT NULL, created_at DATETIME NOT NULL, started_at DATETIME, finished_at DATETIME,
 PRIMARY KEY (id), CONSTRAINT job_status_values CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted')));
CREATE INDEX ix_jobs_kind ON jobs (kind);
CREATE INDEX ix_jobs_status ON jobs (status);
CREATE TABLE slides (slide_id VARCHAR(64) NOT NULL, name VARCHAR(255) NOT NULL, path TEXT NOT NULL, declared_mpp FLOAT,
 mpp FLOAT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL, vendor VARCHAR(64) NOT NULL, source VARCHAR(16) NOT NULL,
 added_at DATETIME NOT NULL, PRIMARY KEY (slide_id), UNIQUE (path));
CREATE TABLE reviews (id INTEGER NOT NULL, slide_id VARCHAR(64) NOT NULL, layer VARCHAR(64) NOT NULL, grid_key VARCHAR(64) NOT NULL,
 x INTEGER NOT NULL, y INTEGER NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL, score FLOAT, verdict VARCHAR(16) NOT NULL,
 comment TEXT NOT NULL, reviewer VARCHAR(128) NOT NULL, created_at DATETIME NOT NULL, PRIMARY KEY (id),
 CONSTRAINT verdict_values CHECK (verdict IN ('agree', 'disagree')), FOREIGN KEY(slide_id) REFERENCES slides (slide_id));
CREATE INDEX ix_reviews_slide_id ON reviews (slide_id);
"""
