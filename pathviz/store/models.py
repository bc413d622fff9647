"""Database tables (SQLAlchemy 2 declarative): registered slides and patch reviews."""

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
    pixel), ``vendor``, ``source`` (``demo`` or ``user``), ``added_at`` (UTC).
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
