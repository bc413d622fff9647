"""Database access: one :class:`Database` per workspace, short transactions, no lost rows.

Concurrency and failure model (SQLite workspaces):

* Every connection sets ``PRAGMA busy_timeout=30000`` (ms; besides pysqlite's ``timeout=30`` s),
  ``PRAGMA foreign_keys=ON`` and ``PRAGMA journal_mode=WAL``: readers never block the single writer
  and a waiting writer sleeps up to 30 s for the lock instead of failing at once
  (https://www.sqlite.org/wal.html, https://www.sqlite.org/pragma.html#pragma_busy_timeout).
* pysqlite's own implicit ``BEGIN`` is disabled (SQLAlchemy pysqlite recipe "Serializable isolation /
  Savepoints / Transactional DDL") and SQLAlchemy emits the ``BEGIN`` itself: a plain ``BEGIN``
  (deferred) for reads and ``BEGIN IMMEDIATE`` for writes made through :meth:`Database.write`,
  :meth:`Database.add_slide` and :meth:`Database.add_review`. A deferred transaction that reads and
  then writes can fail with SQLITE_BUSY without waiting (the busy handler is not called when a
  read snapshot must be upgraded); ``BEGIN IMMEDIATE`` takes the write lock first, waiting under
  the busy timeout (https://www.sqlite.org/lang_transaction.html).
* Writes are retried (:data:`WRITE_ATTEMPTS` attempts, jittered exponential backoff) when SQLite
  still says "database is locked"/"busy"; each attempt is a fresh transaction, so a retry never
  doubles a row.
* Schema creation and upgrades (Alembic migrations, :mod:`pathviz.store.migrations`) run under an exclusive ``fcntl.flock`` on
  ``<db file>.lock`` next to the database, so many processes opening a fresh workspace at once
  create the tables exactly once.
* At open, an existing file must start with the SQLite header and pass ``PRAGMA quick_check``
  (run on a ``mode=ro`` connection, so a damaged file is never written to); otherwise
  :class:`~pathviz.errors.WorkspaceError` names the file and the fix.
* Read-only databases (the file or its folder is not writable, or a ``mode=ro`` URI): the
  workspace opens and reads work when the schema is already there; any write raises
  :class:`~pathviz.errors.WorkspaceError` saying the file is read-only (checked before SQLite is
  touched; SQLite's own "attempt to write a readonly database" is translated the same way).
* Any other ``sqlalchemy.exc.OperationalError``/``DatabaseError`` escaping a :class:`Database`
  method becomes a :class:`~pathviz.errors.WorkspaceError` with the file and a fix. Sessions
  handed out by :meth:`Database.session` are the caller's: their errors are not translated (use
  :meth:`Database.write` for writes).
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import time
import weakref
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator, TypeVar
from urllib.parse import quote

from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, make_transient, sessionmaker

from pathviz.errors import unknown_fix, PathVizError, WorkspaceError
from pathviz.store.models import Review, SlideRecord

VERDICTS = ("agree", "disagree")

#: Attempts for one write when SQLite reports "database is locked"/"busy" after its busy timeout.
WRITE_ATTEMPTS = 5
#: First backoff between attempts, seconds (doubles each time, times a random factor in [0.5, 1.5]).
WRITE_BACKOFF_S = 0.05
#: SQLite busy timeout, milliseconds (PRAGMA busy_timeout), and pysqlite's connect timeout, seconds.
BUSY_TIMEOUT_MS = 30000
#: No new attempt starts once this many seconds have passed since the first: an attempt that
#: waited out the whole busy timeout means the lock is stuck, not contended (worst case ~60 s).
RETRY_WINDOW_S = BUSY_TIMEOUT_MS / 1000.0

_SQLITE_HEADER = b"SQLite format 3\x00"
#: Database files this process has checked already. The check reads the file with a plain
#: ``open()``, and closing any descriptor of a file drops every POSIX lock the process holds on it,
#: including SQLite's own locks of connections already open here (https://www.sqlite.org/howtocorrupt.html,
#: section 2.2): so a file is checked once per process, before this process has connections to it.
_CHECKED: set[str] = set()
#: The open Database objects of this process by URL (weak: dropping a Database forgets it).
_LIVE: "weakref.WeakValueDictionary[str, Database]" = weakref.WeakValueDictionary()
_RESTORE_FIX = "restore the file from a backup copy, or move it aside to start an empty workspace."
_WRITE_OPTION = "pathviz_write"

T = TypeVar("T")


class Database:
    """The workspace database.

    Args:
        url: SQLAlchemy URL, e.g. ``sqlite:////abs/path/pathviz.db``.

    Tables are created on first use. SQLite runs in WAL mode with foreign keys on, so the
    dashboard and the CLI can read while one writes (see the module docstring for locking,
    retries, corruption and read-only handling).

    Attributes:
        path: the SQLite database file (None for other backends or an in-memory database).
        read_only: True when the file (or its folder) cannot be written; writes then raise
            WorkspaceError.

    Raises:
        WorkspaceError: the file is not a SQLite database or is corrupt (nothing is written to
            it), the folder is missing, or the schema is missing and cannot be created
            (read-only); any other database error while opening.
    """

    def __init__(self, url: str):
        self.url = url
        self.path: Path | None = _sqlite_file(url)
        self._sqlite = url.startswith("sqlite")
        self.read_only = False
        connect_args = {"timeout": BUSY_TIMEOUT_MS / 1000.0} if self._sqlite else {}
        with self._schema_lock():
            if self.path is not None:
                self.read_only = _read_only(url, self.path)
                key = str(self.path.resolve()) if self.path.exists() else None
                if key is None or key not in _CHECKED:
                    _check_file(self.path)
                    if key is not None:
                        _CHECKED.add(key)
            self.engine = create_engine(url, future=True, connect_args=connect_args)
            if self._sqlite:
                event.listen(self.engine, "connect", _sqlite_pragmas)
                event.listen(self.engine, "begin", _sqlite_begin)
            try:
                self._migrate()
            except (OperationalError, DatabaseError) as exc:
                self.engine.dispose()
                raise self._translate(exc, "open") from exc
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        _LIVE[url] = self
        self._write_engine = self.engine.execution_options(**{_WRITE_OPTION: True})
        self._write_session = sessionmaker(self._write_engine, expire_on_commit=False)

    def _migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (:mod:`pathviz.store.migrations`);
        called under the schema lock. A read-only database must already be at it."""
        from pathviz.store.migrations import HEAD, current_revision, upgrade_to_head

        with self.engine.connect() as conn:
            rev = current_revision(conn)
            conn.rollback()
        if rev == HEAD:
            return
        if self.read_only:
            where = self._where()
            raise WorkspaceError(
                f"The workspace database {where} has schema revision {rev or 'none'} and needs upgrading to {HEAD}, "
                "but it is read-only.", "open it once with write access (any pathviz command) to upgrade it.", where)
        with self.engine.execution_options(**{_WRITE_OPTION: True}).begin() as conn:
            upgrade_to_head(conn)

    @staticmethod
    def live(url: str) -> "Database | None":
        """A :class:`Database` of ``url`` this process has open (the newest), or None: code that only
        needs to read a table should use it rather than open a second engine on the same file."""
        return _LIVE.get(url)

    def session(self) -> Session:
        """A plain session (deferred transactions). Errors are not translated; write with :meth:`write`."""
        return self._session()

    # -- generic write / read -----------------------------------------------------------------
    def write(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` in one write transaction (``BEGIN IMMEDIATE``) and commit it.

        ``fn`` may run more than once (up to :data:`WRITE_ATTEMPTS` times within
        :data:`RETRY_WINDOW_S` seconds, each in a fresh
        transaction after a rollback) when SQLite reports "database is locked"/"busy", so it must
        build its rows inside and have no other side effects. Returns what ``fn`` returns.

        Raises:
            WorkspaceError: the database is read-only, still locked after every attempt, corrupt,
                or any other database error. IntegrityError and errors ``fn`` raises itself pass
                through unchanged.
        """
        if self.read_only:
            raise self._read_only_error()
        return self._retrying(self._write_session, fn, commit=True, what="write")

    def _read(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` in a read transaction; retried like :meth:`write` when locked."""
        return self._retrying(self._session, fn, commit=False, what="read")

    def _retrying(self, open_session: Callable[[], Session], fn: Callable[[Session], T], commit: bool, what: str) -> T:
        """``fn(session)`` in a fresh session, retried with jittered exponential backoff while SQLite
        reports "locked"/"busy" (at most :data:`WRITE_ATTEMPTS` tries within :data:`RETRY_WINDOW_S`);
        other database errors become WorkspaceError; IntegrityError passes through."""
        delay, t0 = WRITE_BACKOFF_S, time.monotonic()
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with open_session() as s:
                    out = fn(s)
                    if commit:
                        s.commit()
                    return out
            except IntegrityError:
                raise
            except (OperationalError, DatabaseError) as exc:
                if _is_locked(exc) and attempt < WRITE_ATTEMPTS and time.monotonic() - t0 < RETRY_WINDOW_S:
                    time.sleep(delay * random.uniform(0.5, 1.5))
                    delay *= 2
                    continue
                raise self._translate(exc, what) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # -- errors -------------------------------------------------------------------------------
    def _where(self) -> str:
        return str(self.path) if self.path is not None else self.url

    def _read_only_error(self) -> WorkspaceError:
        where = self._where()
        return WorkspaceError(
            f"The workspace database {where} is read-only; the change was not saved.",
            "make the file and its folder writable (or point PATHVIZ_HOME / PATHVIZ_DATABASE_URL at a writable "
            "workspace); reading still works.",
            where,
        )

    def _translate(self, exc: Exception, action: str) -> WorkspaceError:
        """Turn a raw SQLAlchemy/SQLite error into a WorkspaceError naming the file and a fix."""
        text = str(getattr(exc, "orig", None) or exc).strip()
        low = text.lower()
        where = self._where()
        if "readonly" in low or "read-only" in low or "read only" in low:
            return self._read_only_error()
        if _is_locked(exc):
            return WorkspaceError(
                f"The workspace database {where} stayed locked by another process ({text}); the {action} did not happen.",
                "wait for running jobs or other PathViz processes to finish and try again.",
                where,
            )
        if "not a database" in low or "malformed" in low or "corrupt" in low:
            return WorkspaceError(f"The workspace database {where} is corrupt ({text}).", _RESTORE_FIX, where)
        if "unable to open" in low:
            return WorkspaceError(
                f"Cannot open the workspace database {where} ({text}).",
                "check that its folder exists and is readable/writable (PATHVIZ_HOME, PATHVIZ_DATABASE_URL).",
                where,
            )
        if "disk" in low and ("full" in low or "i/o" in low):
            return WorkspaceError(f"The workspace database {where} could not be written ({text}).",
                                  "free disk space or check the disk, then try again.", where)
        return WorkspaceError(
            f"Database error on the workspace database {where} during {action} ({text}).",
            "try again; if it persists, " + _RESTORE_FIX,
            where,
        )

    @contextlib.contextmanager
    def _schema_lock(self) -> Iterator[None]:
        """Exclusive ``fcntl.flock`` on ``<db file>.lock`` (SQLite files only; skipped where the
        folder cannot hold the lock file, e.g. read-only, or fcntl is missing)."""
        if self.path is None:
            yield
            return
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            yield
            return
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            fh = open(lock_path, "a+b")
        except OSError:
            yield  # read-only or missing folder: the open below reports what is wrong
            return
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            yield
        finally:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            finally:
                fh.close()

    # -- slides ---------------------------------------------------------------------------
    def add_slide(self, record: SlideRecord) -> SlideRecord:
        """Insert a slide row (one ``BEGIN IMMEDIATE`` write, retried when locked).

        Raises:
            WorkspaceError: the id or path is already registered; the database is read-only,
                locked past every retry, or broken.
        """

        def insert(s: Session) -> SlideRecord:
            from sqlalchemy import inspect as sa_inspect

            if sa_inspect(record).detached:  # an earlier attempt was rolled back
                make_transient(record)
            s.add(record)
            s.flush()
            return record

        try:
            return self.write(insert)
        except IntegrityError as exc:
            raise WorkspaceError(
                f"Slide {record.slide_id!r} ({record.path}) is already registered.",
                "open the existing slide, or remove it first.",
                record.path,
            ) from exc

    def slides(self) -> list[SlideRecord]:
        """All registered slides, oldest first."""
        return self._read(lambda s: list(s.scalars(select(SlideRecord).order_by(SlideRecord.added_at, SlideRecord.slide_id))))

    def get_slide(self, slide_id: str) -> SlideRecord:
        """One slide by id. Raises WorkspaceError suggesting the closest known ids (never all) if absent."""
        rec = self._read(lambda s: s.get(SlideRecord, slide_id))
        if rec is None:
            raise WorkspaceError(f"No slide with id {slide_id!r} in the workspace.",
                                 unknown_fix("slides", slide_id, [r.slide_id for r in self.slides()], "pathviz slide list"))
        return rec

    def find_slide_by_path(self, path: str) -> SlideRecord | None:
        return self._read(lambda s: s.scalars(select(SlideRecord).where(SlideRecord.path == path)).first())

    def find_slide_by_hash(self, sha256: str | None) -> SlideRecord | None:
        """The oldest slide whose ``content_sha256`` (hex SHA-256 of the file's bytes) is ``sha256``,
        or None; rows without a recorded hash (NULL) never match, nor does an empty ``sha256``."""
        if not sha256:
            return None
        return self._read(lambda s: s.scalars(
            select(SlideRecord).where(SlideRecord.content_sha256 == sha256)
            .order_by(SlideRecord.added_at, SlideRecord.slide_id)).first())

    # -- reviews --------------------------------------------------------------------------
    def add_review(
        self,
        slide_id: str,
        layer: str,
        grid_key: str,
        rect: tuple[int, int, int, int],
        verdict: str | None,
        reviewer: str,
        comment: str = "",
        score: float | None = None,
    ) -> Review:
        """Record a verdict on a patch (one ``BEGIN IMMEDIATE`` write, retried when locked).

        Args:
            slide_id: registered slide.
            layer: name of the layer that flagged the patch.
            grid_key: the tile grid (``TileGrid.key``).
            rect: level-0 ``(x, y, width, height)`` of the patch, pixels.
            verdict: ``"agree"`` or ``"disagree"`` (None, no verdict chosen, is refused).
            reviewer: who reviews (non-empty).
            comment: free text.
            score: the layer's score for the patch.

        Raises:
            PathVizError: empty reviewer (checked first), no or invalid verdict; WorkspaceError: unknown
            slide, read-only database, locked past every retry, broken database.
        """
        if not reviewer or not reviewer.strip():
            raise PathVizError("A review needs a reviewer name.", "enter your name in the reviewer field.")
        if verdict is None:
            raise PathVizError("No verdict chosen.", "choose agree or disagree.")
        if verdict not in VERDICTS:
            raise PathVizError(f"Verdict {verdict!r} is not one of {VERDICTS}.", "choose agree or disagree.")
        self.get_slide(slide_id)
        x, y, w, h = (int(v) for v in rect)

        def insert(s: Session) -> Review:
            row = Review(  # built per attempt: a rolled-back attempt leaves nothing behind
                slide_id=slide_id,
                layer=layer,
                grid_key=grid_key,
                x=x,
                y=y,
                width=w,
                height=h,
                score=None if score is None else float(score),
                verdict=verdict,
                comment=comment or "",
                reviewer=reviewer.strip(),
            )
            s.add(row)
            s.flush()
            return row

        return self.write(insert)

    def reviews(self, slide_id: str, layer: str | None = None) -> list[Review]:
        """All reviews of a slide (optionally of one layer), oldest first."""
        q = select(Review).where(Review.slide_id == slide_id)
        if layer is not None:
            q = q.where(Review.layer == layer)
        q = q.order_by(Review.created_at, Review.id)
        return self._read(lambda s: list(s.scalars(q)))

    def latest_reviews(self, slide_id: str, layer: str | None = None) -> dict[tuple[int, int, int, int], list[Review]]:
        """Latest review per (patch rectangle, reviewer), grouped by rectangle."""
        latest: dict[tuple[tuple[int, int, int, int], str], Review] = {}
        for r in self.reviews(slide_id, layer):
            latest[((r.x, r.y, r.width, r.height), r.reviewer)] = r
        grouped: dict[tuple[int, int, int, int], list[Review]] = {}
        for (rect, _), r in latest.items():
            grouped.setdefault(rect, []).append(r)
        return grouped


# -- SQLite helpers ---------------------------------------------------------------------------
def _sqlite_pragmas(dbapi_conn, _record) -> None:
    """Per connection: let SQLAlchemy emit BEGIN (pysqlite's implicit BEGIN off), busy timeout
    (ms), foreign keys, WAL. journal_mode is left as it is on a read-only file."""
    dbapi_conn.isolation_level = None  # SQLAlchemy pysqlite recipe: disable pysqlite's own BEGIN
    cur = dbapi_conn.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        try:
            cur.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "readonly" not in str(exc).lower():
                raise
    finally:
        cur.close()


def _sqlite_begin(conn) -> None:
    """SQLAlchemy ``begin`` event: ``BEGIN IMMEDIATE`` for write sessions, plain ``BEGIN`` otherwise."""
    if conn.get_execution_options().get(_WRITE_OPTION):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def _is_locked(exc: BaseException) -> bool:
    text = str(getattr(exc, "orig", None) or exc).lower()
    return "database is locked" in text or "database is busy" in text or "database table is locked" in text


def _sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None for other backends and in-memory databases)."""
    if not url.startswith("sqlite"):
        return None
    u = make_url(url)
    db = u.database or ""
    if str(u.query.get("uri", "")).lower() in ("true", "1") or db.startswith("file:"):
        db = db[len("file:"):] if db.startswith("file:") else db
        db = db.split("?", 1)[0]
        if "mode=memory" in (u.database or ""):
            return None
    if not db or db == ":memory:":
        return None
    return Path(db).expanduser().absolute()


def _read_only(url: str, path: Path) -> bool:
    """True for a ``mode=ro`` URI, a file that is not writable, or (fresh or WAL) a folder that
    is not writable. Root passes os.access checks except on read-only mounts."""
    if "mode=ro" in url:
        return True
    if path.exists():
        return not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK)
    return path.parent.exists() and not os.access(path.parent, os.W_OK)


def _check_file(path: Path) -> None:
    """Refuse a file that is not a SQLite database or fails ``PRAGMA quick_check``.

    Only reads: the header is read with ``open(.., "rb")`` and quick_check runs on a
    ``mode=ro`` connection (https://www.sqlite.org/pragma.html#pragma_quick_check). A missing or
    empty file is a fresh workspace.

    Raises:
        WorkspaceError: naming the file and the fix (restore a backup or move the file aside).
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    except OSError as exc:
        raise WorkspaceError(f"Cannot read the workspace database {path} ({exc}).",
                             "check the file's permissions.", path) from exc
    if size == 0:
        return
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise WorkspaceError(f"Cannot read the workspace database {path} ({exc}).",
                             "check the file's permissions.", path) from exc
    if head != _SQLITE_HEADER or size < 512:
        raise WorkspaceError(f"The workspace database {path} is not a SQLite database (damaged or overwritten).",
                             _RESTORE_FIX, path)
    uri = "file:" + quote(str(path)) + "?mode=ro"
    try:
        con = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000.0)
    except sqlite3.Error:
        return  # cannot even open read-only (e.g. WAL file in a read-only folder): the engine reports it
    try:
        rows = [r[0] for r in con.execute("PRAGMA quick_check").fetchall()]
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc).lower() or "busy" in str(exc).lower() or "unable to open" in str(exc).lower():
            return  # not a verdict on the file; the engine's own errors are translated later
        raise WorkspaceError(f"The workspace database {path} is corrupt ({exc}).", _RESTORE_FIX, path) from exc
    except sqlite3.DatabaseError as exc:
        raise WorkspaceError(f"The workspace database {path} is corrupt ({exc}).", _RESTORE_FIX, path) from exc
    finally:
        con.close()
    if rows != ["ok"]:
        detail = "; ".join(str(r) for r in rows[:3])
        raise WorkspaceError(f"The workspace database {path} is corrupt (quick_check: {detail}).", _RESTORE_FIX, path)


def as_utc_string(ts: datetime) -> str:
    """ISO-8601 timestamp; SQLite returns naive datetimes, which PathViz stores as UTC."""
    return ts.isoformat(timespec="seconds") + ("" if ts.tzinfo else "+00:00")
