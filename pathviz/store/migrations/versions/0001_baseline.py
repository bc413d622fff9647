"""Baseline: slides, reviews, jobs (the schema PathViz created before migrations).

Revision ID: 0001
Revises:
Create Date: 2026-11-23

:func:`tables` is also used by :func:`pathviz.store.migrations.upgrade_to_head` to complete a
database from before migrations that lacks some of these tables (older PathViz versions had no
``jobs`` table) before stamping it at this revision.
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def tables(md: sa.MetaData) -> sa.MetaData:
    """The baseline tables, defined on ``md`` (returned)."""
    sa.Table(
        "jobs", md,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(length=64), nullable=False, index=True),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False, index=True),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("device", sa.String(length=32), nullable=False),
        sa.Column("timeout_s", sa.Float(), nullable=True),
        sa.Column("cancel_requested", sa.Integer(), nullable=False),
        sa.Column("worker_host", sa.String(length=255), nullable=True),
        sa.Column("worker_pid", sa.Integer(), nullable=True),
        sa.Column("job_pid", sa.Integer(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("log_path", sa.Text(), nullable=True),
        sa.Column("submitted_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted')",
                           name="job_status_values"),
    )
    sa.Table(
        "slides", md,
        sa.Column("slide_id", sa.String(length=64), primary_key=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("path", sa.Text(), nullable=False, unique=True),
        sa.Column("declared_mpp", sa.Float(), nullable=True),
        sa.Column("mpp", sa.Float(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("vendor", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Table(
        "reviews", md,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("slide_id", sa.String(length=64), sa.ForeignKey("slides.slide_id"), nullable=False, index=True),
        sa.Column("layer", sa.String(length=64), nullable=False),
        sa.Column("grid_key", sa.String(length=64), nullable=False),
        sa.Column("x", sa.Integer(), nullable=False),
        sa.Column("y", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("reviewer", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("verdict IN ('agree', 'disagree')", name="verdict_values"),
    )
    return md


def upgrade() -> None:
    tables(sa.MetaData()).create_all(op.get_bind())


def downgrade() -> None:
    op.drop_table("reviews")
    op.drop_table("slides")
    op.drop_table("jobs")
