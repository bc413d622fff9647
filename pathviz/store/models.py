"""Database tables (SQLAlchemy 2 declarative): slides, patch reviews, jobs, users, login sessions, the audit log.

The schema is owned by the Alembic migrations in :mod:`pathviz.store.migrations` (applied when a
:class:`~pathviz.store.db.Database` opens); a change to these classes needs a new migration there.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import CheckConstraint, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class SlideRecord(Base):
    """A slide registered in the workspace.

    Columns: ``slide_id`` (short, URL-safe), ``name``, absolute ``path``, ``declared_mpp`` (None
    when the file carries its own), level-0 ``width``/``height`` (pixels), ``mpp`` used (microns per
    pixel), ``vendor``, ``source`` (``demo`` or ``user``), ``content_sha256`` (SHA-256 of the file's
    bytes, hex, for duplicate detection; None for rows registered before it was recorded),
    ``added_by`` (username, empty for the CLI/demo), ``added_at`` (UTC).
    """

    __tablename__ = "slides"

    slide_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(Text, unique=True)
    declared_mpp: Mapped[float | None] = mapped_column(Float, nullable=True)
    mpp: Mapped[float] = mapped_column(Float)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    vendor: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16), default="user")
    content_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    added_by: Mapped[str] = mapped_column(String(128), default="")
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    reviews: Mapped[list["Review"]] = relationship(back_populates="slide")


class Review(Base):
    """A pathologist's verdict on one flagged patch.

    The patch is identified by its level-0 rectangle (``x, y, width, height`` in pixels), so a
    review survives re-computing a layer or grid; ``layer`` and ``score`` record what flagged it.
    ``verdict`` is ``agree`` or ``disagree``; ``reviewer`` and ``created_at`` (UTC) record who and
    when. Reviews are append-only: a new verdict adds a row, the latest one per reviewer counts.
    """

    __tablename__ = "reviews"
    __table_args__ = (CheckConstraint("verdict IN ('agree', 'disagree')", name="verdict_values"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    slide_id: Mapped[str] = mapped_column(ForeignKey("slides.slide_id"), index=True)
    layer: Mapped[str] = mapped_column(String(64))
    grid_key: Mapped[str] = mapped_column(String(64))
    x: Mapped[int] = mapped_column(Integer)
    y: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    verdict: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text, default="")
    reviewer: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    slide: Mapped[SlideRecord] = relationship(back_populates="reviews")


class JobRecord(Base):
    """A background job (training a model, building the demo) run by a worker process.

    Columns: ``kind`` (a registered job kind, e.g. ``coxpasnet``), ``params`` (JSON text),
    ``status`` (``queued``, ``running``, ``succeeded``, ``failed``, ``cancelled``, ``interrupted``),
    ``progress`` (fraction 0..1) and ``message`` (what it is doing), ``device`` (the worker queue it
    runs on), ``timeout_s`` (seconds, None = no limit), ``cancel_requested``, the worker's and the
    job process's pid and the worker's host (a live worker holds its device's lock file with its
    pid in it: :func:`pathviz.jobs.queue.worker_alive`), ``result`` (JSON text, e.g. the model version it registered), ``error`` (what
    went wrong and how to fix it), ``log_path``, and UTC times ``created_at``, ``started_at``,
    ``finished_at``.
    """

    __tablename__ = "jobs"
    __table_args__ = (CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted')",
                                      name="job_status_values"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    params: Mapped[str] = mapped_column(Text, default="{}")
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    device: Mapped[str] = mapped_column(String(32), default="default")
    timeout_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    cancel_requested: Mapped[int] = mapped_column(Integer, default=0)
    worker_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    worker_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    job_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    result: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    log_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    submitted_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class User(Base):
    """A local account.

    Columns: ``username`` (primary key, 1-64 of ``a-z 0-9 . _ -``), ``display_name``,
    ``password_hash`` (argon2id, PHC string from argon2-cffi; never the password), ``roles``
    (comma-separated subset of :data:`pathviz.auth.policy.ROLES`), ``active`` (0 disables login),
    ``must_change_password`` (1 for a one-time password), ``failed_logins`` (consecutive),
    ``locked_until`` (UTC; login refused before it), ``created_at``, ``password_changed_at``,
    ``last_login_at`` (UTC).
    """

    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    password_hash: Mapped[str] = mapped_column(Text)
    roles: Mapped[str] = mapped_column(String(255), default="")
    active: Mapped[int] = mapped_column(Integer, default=1)
    must_change_password: Mapped[int] = mapped_column(Integer, default=0)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AuthSession(Base):
    """A login session: the browser holds a random token (HttpOnly cookie), the database only its
    SHA-256 (``token_sha256``, hex). ``expires_at`` is absolute; ``last_seen_at`` drives the idle
    timeout; ``revoked_at`` is set at logout (UTC times)."""

    __tablename__ = "auth_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(ForeignKey("users.username"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AuditEntry(Base):
    """One row of the append-only audit log (:mod:`pathviz.auth.audit`).

    Columns: ``id`` (sequence), ``at`` (UTC, ISO 8601 text as hashed), ``username`` and ``roles`` of
    the actor, ``action`` (e.g. ``login``, ``review.saved``), ``object_type`` and ``object_id``,
    ``details`` (canonical JSON text), ``prev_hash`` and ``hash`` (SHA-256 hex chain: ``hash`` covers
    ``prev_hash`` and every other column). SQLite triggers refuse UPDATE and DELETE on this table.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[str] = mapped_column(String(40), index=True)
    username: Mapped[str] = mapped_column(String(128), index=True)
    roles: Mapped[str] = mapped_column(String(255), default="")
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(64), default="")
    object_id: Mapped[str] = mapped_column(String(255), default="")
    details: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class CohortRecord(Base):
    """A cohort registered in the workspace (``pathviz cohort add``): where its files are and how to
    read them. Built-in cohorts (SurvSet, scikit-survival, the shared TCGA folders, the demo) are
    code, not rows.

    Columns: ``name`` (primary key, ``[a-z0-9_]``), ``format`` (``tcga``, ``cbioportal``, ``gdc``,
    ``csv``), ``path`` (absolute folder or file), ``options`` (JSON: column mapping, time unit,
    event map...), ``summary`` (JSON of the cohort's summary when added: patients, events,
    endpoints, omics scale), ``added_by`` (username), ``added_at`` (UTC).
    """

    __tablename__ = "cohorts"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    format: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(Text)
    options: Mapped[str] = mapped_column(Text, default="{}")
    summary: Mapped[str] = mapped_column(Text, default="{}")
    added_by: Mapped[str] = mapped_column(String(128), default="")
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
