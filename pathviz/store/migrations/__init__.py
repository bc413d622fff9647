"""Alembic migrations of the workspace database (the schema's only owner from version 0001 on).

:func:`upgrade_to_head` runs when a :class:`~pathviz.store.db.Database` opens (under its schema
file lock, so concurrent first starts migrate once). A database created before migrations existed
(tables present, no ``alembic_version`` table) holds exactly the schema of revision ``0001`` and is
stamped as such before upgrading.

Adding a schema change: edit :mod:`pathviz.store.models`, then write a new file in ``versions/``
(``alembic -c pathviz/store/migrations/alembic.ini revision --autogenerate -m "..."`` run against
a workspace database, or by hand with ``op.batch_alter_table`` for SQLite) and set :data:`HEAD`.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

#: The newest revision; a database already at it skips Alembic entirely (fast open).
HEAD = "0003"
#: The revision whose schema pre-migration databases have.
BASELINE = "0001"
_HERE = Path(__file__).resolve().parent


def _config(connection: Connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE))
    cfg.attributes["connection"] = connection
    return cfg


def current_revision(connection: Connection) -> str | None:
    """The database's Alembic revision, None when it has no ``alembic_version`` table (new or pre-migration)."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade_to_head(connection: Connection) -> str:
    """Bring the schema on ``connection`` to :data:`HEAD` (inside the caller's transaction).

    Returns the revision found before upgrading (``"none"`` for an empty database,
    ``"pre-migration"`` for a database created before Alembic).
    """
    rev = current_revision(connection)
    if rev == HEAD:
        return rev
    from alembic import command

    cfg = _config(connection)
    found = rev or "none"
    if rev is None and inspect(connection).has_table("slides"):
        _complete_baseline(cfg, connection)
        command.stamp(cfg, BASELINE)
        found = "pre-migration"
    command.upgrade(cfg, "head")
    return found


def _complete_baseline(cfg, connection: Connection) -> None:
    """A pre-migration database must hold revision 0001's schema before it is stamped at it: create
    the baseline tables it lacks (older PathViz had no ``jobs`` table) and refuse one whose existing
    tables lack baseline columns (nothing is changed then).

    Raises:
        WorkspaceError: a baseline table misses columns (names them).
    """
    import sqlalchemy as sa
    from alembic.script import ScriptDirectory

    from pathviz.errors import WorkspaceError

    md = ScriptDirectory.from_config(cfg).get_revision(BASELINE).module.tables(sa.MetaData())
    insp = inspect(connection)
    for table in md.sorted_tables:
        if insp.has_table(table.name):
            have = {c["name"] for c in insp.get_columns(table.name)}
            missing = [c.name for c in table.columns if c.name not in have]
            if missing:
                raise WorkspaceError(
                    f"The workspace database's table {table.name!r} lacks columns {', '.join(missing)}: it was made by a "
                    "PathViz older than this version can upgrade.",
                    "export what you need from it with that version, or start a new workspace (PATHVIZ_HOME).")
    md.create_all(connection, checkfirst=True)
