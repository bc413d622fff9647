"""Backup and restore of a workspace (``pathviz backup OUT`` / ``pathviz restore BACKUP``).

What a backup holds (a new folder ``OUT``)::

    OUT/
        backup.json        what was copied: created_at (UTC), pathviz version, source home,
                           database file name, SHA-256 and size of every file, row counts
                           (slides, reviews, jobs, users, audit rows) and model versions,
                           whether slides were included
        pathviz.db         the database (its own file name), one self-contained SQLite file
        models/            the model registry (versions, aliases.json, aliases.log)
        derived/           tissue masks, grids and layers of every slide
        slides/            slides copied into the workspace (only with ``--with-slides``)

Not copied: ``jobs/`` (job logs), the database's ``-wal``/``-shm``/``.lock`` files (the copy is
self-contained), slides registered in place outside the workspace (``PATHVIZ_SLIDE_ROOTS``: back
those folders up yourself), and in-progress writer debris: dot-prefixed files and folders (the
registry's ``.tmp-*`` version folders, ``.lock``, ``.aliases-*.json``) and ``*.partial``,
``*.tmp``, ``*.tmp.npz`` files.

How consistency is guaranteed:

* The database is copied with SQLite's online backup API (``sqlite3.Connection.backup``, all
  pages in one step, https://www.sqlite.org/backup.html) from a read-only (``mode=ro``)
  connection with a busy timeout. In WAL mode the step reads one snapshot while the dashboard
  and workers keep writing, so the copy holds exactly the transactions committed before it
  began: never a half-written row, never a torn page. The copy is switched to
  ``journal_mode=DELETE`` (one file, no ``-wal``) and must pass ``PRAGMA quick_check``.
* Registry versions are immutable and renamed into place whole; ``aliases.json`` and derived
  ``.npz`` files are replaced by rename, so each copied file is one complete version of itself.
  (The database and the files are not one atomic snapshot: a model version or layer written
  during the backup may or may not be in it.)
* Everything is written into ``OUT.partial`` (holding an ``fcntl`` lock on
  ``OUT.partial/.writing`` while it is written), ``backup.json`` last, and the folder is renamed
  to ``OUT`` only when complete. A killed backup therefore leaves only ``OUT.partial``, which
  :func:`restore` refuses; the next backup to the same ``OUT`` removes it once its lock is free.
  Files are fsynced before the rename.

Restore procedure (:func:`restore`):

1. ``backup.json`` is read and every file it lists is checked (present, size, SHA-256) before
   anything in the target is touched; any mismatch names the file and nothing changes.
2. The target ``home`` must not hold a database already (nor data in ``models/``/``derived/``),
   unless ``force``: then the existing database, ``models/``, ``derived/`` (and ``slides/`` when
   the backup has slides) are renamed aside to ``<name>.before-restore-<UTC time>``: never
   deleted. The database's ``-wal``/``-shm`` go with it as ``<db>.before-restore-<time>-wal``, so
   the aside copy still opens with every committed row. A database some process still has open
   (the dashboard, a worker: detected through SQLite's lock on its ``-shm`` file, Linux) is refused,
   force or not.
3. Files are copied into a staging folder inside ``home`` (verified again while copying) and the
   database into ``<db>.restore-tmp``; the staged database must pass ``quick_check``; slide rows
   whose paths pointed into the old home are rewritten to the new home when the backup holds the
   slides. Then the folders are renamed into place and the database last, so a restore
   interrupted midway leaves no database that looks complete.
4. The restored database is checked again (``quick_check``) and slide rows whose files are
   missing are reported (e.g. a backup without ``--with-slides`` restored elsewhere). Jobs that were
   queued or running at backup time come back ``interrupted`` (not run again on their own).

Stop the dashboard and workers of the target workspace before restoring (restore does not stop
them). Non-SQLite databases (``PATHVIZ_DATABASE_URL=postgresql://...``) are refused: back them
up with the database's own tool (``pg_dump``) and copy ``models/`` (and ``derived/``) yourself.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from pathviz.errors import PathVizError
from pathviz.settings import Settings, safe_database_url

BACKUP_JSON = "backup.json"
FORMAT = 1
PARTIAL = ".partial"
WRITING = ".writing"
#: Busy timeout of the source connection, milliseconds.
BUSY_TIMEOUT_MS = 30000
#: Folders of the workspace a backup copies (``slides`` only when asked).
FOLDERS = ("models", "derived")
#: Row counts recorded in backup.json: ``{key: table}``.
COUNTED_TABLES = {"slides": "slides", "reviews": "reviews", "jobs": "jobs", "users": "users",
                  "audit_rows": "audit_log"}
_TEMP_SUFFIXES = (".partial", ".tmp", ".tmp.npz", ".restore-tmp")
_BLOCK = 1 << 20


class BackupError(PathVizError):
    """A backup or restore was refused or failed (names the file or folder and the fix)."""


# -- helpers --------------------------------------------------------------------------------------
def _settings(settings_or_home: Settings | str | Path | None) -> Settings:
    if isinstance(settings_or_home, Settings):
        return settings_or_home
    return Settings.from_env(settings_or_home)


def _database_file(settings: Settings) -> Path:
    """The SQLite file of the workspace; other backends are refused with the fix."""
    from pathviz.store.db import _sqlite_file

    path = _sqlite_file(settings.database_url) if settings.database_url.startswith("sqlite") else None
    if path is None:
        raise BackupError(
            f"The workspace database is {safe_database_url(settings.database_url)}, not a SQLite file; "
            "pathviz backup/restore copy SQLite workspaces only.",
            "back the database up with its own tool (e.g. pg_dump / pg_restore for PostgreSQL) and copy "
            f"{settings.home / 'models'} (and derived/) with it.")
    return path


def _utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _skipped(name: str) -> bool:
    """Writer debris that is never copied: dot-prefixed names and temporary suffixes."""
    return name.startswith(".") or name.endswith(_TEMP_SUFFIXES)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _copy_hashed(src: Path, dst: Path) -> tuple[str, int]:
    """Copy ``src`` to ``dst`` (fsynced, mtime kept), returning its SHA-256 and size from the bytes copied."""
    h = hashlib.sha256()
    size = 0
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        for block in iter(lambda: fi.read(_BLOCK), b""):
            h.update(block)
            fo.write(block)
            size += len(block)
        fo.flush()
        os.fsync(fo.fileno())
    try:
        shutil.copystat(src, dst)
    except OSError:
        pass
    return h.hexdigest(), size


def _hash_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def _quick_check(path: Path) -> None:
    """``PRAGMA quick_check`` on a read-only connection; raises BackupError unless ``ok``."""
    try:
        con = sqlite3.connect("file:" + quote(str(path)) + "?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            rows = [r[0] for r in con.execute("PRAGMA quick_check").fetchall()]
        finally:
            con.close()
    except sqlite3.Error as exc:
        rows = [str(exc)]
    if rows != ["ok"]:
        raise BackupError(f"The database copy {path} fails quick_check ({'; '.join(map(str, rows[:3]))}).",
                          "check the disk and the source database (pathviz opens it only when it passes), then retry.",
                          path)


def _counts(db: Path, models: Path) -> dict:
    """Row counts of the known tables (None for a table the database lacks) and model versions."""
    out: dict = {}
    con = sqlite3.connect("file:" + quote(str(db)) + "?mode=ro", uri=True)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for key, table in COUNTED_TABLES.items():
            out[key] = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] if table in tables else None
    finally:
        con.close()
    out["model_versions"] = sum(1 for _ in models.glob("*/*/v[0-9]*/manifest.json")) if models.is_dir() else 0
    return out


def _backup_database(src: Path, dst: Path) -> None:
    """Online copy of ``src`` into the new file ``dst`` (one backup step = one read snapshot),
    switched to a single-file journal and checked with quick_check."""
    if not src.is_file() or src.stat().st_size == 0:
        raise BackupError(f"There is no workspace database at {src}; nothing to back up.",
                          "check PATHVIZ_HOME / PATHVIZ_DATABASE_URL (open the workspace once to create it).", src)
    try:
        source = sqlite3.connect("file:" + quote(str(src)) + "?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error as exc:
        raise BackupError(f"Cannot open the workspace database {src} read-only ({exc}).",
                          "check that the file and its folder are readable (a WAL database needs its -shm file "
                          "or a writable folder).", src) from exc
    try:
        source.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        target = sqlite3.connect(dst)
        try:
            source.backup(target)  # pages=-1: every page in one step, under one read transaction
            target.execute("PRAGMA journal_mode=DELETE")
        finally:
            target.close()
    except sqlite3.Error as exc:
        raise BackupError(f"Copying the workspace database {src} failed ({exc}).",
                          "wait for running jobs to finish and retry; if it persists check the disk.", src) from exc
    finally:
        source.close()
    _quick_check(dst)


def _copy_tree(src_root: Path, dst_root: Path, rel_base: Path, files: dict) -> None:
    """Copy ``src_root`` into ``dst_root`` skipping writer debris; record ``{relpath: {sha256, size}}``
    (relative to ``rel_base``) in ``files``. Files that vanish while copying are skipped."""
    if not src_root.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(src_root):
        dirnames[:] = sorted(d for d in dirnames if not _skipped(d))
        here = Path(dirpath)
        for name in sorted(filenames):
            if _skipped(name):
                continue
            src = here / name
            dst = dst_root / src.relative_to(src_root)
            try:
                digest, size = _copy_hashed(src, dst)
            except FileNotFoundError:
                if not src.exists():
                    dst.unlink(missing_ok=True)
                    continue  # replaced or removed by a writer while we walked
                raise
            files[dst.relative_to(rel_base).as_posix()] = {"sha256": digest, "size": size}


def _lock_writing(folder: Path):
    fh = open(folder / WRITING, "w")
    fcntl.flock(fh, fcntl.LOCK_EX)
    return fh


def _clear_stale_partial(partial: Path) -> None:
    """Remove ``OUT.partial`` left by a killed backup (its ``.writing`` lock is free); refuse when
    a backup is still writing it, or when it is not a folder this module wrote."""
    if not partial.exists():
        return
    lock = partial / WRITING
    if not lock.is_file():
        raise BackupError(f"{partial} exists and is not an unfinished PathViz backup.",
                          "remove or rename it, or back up to another folder.", partial)
    with open(lock, "r") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(f"Another backup is writing {partial} right now.",
                              "wait for it to finish, or back up to another folder.", partial) from None
        shutil.rmtree(partial)


# -- backup ---------------------------------------------------------------------------------------
def backup(settings_or_home: Settings | str | Path | None, out: str | Path, include_slides: bool = False) -> dict:
    """Back up a workspace into the new folder ``out`` (see the module docstring).

    Copies the database (SQLite online backup API, quick_check on the copy), ``models/`` and
    ``derived/`` (writer temp files skipped), and ``slides/`` when ``include_slides``; writes
    ``out/backup.json`` last, inside ``out.partial``, which is renamed to ``out`` when complete.

    Args:
        settings_or_home: the workspace's :class:`Settings`, or its home folder (settings read
            from the environment for it), or None for ``PATHVIZ_HOME``.
        out: the backup folder to create (must not exist, or be empty).
        include_slides: also copy ``slides/`` (may be large); restore then re-points the slide rows.

    Returns:
        A summary: out, created_at, source_home, database, files, bytes, counts, slides_included,
        slides_not_in_backup (slide rows whose files the backup does not hold).

    Raises:
        BackupError (a PathVizError): non-SQLite database (use pg_dump), no database, ``out``
            exists and is not empty, ``out`` inside a copied folder, another backup writing
            ``out.partial``, the copy fails quick_check, or a copy error (disk full...); the
            unfinished ``out.partial`` is removed on these errors.
    """
    import pathviz

    settings = _settings(settings_or_home)
    home = settings.home
    db = _database_file(settings)
    out = Path(out).expanduser().absolute()
    partial = out.with_name(out.name + PARTIAL)
    sources = FOLDERS + (("slides",) if include_slides else ())
    for sub in sources:
        if out.resolve().is_relative_to((home / sub).resolve()):
            raise BackupError(f"The backup folder {out} is inside {home / sub}, which the backup copies.",
                              "choose a folder outside the workspace's models/, derived/ and slides/.", out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BackupError(f"{out} already exists and is not empty; a backup never overwrites one.",
                          "choose a new folder (e.g. with the date in its name) or remove the old one.", out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _clear_stale_partial(partial)
    partial.mkdir()
    guard = _lock_writing(partial)
    try:
        files: dict[str, dict] = {}
        _backup_database(db, partial / db.name)
        digest, size = _hash_file(partial / db.name)
        files[db.name] = {"sha256": digest, "size": size}
        for sub in sources:
            _copy_tree(home / sub, partial / sub, partial, files)
        counts = _counts(partial / db.name, partial / "models")
        not_in_backup = _slides_not_in_backup(partial / db.name, home, include_slides, files)
        meta = {
            "format": FORMAT,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "pathviz_version": getattr(pathviz, "__version__", None),
            "sqlite_version": sqlite3.sqlite_version,
            "source_home": str(home),
            "database": db.name,
            "slides_included": bool(include_slides),
            "counts": counts,
            "files": files,
        }
        with open(partial / BACKUP_JSON, "w") as f:
            json.dump(meta, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        (partial / WRITING).unlink()
        for d in sorted({(partial / rel).parent for rel in files} | {partial}, reverse=True):
            _fsync_dir(d)
        if out.exists():
            out.rmdir()  # empty (checked above); rename needs the name free or an empty folder
        os.rename(partial, out)
        _fsync_dir(out.parent)
    except BaseException as exc:
        guard.close()
        shutil.rmtree(partial, ignore_errors=True)
        if isinstance(exc, OSError):
            raise BackupError(f"Writing the backup {out} failed ({exc.strerror or exc}"
                              f"{': ' + str(exc.filename) if exc.filename else ''}); nothing was kept.",
                              "check free disk space and permissions, then retry.", exc.filename or out) from exc
        raise
    guard.close()
    return {"out": str(out), "created_at": meta["created_at"], "source_home": str(home), "database": db.name,
            "files": len(files), "bytes": sum(f["size"] for f in files.values()), "counts": counts,
            "slides_included": bool(include_slides), "slides_not_in_backup": not_in_backup}


def _slide_rows(db: Path) -> list[tuple[str, str]]:
    con = sqlite3.connect("file:" + quote(str(db)) + "?mode=ro", uri=True)
    try:
        return [(r[0], r[1]) for r in con.execute("SELECT slide_id, path FROM slides ORDER BY slide_id")]
    except sqlite3.OperationalError:  # no slides table
        return []
    finally:
        con.close()


def _slides_not_in_backup(db: Path, home: Path, include_slides: bool, files: dict) -> list[dict]:
    """Slide rows whose file is not among the backed-up files."""
    out = []
    for slide_id, path in _slide_rows(db):
        p = Path(path)
        rel = p.relative_to(home).as_posix() if p.is_relative_to(home) else None
        if not include_slides or rel is None or rel not in files:
            out.append({"slide_id": slide_id, "path": path})
    return out


# -- restore --------------------------------------------------------------------------------------
def read_backup_meta(backup_dir: str | Path) -> dict:
    """``backup.json`` of a complete backup.

    Raises:
        BackupError: the folder is missing, an unfinished backup (``*.partial``, ``.writing``), or
            has no readable backup.json.
    """
    backup_dir = Path(backup_dir)
    if not backup_dir.is_dir():
        raise BackupError(f"No backup folder {backup_dir}.", "give the folder `pathviz backup OUT` wrote.", backup_dir)
    if backup_dir.name.endswith(PARTIAL) or (backup_dir / WRITING).exists():
        raise BackupError(f"{backup_dir} is an unfinished backup (the backup was killed or is still running); "
                          "it cannot be restored.", "restore a complete backup (a folder without .partial).", backup_dir)
    meta_path = backup_dir / BACKUP_JSON
    try:
        meta = json.loads(meta_path.read_text())
        if not isinstance(meta.get("files"), dict) or not isinstance(meta.get("database"), str):
            raise ValueError("files or database missing")
    except (OSError, ValueError, AttributeError) as exc:
        raise BackupError(f"{meta_path} is missing or unreadable ({exc}); {backup_dir} is not a complete PathViz backup.",
                          "restore a folder written by `pathviz backup`.", meta_path) from exc
    return meta


def _check_rel(backup_dir: Path, rel: str) -> Path:
    p = (backup_dir / rel)
    if rel.startswith("/") or ".." in Path(rel).parts or not p.resolve().is_relative_to(backup_dir.resolve()):
        raise BackupError(f"backup.json lists a file outside the backup ({rel!r}); it was not restored.",
                          "use an untampered backup.", backup_dir / BACKUP_JSON)
    return p


def verify_backup(backup_dir: str | Path) -> dict:
    """Check every file listed in ``backup.json`` (present, size, SHA-256). Returns the metadata.

    Raises:
        BackupError: naming the first file that is missing or changed.
    """
    backup_dir = Path(backup_dir)
    meta = read_backup_meta(backup_dir)
    if meta["database"] not in meta["files"]:
        raise BackupError(f"{backup_dir / BACKUP_JSON} lists no database file {meta['database']}.",
                          "use a complete, untampered backup.", backup_dir / BACKUP_JSON)
    for rel, info in sorted(meta["files"].items()):
        p = _check_rel(backup_dir, rel)
        if not p.is_file():
            raise BackupError(f"Backup file {rel} is missing from {backup_dir}; nothing was restored.",
                              "use a complete backup (copy the whole folder).", p)
        if p.stat().st_size != info.get("size"):
            raise BackupError(f"Backup file {rel} has {p.stat().st_size} bytes, backup.json says {info.get('size')}; "
                              "nothing was restored.", "use an untampered, completely copied backup.", p)
        if _hash_file(p)[0] != info.get("sha256"):
            raise BackupError(f"Backup file {rel} was changed after the backup was written (SHA-256 mismatch); "
                              "nothing was restored.", "use an untampered backup.", p)
    return meta


def _aside(path: Path, stamp: str) -> Path:
    target = path.with_name(f"{path.name}.before-restore-{stamp}")
    n = 1
    while target.exists() or target.is_symlink():
        n += 1
        target = path.with_name(f"{path.name}.before-restore-{stamp}-{n}")
    os.rename(path, target)
    return target


def _aside_database(db: Path, present: list[Path], stamp: str) -> list[Path]:
    """Rename the database and its ``-wal``/``-shm``/``-journal`` aside as one set named
    ``<db>.before-restore-<stamp>[-wal|-shm|-journal]``, so SQLite opening the aside file finds its
    WAL (committed rows not yet checkpointed stay readable)."""
    base = f"{db.name}.before-restore-{stamp}"
    n = 1
    while any(db.with_name(base + s).exists() for s in ("", "-wal", "-shm", "-journal")):
        n += 1
        base = f"{db.name}.before-restore-{stamp}-{n}"
    out = []
    for p in present:
        target = db.with_name(base + p.name[len(db.name):])
        os.rename(p, target)
        out.append(target)
    return out


def _database_in_use(db: Path) -> bool:
    """True when a connection (of any process, this one included) has the WAL database open: SQLite's
    unix VFS holds a shared lock on byte 128 of ``<db>-shm`` (its "DMS" byte) while connected. Queried
    with an open-file-description lock test (``F_OFD_GETLK``), which takes no lock and so never drops
    this process's own SQLite locks. False where that cannot be asked (not Linux, no ``-shm``)."""
    import struct

    shm = db.with_name(db.name + "-shm")
    if not hasattr(fcntl, "F_OFD_GETLK") or not shm.exists():
        return False
    try:
        fd = os.open(shm, os.O_RDONLY)
    except OSError:
        return False
    try:
        fmt = "hhqqi4x"  # struct flock on 64-bit Linux: type, whence, start, len, pid (+padding)
        res = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, struct.pack(fmt, fcntl.F_WRLCK, os.SEEK_SET, 128, 1, 0))
        return struct.unpack(fmt, res)[0] != fcntl.F_UNLCK
    except (OSError, struct.error):
        return False
    finally:
        os.close(fd)


def _has_data(folder: Path) -> bool:
    return folder.is_dir() and any(not _skipped(p.name) for p in folder.iterdir())


def _rewrite_slide_paths(db: Path, old_home: str, new_home: Path) -> int:
    old = old_home.rstrip("/") + "/"
    new = str(new_home).rstrip("/") + "/"
    if old == new or old == "/":
        return 0
    con = sqlite3.connect(db)
    try:
        with con:
            cur = con.execute("UPDATE slides SET path = ? || substr(path, ?) WHERE substr(path, 1, ?) = ?",
                              (new, len(old) + 1, len(old), old))
        return cur.rowcount
    except sqlite3.OperationalError:  # no slides table
        return 0
    finally:
        con.close()


def _settle_jobs(db: Path) -> int:
    """Jobs queued or running when the backup was taken come back ``interrupted`` (their workers
    are not restored; a restored queued training must not start on its own). Returns how many."""
    con = sqlite3.connect(db)
    try:
        with con:
            cur = con.execute("UPDATE jobs SET status = 'interrupted', message = 'restored from a backup taken while it "
                              "was queued or running; submit it again', finished_at = CURRENT_TIMESTAMP "
                              "WHERE status IN ('queued', 'running')")
        return cur.rowcount
    except sqlite3.OperationalError:  # no jobs table
        return 0
    finally:
        con.close()


def restore(backup_dir: str | Path, home: Settings | str | Path | None, force: bool = False) -> dict:
    """Restore a backup into the workspace ``home`` (see the module docstring for the procedure).

    Args:
        backup_dir: a folder written by :func:`backup`.
        home: the target workspace's :class:`Settings` or home folder (None: ``PATHVIZ_HOME``);
            the database goes where its settings put it (``$home/pathviz.db`` by default).
        force: restore over an existing workspace; its database and folders are renamed aside to
            ``<name>.before-restore-<UTC time>`` (never deleted).

    Returns:
        A summary: backup, home, database, backup_created_at, source_home, files, bytes, counts,
        slides_included, slides_rewritten, missing_slides (``[{slide_id, path}]`` whose files do
        not exist), moved_aside (paths), quick_check.

    Raises:
        BackupError (a PathVizError): unfinished backup, a missing or changed file (named; nothing
            is touched), a database already in ``home`` without ``force``, a target database open
            in a running process (dashboard, worker; checked on Linux), a non-SQLite target
            database, the restored database failing quick_check, or a copy error (disk full...).
    """
    backup_dir = Path(backup_dir).expanduser().absolute()
    meta = verify_backup(backup_dir)
    settings = _settings(home)
    home = settings.home
    db = _database_file(settings)
    include_slides = bool(meta.get("slides_included"))
    folders = FOLDERS + (("slides",) if include_slides else ())
    db_family = [db] + [db.with_name(db.name + s) for s in ("-wal", "-shm", "-journal")]
    present = [p for p in db_family if p.exists()]
    busy = [home / f for f in folders if _has_data(home / f)]
    if (present or busy) and not force:
        what = ", ".join(str(p) for p in (present or busy))
        raise BackupError(f"The workspace {home} already holds data ({what}); restore never overwrites it.",
                          "restore into a new PATHVIZ_HOME, or pass --force to move the current database and "
                          "folders aside (renamed *.before-restore-<time>, never deleted).", present[0] if present else busy[0])

    if _database_in_use(db):
        raise BackupError(f"The workspace database {db} is open in a running process (the dashboard, a worker or a "
                          "job); restoring under it would mix the two databases.",
                          "stop the dashboard and the workers of this workspace, then retry.", db)

    stamp = _utc_stamp()
    home.mkdir(parents=True, exist_ok=True)
    db.parent.mkdir(parents=True, exist_ok=True)
    staging = home / f".restore-{stamp}-{os.getpid()}"
    staged_db = db.with_name(db.name + ".restore-tmp")
    moved: list[str] = []
    try:
        staging.mkdir()
        staged_db.unlink(missing_ok=True)
        total = 0
        for rel, info in sorted(meta["files"].items()):
            src = backup_dir / rel
            top = rel.split("/", 1)[0]
            if rel == meta["database"]:
                dst = staged_db
            elif top in folders and "/" in rel:
                dst = staging / rel
            else:
                continue  # not a part this restore places (e.g. slides of a backup without slides)
            digest, size = _copy_hashed(src, dst)
            if digest != info["sha256"]:
                raise BackupError(f"Backup file {rel} changed while it was restored (SHA-256 mismatch); nothing was "
                                  "restored.", "use an untampered backup and retry.", src)
            total += size
        _quick_check(staged_db)
        rewritten = _rewrite_slide_paths(staged_db, str(meta.get("source_home", "")), home) if include_slides else 0
        settled = _settle_jobs(staged_db)
        _quick_check(staged_db)
        # -- point of no return: move aside, rename into place (database last) -----------------------
        if force and present:
            moved += [str(p) for p in _aside_database(db, present, stamp)]
        for f in folders:
            target = home / f
            if target.exists():
                if not target.is_dir() or any(target.iterdir()):
                    moved.append(str(_aside(target, stamp)))  # data, or only writer debris: kept aside all the same
                else:
                    target.rmdir()  # an empty folder (e.g. made by opening the workspace)
            staged = staging / f
            if staged.is_dir():
                os.rename(staged, target)
            else:
                target.mkdir()
        os.rename(staged_db, db)
        _fsync_dir(db.parent)
        _fsync_dir(home)
    except BaseException as exc:
        staged_db.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise BackupError(f"Restoring {backup_dir} into {home} failed ({exc.strerror or exc}"
                              f"{': ' + str(exc.filename) if exc.filename else ''}).",
                              "check free disk space and permissions, then retry"
                              + (f"; the previous data was moved aside: {', '.join(moved)}." if moved else "."),
                              exc.filename or home) from exc
        raise
    shutil.rmtree(staging, ignore_errors=True)
    _quick_check(db)
    missing = [{"slide_id": s, "path": p} for s, p in _slide_rows(db) if not Path(p).exists()]
    return {"backup": str(backup_dir), "home": str(home), "database": str(db),
            "backup_created_at": meta.get("created_at"), "source_home": meta.get("source_home"),
            "files": len(meta["files"]), "bytes": total, "counts": meta.get("counts", {}),
            "slides_included": include_slides, "slides_rewritten": rewritten, "missing_slides": missing,
            "jobs_interrupted": settled,
            "moved_aside": moved, "quick_check": "ok"}


# -- CLI ------------------------------------------------------------------------------------------
def cmd_backup(args) -> int:
    """``pathviz backup OUT [--with-slides] [--json]``: back up $PATHVIZ_HOME into the new folder OUT."""
    from pathviz.cli import _print

    s = backup(Settings.from_env(), Path(args.out), include_slides=args.with_slides)
    c = s["counts"]
    text = (f"backup written to {s['out']}: {s['files']} files, {s['bytes'] / 1e6:.1f} MB\n"
            f"database {s['database']} (quick_check ok): {c.get('slides')} slides, {c.get('reviews')} reviews, "
            f"{c.get('jobs')} jobs, {c.get('users')} users, {c.get('audit_rows')} audit rows; "
            f"{c.get('model_versions')} model versions")
    if s["slides_not_in_backup"]:
        text += (f"\nwarning: {len(s['slides_not_in_backup'])} slide files are not in the backup "
                 f"({'slides outside the workspace' if s['slides_included'] else 'use --with-slides to include them'})")
    _print(args, s, text)
    return 0


def cmd_restore(args) -> int:
    """``pathviz restore BACKUP [--force] [--json]``: restore a backup into $PATHVIZ_HOME."""
    from pathviz.cli import _print

    s = restore(Path(args.backup), Settings.from_env(), force=args.force)
    c = s["counts"]
    text = (f"restored {s['backup']} (made {s['backup_created_at']}) into {s['home']}: {s['files']} files\n"
            f"database {s['database']} (quick_check ok): {c.get('slides')} slides, {c.get('reviews')} reviews, "
            f"{c.get('model_versions')} model versions")
    if s["slides_rewritten"]:
        text += f"\n{s['slides_rewritten']} slide paths re-pointed from {s['source_home']} to {s['home']}"
    if s["moved_aside"]:
        text += "\nprevious data kept at: " + ", ".join(s["moved_aside"])
    if s["missing_slides"]:
        text += (f"\nwarning: {len(s['missing_slides'])} slide files are missing: "
                 + ", ".join(m["path"] for m in s["missing_slides"][:5])
                 + (" ..." if len(s["missing_slides"]) > 5 else "")
                 + " (copy them back, or back up with --with-slides)")
    _print(args, s, text)
    return 0


def add_cli(sub: "argparse._SubParsersAction") -> None:
    """Register ``backup`` and ``restore`` on the ``pathviz`` command's subparsers."""
    sp = sub.add_parser("backup", help="back up the workspace (database, models, derived data) into a new folder")
    sp.add_argument("out", help="new folder to write (must not exist or be empty)")
    sp.add_argument("--with-slides", action="store_true", help="also copy slides/ (may be large)")
    sp.add_argument("--json", action="store_true", help="print JSON")
    sp.set_defaults(func=cmd_backup)
    sp = sub.add_parser("restore", help="restore a backup into $PATHVIZ_HOME (checksums verified first)")
    sp.add_argument("backup", help="folder written by `pathviz backup`")
    sp.add_argument("--force", action="store_true",
                    help="restore over an existing workspace (its data is moved aside, never deleted)")
    sp.add_argument("--json", action="store_true", help="print JSON")
    sp.set_defaults(func=cmd_restore)
