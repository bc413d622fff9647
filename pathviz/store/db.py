"""Database access: one :class:`Database` per workspace, short transactions, no lost rows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import create_engine, event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pathviz.errors import unknown_fix, PathVizError, WorkspaceError
from pathviz.store.models import Base, Review, SlideRecord

VERDICTS = ("agree", "disagree")


class Database:
    """The workspace database.

    Args:
        url: SQLAlchemy URL, e.g. ``sqlite:////abs/path/pathviz.db``.

    Tables are created on first use. SQLite runs in WAL mode with foreign keys on, so the
    dashboard and the CLI can read while one writes.
    """

    def __init__(self, url: str):
        self.url = url
        # SQLite: wait up to 30 s for a writer's lock (workers write job progress while pages read/write)
        connect_args = {"timeout": 30} if url.startswith("sqlite") else {}
        self.engine = create_engine(url, future=True, connect_args=connect_args)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(self.engine)
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self._session()

    # -- slides ---------------------------------------------------------------------------
    def add_slide(self, record: SlideRecord) -> SlideRecord:
        """Insert a slide row. Raises WorkspaceError if the id or path is already registered."""
        with self.session() as s:
            try:
                s.add(record)
                s.commit()
            except IntegrityError as exc:
                s.rollback()
                raise WorkspaceError(
                    f"Slide {record.slide_id!r} ({record.path}) is already registered.",
                    "open the existing slide, or remove it first.",
                    record.path,
                ) from exc
        return record

    def slides(self) -> list[SlideRecord]:
        """All registered slides, oldest first."""
        with self.session() as s:
            return list(s.scalars(select(SlideRecord).order_by(SlideRecord.added_at, SlideRecord.slide_id)))

    def get_slide(self, slide_id: str) -> SlideRecord:
        """One slide by id. Raises WorkspaceError suggesting the closest known ids (never all) if absent."""
        with self.session() as s:
            rec = s.get(SlideRecord, slide_id)
        if rec is None:
            raise WorkspaceError(f"No slide with id {slide_id!r} in the workspace.",
                                 unknown_fix("slides", slide_id, [r.slide_id for r in self.slides()], "pathviz slide list"))
        return rec

    def find_slide_by_path(self, path: str) -> SlideRecord | None:
        with self.session() as s:
            return s.scalars(select(SlideRecord).where(SlideRecord.path == path)).first()

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
        """Record a verdict on a patch.

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
            PathVizError: empty reviewer (checked first), no or invalid verdict; WorkspaceError: unknown slide.
        """
        if not reviewer or not reviewer.strip():
            raise PathVizError("A review needs a reviewer name.", "enter your name in the reviewer field.")
        if verdict is None:
            raise PathVizError("No verdict chosen.", "choose agree or disagree.")
        if verdict not in VERDICTS:
            raise PathVizError(f"Verdict {verdict!r} is not one of {VERDICTS}.", "choose agree or disagree.")
        self.get_slide(slide_id)
        x, y, w, h = (int(v) for v in rect)
        row = Review(
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
        with self.session() as s:
            s.add(row)
            s.commit()
        return row

    def reviews(self, slide_id: str, layer: str | None = None) -> list[Review]:
        """All reviews of a slide (optionally of one layer), oldest first."""
        with self.session() as s:
            q = select(Review).where(Review.slide_id == slide_id)
            if layer is not None:
                q = q.where(Review.layer == layer)
            return list(s.scalars(q.order_by(Review.created_at, Review.id)))

    def latest_reviews(self, slide_id: str, layer: str | None = None) -> dict[tuple[int, int, int, int], list[Review]]:
        """Latest review per (patch rectangle, reviewer), grouped by rectangle."""
        latest: dict[tuple[tuple[int, int, int, int], str], Review] = {}
        for r in self.reviews(slide_id, layer):
            latest[((r.x, r.y, r.width, r.height), r.reviewer)] = r
        grouped: dict[tuple[int, int, int, int], list[Review]] = {}
        for (rect, _), r in latest.items():
            grouped.setdefault(rect, []).append(r)
        return grouped


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.close()


def as_utc_string(ts: datetime) -> str:
    """ISO-8601 timestamp; SQLite returns naive datetimes, which PathViz stores as UTC."""
    return ts.isoformat(timespec="seconds") + ("" if ts.tzinfo else "+00:00")
