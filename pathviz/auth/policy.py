"""Roles, permissions and who is acting.

Roles (a user may hold several): ``pathologist`` (slide viewer, reviews, exports of reviews),
``oncologist`` (patient risk page), ``researcher`` (pathways page), ``admin`` (models and jobs,
workspace slides, users, the audit log). Pages and backend calls are both gated by the same
permissions (:data:`PERMISSIONS`); an admin holds only the admin permissions unless also given a
clinical role (least privilege: IT administration does not imply reading patient pages).

Two kinds of actor act without a browser login:

* ``operator``: someone running the ``pathviz`` CLI on the server without ``--user``. They own the
  workspace files (and could edit the database directly), so they act as admin; the audit log
  records them as ``os:<login name>``.
* ``system``: PathViz's own automation (the first-start demo build), recorded as ``system``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pathviz.errors import PathVizError

ROLES = ("pathologist", "oncologist", "researcher", "admin")

#: permission -> roles holding it.
PERMISSIONS: dict[str, frozenset[str]] = {
    "slides.view": frozenset({"pathologist", "admin"}),  # slide viewer page, tiles
    "reviews.write": frozenset({"pathologist"}),
    "reviews.export": frozenset({"pathologist"}),
    "patients.view": frozenset({"oncologist"}),
    "pathways.view": frozenset({"researcher"}),
    "slides.manage": frozenset({"admin"}),
    "cohorts.manage": frozenset({"researcher", "admin"}),  # register / remove cohorts
    "jobs.submit": frozenset({"researcher", "admin"}),  # train models (pathways page, admin page, CLI)
    "jobs.manage": frozenset({"admin"}),  # cancel anyone's job, the admin page
    "models.manage": frozenset({"admin"}),
    "users.manage": frozenset({"admin"}),
    "audit.read": frozenset({"admin"}),
}


class PermissionDeniedError(PathVizError):
    """The acting user's roles do not allow the action."""


class AuthError(PathVizError):
    """Login refused, session expired, or an account operation is invalid."""


@dataclass(frozen=True)
class Actor:
    """Who performs an action.

    Attributes:
        username: the account name (``os:<login>`` for the CLI operator, ``system`` for automation).
        roles: the roles held (subset of :data:`ROLES`).
        kind: ``user`` (logged in), ``operator`` (CLI without --user) or ``system``.
        must_change_password: True while a one-time password is in use (pages offer only the
            password change until it is changed).
    """

    username: str
    roles: frozenset[str] = field(default_factory=frozenset)
    kind: str = "user"
    must_change_password: bool = False

    def can(self, permission: str) -> bool:
        """True when one of the actor's roles holds ``permission`` (KeyError for an unknown one)."""
        return bool(PERMISSIONS[permission] & self.roles)

    @property
    def roles_text(self) -> str:
        return ",".join(r for r in ROLES if r in self.roles)


#: PathViz's own automation (first-start demo build).
SYSTEM = Actor("system", frozenset({"admin"}), kind="system")


def operator() -> Actor:
    """The CLI operator: the OS account running ``pathviz`` on the server (acts as admin)."""
    import getpass

    try:
        name = getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (containers): still an operator
        name = "unknown"
    return Actor(f"os:{name}", frozenset({"admin"}), kind="operator")


def require(actor: Actor | None, permission: str, what: str = "") -> Actor:
    """Check that ``actor`` may do ``permission``; returns the actor.

    Raises:
        PermissionDeniedError: no actor, or none of its roles holds the permission (the message
            names the roles that would).
    """
    needed = PERMISSIONS[permission]
    doing = what or permission
    if actor is None:
        raise PermissionDeniedError(f"Not logged in: {doing} needs an account.", "log in first.")
    if not actor.can(permission):
        held = actor.roles_text or "no role"
        raise PermissionDeniedError(
            f"{actor.username} ({held}) may not {doing}.",
            f"ask an admin for the {' or '.join(sorted(needed))} role.")
    return actor


def parse_roles(roles) -> frozenset[str]:
    """Roles from a comma-separated string or an iterable; unknown roles raise AuthError."""
    items = roles.split(",") if isinstance(roles, str) else list(roles)
    out = frozenset(r.strip().lower() for r in items if str(r).strip())
    unknown = sorted(out - set(ROLES))
    if unknown:
        raise AuthError(f"Unknown role(s): {', '.join(unknown)}.", f"use {', '.join(ROLES)}.")
    return out
