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
HEAD = "0002"
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
        command.stamp(cfg, BASELINE)
        found = "pre-migration"
    command.upgrade(cfg, "head")
    return found
