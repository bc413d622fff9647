"""Alembic environment: migrations run on the connection PathViz passes in (``config.attributes``)."""

from alembic import context

from pathviz.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the alembic CLI without a connection
    from sqlalchemy import create_engine

    url = context.config.get_main_option("sqlalchemy.url")
    connection = create_engine(url).connect()

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
