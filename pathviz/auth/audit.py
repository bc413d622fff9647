"""The append-only, hash-chained audit log (table ``audit_log``).

Each row records who (username and roles at the time), what (``action``, e.g. ``login.failed``,
``review.saved``, ``job.submitted``, ``model.promoted``, ``user.roles_changed``), on what
(``object_type``, ``object_id``) and ``details`` (JSON; never comment text or file names of
slides, which may carry patient identifiers), at UTC time ``at``.

Tamper evidence: ``hash = SHA-256(canonical JSON of [prev_hash, at, username, roles, action,
object_type, object_id, details])`` and ``prev_hash`` is the previous row's ``hash`` (64 zeros for
the first row), so editing, deleting or reordering any row breaks the chain from that row on;
:meth:`AuditLog.verify` (``pathviz audit verify``) recomputes it. Rows are appended in a
``BEGIN IMMEDIATE`` transaction (one writer at a time, so two appends never share a
``prev_hash``), and SQLite triggers refuse UPDATE and DELETE. Limitation: removing the newest rows
leaves a valid shorter chain; :meth:`AuditLog.verify` reports the head hash and row count so an
admin can record them elsewhere (e.g. in the hospital's SIEM) and compare later.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from pathviz.auth.policy import Actor, require
from pathviz.store.db import Database
from pathviz.store.models import AuditEntry

GENESIS = "0" * 64
COLUMNS = ("id", "at", "username", "roles", "action", "object_type", "object_id", "details")


def _canonical_details(details: dict | None) -> str:
    return json.dumps(details or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_hash(prev_hash: str, at: str, username: str, roles: str, action: str, object_type: str,
               object_id: str, details: str) -> str:
    """SHA-256 (hex) of one row chained to ``prev_hash`` (the canonical form the chain is made of)."""
    payload = json.dumps([prev_hash, at, username, roles, action, object_type, object_id, details],
                         separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainReport:
    """Result of :meth:`AuditLog.verify`: ``ok``; ``rows`` checked; ``first_bad_id`` and ``reason``
    when broken; ``head_hash`` (the newest row's hash; record it to detect later truncation)."""

    ok: bool
    rows: int
    head_hash: str
    first_bad_id: int | None = None
    reason: str = ""


class AuditLog:
    """Append to, search and verify the audit log of a workspace database.

    Args:
        db: the workspace :class:`~pathviz.store.db.Database`.
    """

    def __init__(self, db: Database):
        self.db = db

    def record(self, actor: Actor | str, action: str, object_type: str = "", object_id: str | int = "",
               details: dict | None = None) -> AuditEntry:
        """Append one row (``BEGIN IMMEDIATE``, retried when the database is busy).

        Args:
            actor: who acts (an :class:`Actor`, or a plain name for login attempts of unknown users).
            action: what happened (dotted lowercase, e.g. ``review.saved``).
            object_type / object_id: what it happened to (e.g. ``slide`` / ``a1b2c3``).
            details: JSON-serialisable facts (no patient identifiers, no free text).

        Raises:
            WorkspaceError: the database is read-only or broken (the action should then not count).
        """
        username = actor.username if isinstance(actor, Actor) else str(actor)[:128]
        roles = actor.roles_text if isinstance(actor, Actor) else ""
        det = _canonical_details(details)
        oid = str(object_id)[:255]

        def append(s: Session) -> AuditEntry:
            prev = s.scalars(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)).first() or GENESIS
            at = datetime.now(timezone.utc).isoformat(timespec="microseconds")
            row = AuditEntry(at=at, username=username, roles=roles, action=action, object_type=object_type,
                             object_id=oid, details=det, prev_hash=prev,
                             hash=entry_hash(prev, at, username, roles, action, object_type, oid, det))
            s.add(row)
            s.flush()
            return row

        return self.db.write(append)

    def verify(self, batch: int = 5000) -> ChainReport:
        """Recompute the chain over every row in id order.

        Returns:
            :class:`ChainReport`; ``ok`` False names the first row whose ``prev_hash`` does not match
            the previous row's hash (a row was deleted or reordered) or whose hash does not match
            its content (a row was edited).
        """
        prev, n, last_id = GENESIS, 0, 0
        while True:
            rows = self.db._read(lambda s: list(s.scalars(select(AuditEntry).where(AuditEntry.id > last_id)
                                                          .order_by(AuditEntry.id).limit(batch))))
            if not rows:
                return ChainReport(True, n, prev)
            for r in rows:
                if r.prev_hash != prev:
                    return ChainReport(False, n, prev, r.id, "its prev_hash does not match the previous row's hash "
                                       "(a row before it was deleted, inserted or reordered)")
                if entry_hash(r.prev_hash, r.at, r.username, r.roles, r.action, r.object_type, r.object_id,
                              r.details) != r.hash:
                    return ChainReport(False, n, prev, r.id, "its content does not match its hash (the row was edited)")
                prev, n, last_id = r.hash, n + 1, r.id

    def search(self, actor: Actor, username: str = "", action: str = "", text: str = "",
               since: datetime | None = None, until: datetime | None = None, limit: int = 500) -> list[dict]:
        """Rows matching every filter given, newest first (admins only).

        Args:
            username / action: exact username; action prefix (``login`` matches ``login.failed``).
            text: substring of the object type, object id or details.
            since / until: UTC bounds on ``at``.
            limit: most rows returned.

        Raises:
            PermissionDeniedError: the actor may not read the audit log.
        """
        require(actor, "audit.read", "read the audit log")
        q = select(AuditEntry)
        if username:
            q = q.where(AuditEntry.username == username)
        if action:
            q = q.where(AuditEntry.action.startswith(action, autoescape=True))
        if text:
            like = f"%{text}%"
            q = q.where(or_(AuditEntry.object_id.like(like), AuditEntry.object_type.like(like), AuditEntry.details.like(like)))
        if since is not None:
            q = q.where(AuditEntry.at >= since.astimezone(timezone.utc).isoformat(timespec="microseconds"))
        if until is not None:
            q = q.where(AuditEntry.at <= until.astimezone(timezone.utc).isoformat(timespec="microseconds"))
        q = q.order_by(AuditEntry.id.desc()).limit(int(limit))
        rows = self.db._read(lambda s: list(s.scalars(q)))
        return [{c: getattr(r, c) for c in COLUMNS} for r in rows]


def rows_csv(rows: list[dict]) -> str:
    """Audit rows as CSV text (cells that a spreadsheet would run as formulas are escaped)."""
    import pandas as pd

    from pathviz.report.export import csv_safe

    return csv_safe(pd.DataFrame(rows, columns=list(COLUMNS))).to_csv(index=False)
