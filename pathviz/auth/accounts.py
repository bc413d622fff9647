"""Local accounts: users with roles, login with lockout, session tokens, the first admin.

Sessions: :meth:`Accounts.login` returns a random token (``secrets.token_urlsafe(32)``) that the
browser keeps in an HttpOnly cookie (:mod:`pathviz.auth.web`); the database stores only its
SHA-256. A session ends at logout, after :data:`IDLE_MINUTES` without a request, after
:data:`SESSION_HOURS` in any case, or when the user is disabled. Lockout: after
:data:`MAX_FAILED_LOGINS` consecutive failures an account is refused for :data:`LOCKOUT_MINUTES`
(OWASP Authentication Cheat Sheet); every failure answers with the same message and costs the same
argon2 verification, so the login form tells nothing about which usernames exist.

Every change is checked against the acting user's permissions (:func:`pathviz.auth.policy.require`)
and written to the audit log (:class:`pathviz.auth.audit.AuditLog`).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pathviz.auth.audit import AuditLog
from pathviz.auth.passwords import check_password_rules, dummy_hash, hash_password, needs_rehash, verify_password
from pathviz.auth.policy import Actor, AuthError, parse_roles, require
from pathviz.store.db import Database
from pathviz.store.models import AuthSession, User

MAX_FAILED_LOGINS = 5
LOCKOUT_MINUTES = 15
IDLE_MINUTES = float(os.environ.get("PATHVIZ_SESSION_IDLE_MINUTES", "30"))
SESSION_HOURS = float(os.environ.get("PATHVIZ_SESSION_HOURS", "12"))
#: ``last_seen_at`` is written at most this often per session (seconds): tiles do not write.
TOUCH_EVERY_S = 60.0
#: A checked token is trusted for this long (seconds) before the database is asked again, so a
#: viewer's tile burst costs one lookup; logout and disabling take effect within this delay.
CACHE_S = 5.0
FIRST_ADMIN = "admin"
INITIAL_PASSWORD_FILE = "admin-initial-password.txt"
LOGIN_REFUSED = "Wrong username or password, or the account is locked or disabled."

_USERNAME = re.compile(r"[a-z0-9][a-z0-9._\-]{0,63}")
#: Names that would pass for PathViz's own actors in the audit log.
RESERVED_NAMES = frozenset({"system", "unknown", "anonymous"})


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _aware(ts: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; PathViz stores UTC."""
    if ts is None:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_username(username: str) -> str:
    """Normalise and check a username (1-64 of ``a-z 0-9 . _ -``, starting with a letter or digit).

    Raises:
        AuthError: a name outside those rules.
    """
    name = (username or "").strip().lower()
    if not _USERNAME.fullmatch(name):
        raise AuthError(f"Invalid username {username!r}.",
                        "use 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit.")
    if name in RESERVED_NAMES:
        raise AuthError(f"The username {name!r} is reserved for PathViz's own actions.", "choose another username.")
    return name


@dataclass(frozen=True)
class UserInfo:
    """A user as shown to admins (never the password hash)."""

    username: str
    display_name: str
    roles: tuple[str, ...]
    active: bool
    locked_until: datetime | None
    must_change_password: bool
    created_at: datetime
    last_login_at: datetime | None

    @classmethod
    def of(cls, u: User) -> "UserInfo":
        return cls(u.username, u.display_name, tuple(sorted(parse_roles(u.roles))), bool(u.active), _aware(u.locked_until),
                   bool(u.must_change_password), _aware(u.created_at), _aware(u.last_login_at))


def _actor(u: User) -> Actor:
    return Actor(u.username, parse_roles(u.roles), "user", bool(u.must_change_password))


class Accounts:
    """The users and sessions of a workspace database.

    Args:
        db: the workspace :class:`~pathviz.store.db.Database`.
    """

    def __init__(self, db: Database):
        self.db = db
        self.audit = AuditLog(db)
        self._cache: dict[str, tuple[float, Actor, float]] = {}  # token hash -> (checked at, actor, touched at)
        self._lock = threading.Lock()

    # -- users ----------------------------------------------------------------------------------
    def count(self) -> int:
        """Number of accounts."""
        return len(self.db._read(lambda s: list(s.scalars(select(User.username)))))

    def users(self, actor: Actor) -> list[UserInfo]:
        """Every account, by username (admins only).

        Raises:
            PermissionDeniedError: the actor may not manage users.
        """
        require(actor, "users.manage", "list users")
        return [UserInfo.of(u) for u in self.db._read(lambda s: list(s.scalars(select(User).order_by(User.username))))]

    def get(self, username: str) -> UserInfo | None:
        u = self.db._read(lambda s: s.get(User, (username or "").strip().lower()))
        return UserInfo.of(u) if u else None

    def create_user(self, actor: Actor, username: str, password: str, roles, display_name: str = "",
                    must_change_password: bool = True) -> UserInfo:
        """Create an account (admins only); audited as ``user.created``.

        Args:
            actor: who creates it.
            username: see :func:`check_username`.
            password: the initial password (:func:`~pathviz.auth.passwords.check_password_rules`).
            roles: comma-separated or iterable subset of :data:`~pathviz.auth.policy.ROLES` (at least one).
            must_change_password: the user must choose a new password at first login (default).

        Raises:
            PermissionDeniedError: the actor may not manage users. AuthError: invalid name or
            roles, or the name is taken. PathVizError: the password breaks the rules.
        """
        require(actor, "users.manage", "create users")
        name = check_username(username)
        role_set = parse_roles(roles)
        if not role_set:
            raise AuthError("A user needs at least one role.", "give one or more of pathologist, oncologist, researcher, admin.")
        check_password_rules(password, name)
        user = self._insert(name, password, role_set, display_name, must_change_password)
        self.audit.record(actor, "user.created", "user", name, {"roles": sorted(role_set)})
        return user

    def _insert(self, name: str, password: str, roles: frozenset[str], display_name: str, must_change: bool) -> UserInfo:
        pw_hash = hash_password(password)

        def insert(s: Session) -> User:
            u = User(username=name, display_name=(display_name or "")[:128], password_hash=pw_hash,
                     roles=",".join(sorted(roles)), active=1, must_change_password=int(must_change), failed_logins=0,
                     created_at=_now(), password_changed_at=_now())
            s.add(u)
            s.flush()
            return u

        try:
            return UserInfo.of(self.db.write(insert))
        except IntegrityError:
            raise AuthError(f"The username {name!r} is taken.", "choose another username.") from None

    def _change(self, username: str, **values) -> User:
        name = (username or "").strip().lower()

        def change(s: Session) -> User | None:
            u = s.get(User, name)
            if u is None:
                return None
            for k, v in values.items():
                setattr(u, k, v)
            s.flush()
            return u

        u = self.db.write(change)
        if u is None:
            raise AuthError(f"No user {name!r}.", "check the name in the user list (pathviz users list).")
        self._forget_sessions()
        return u

    def set_roles(self, actor: Actor, username: str, roles) -> UserInfo:
        """Replace a user's roles (admins only); audited as ``user.roles_changed`` with before/after.

        Raises:
            PermissionDeniedError; AuthError: unknown user or role, no role left, or the last
            active admin would lose the admin role.
        """
        require(actor, "users.manage", "change roles")
        role_set = parse_roles(roles)
        if not role_set:
            raise AuthError("A user needs at least one role.", "disable the account instead of removing every role.")
        before = self.get(username)
        if before is None:
            raise AuthError(f"No user {username!r}.", "check the name in the user list.")
        if "admin" in before.roles and "admin" not in role_set:
            self._keep_an_admin(before.username)
        self._change(before.username, roles=",".join(sorted(role_set)))
        self.audit.record(actor, "user.roles_changed", "user", before.username,
                          {"before": list(before.roles), "after": sorted(role_set)})
        return self.get(before.username)

    def set_active(self, actor: Actor, username: str, active: bool) -> UserInfo:
        """Enable or disable an account (admins only); disabling ends its sessions. Audited.

        Raises:
            PermissionDeniedError; AuthError: unknown user, or the last active admin.
        """
        require(actor, "users.manage", "enable or disable users")
        before = self.get(username)
        if before is None:
            raise AuthError(f"No user {username!r}.", "check the name in the user list.")
        if not active and "admin" in before.roles:
            self._keep_an_admin(before.username)
        self._change(before.username, active=int(bool(active)), failed_logins=0, locked_until=None)
        if not active:
            self._revoke_all(before.username)
        self.audit.record(actor, "user.enabled" if active else "user.disabled", "user", before.username)
        return self.get(before.username)

    def reset_password(self, actor: Actor, username: str, new_password: str) -> UserInfo:
        """Set a one-time password for a user (admins only): must be changed at next login; ends
        the user's sessions and clears a lockout. Audited as ``user.password_reset``."""
        require(actor, "users.manage", "reset passwords")
        before = self.get(username)
        if before is None:
            raise AuthError(f"No user {username!r}.", "check the name in the user list.")
        check_password_rules(new_password, before.username)
        self._change(before.username, password_hash=hash_password(new_password), must_change_password=1,
                     password_changed_at=_now(), failed_logins=0, locked_until=None)
        self._revoke_all(before.username)
        self.audit.record(actor, "user.password_reset", "user", before.username)
        return self.get(before.username)

    def change_password(self, actor: Actor, old_password: str, new_password: str) -> None:
        """A user changes their own password (the old one is required); other sessions end.

        Raises:
            AuthError: the old password is wrong, or the new one equals it. PathVizError: rules.
        """
        u = self.db._read(lambda s: s.get(User, actor.username))
        if u is None or not verify_password(u.password_hash, old_password):
            self.audit.record(actor, "user.password_change_failed", "user", actor.username)
            raise AuthError("The current password is wrong.", "type your current password again.")
        if old_password == new_password:
            raise AuthError("The new password is the same as the current one.", "choose a different password.")
        check_password_rules(new_password, actor.username)
        self._change(actor.username, password_hash=hash_password(new_password), must_change_password=0,
                     password_changed_at=_now())
        self.audit.record(actor, "user.password_changed", "user", actor.username)

    def _keep_an_admin(self, username: str) -> None:
        admins = [u for u in self.db._read(lambda s: list(s.scalars(select(User).where(User.active == 1))))
                  if "admin" in parse_roles(u.roles) and u.username != username]
        if not admins:
            raise AuthError(f"{username} is the last active admin.", "make another user admin first.")

    # -- login, sessions -------------------------------------------------------------------
    def _check_password(self, username: str, password: str, client: str) -> User:
        """The user whose password this is; otherwise AuthError (one message), audited.

        Lockout without races: each attempt on an existing, active account is first *reserved*
        in one ``BEGIN IMMEDIATE`` transaction (refused if locked; else the failure counter goes up
        and the account locks when it reaches :data:`MAX_FAILED_LOGINS`), and only then is the
        password verified; a success resets the counter and the lock. So parallel attempts
        cannot all slip past the lock check, and an attacker gets :data:`MAX_FAILED_LOGINS`
        guesses per :data:`LOCKOUT_MINUTES`. Unknown and disabled accounts cost the same argon2
        verification and the same kind of write transaction (no enumeration by timing).
        """
        name = (username or "").strip().lower()[:64]
        valid = bool(_USERNAME.fullmatch(name))
        u = self.db._read(lambda s: s.get(User, name)) if valid else None
        reason = ""
        if u is None or not u.active:
            self.db.write(lambda s: None)  # same cost as a reservation
            verify_password(dummy_hash(), password or "")
            reason = "unknown user" if u is None else "disabled"
        else:
            def reserve(s: Session) -> bool:
                row = s.get(User, name)
                now = _now()
                if _aware(row.locked_until) and _aware(row.locked_until) > now:
                    return False
                row.failed_logins = (row.failed_logins or 0) + 1
                if row.failed_logins >= MAX_FAILED_LOGINS:
                    row.locked_until = now + timedelta(minutes=LOCKOUT_MINUTES)
                    row.failed_logins = 0
                return True

            if not self.db.write(reserve):
                verify_password(dummy_hash(), password or "")
                reason = "locked"
            elif not verify_password(u.password_hash, password or ""):
                reason = "wrong password"
        if reason:
            who = name if valid else "(invalid name)"  # never free text typed by a stranger in the log
            self.audit.record(who, "login.failed", "user", who, {"reason": reason, "client": client[:64]})
            raise AuthError(LOGIN_REFUSED, f"check the username and password; after {MAX_FAILED_LOGINS} failed attempts "
                            f"an account is locked for {LOCKOUT_MINUTES} minutes; an admin can reset it.")
        values = {"failed_logins": 0, "locked_until": None, "last_login_at": _now()}
        if needs_rehash(u.password_hash):
            values["password_hash"] = hash_password(password)
        self.db.write(lambda s: s.execute(update(User).where(User.username == name).values(**values)))
        return u

    def login(self, username: str, password: str, client: str = "") -> tuple[str, Actor]:
        """Check a password and open a browser session.

        Args:
            username / password: as typed.
            client: where the attempt came from (IP address), recorded in the audit log.

        Returns:
            ``(token, actor)``: keep the token in an HttpOnly cookie; only its hash is stored.

        Raises:
            AuthError: :data:`LOGIN_REFUSED` for every kind of failure (unknown user, wrong
                password, locked, disabled); the audit log records which (``login.failed``).
        """
        u = self._check_password(username, password, client)
        token, now = secrets.token_urlsafe(32), _now()
        self.db.write(lambda s: s.add(AuthSession(token_sha256=token_sha256(token), username=u.username, created_at=now,
                                                  last_seen_at=now, expires_at=now + timedelta(hours=SESSION_HOURS))))
        actor = _actor(u)
        self.audit.record(actor, "login", "user", u.username, {"client": client})
        return token, actor

    def authenticate(self, username: str, password: str, client: str = "cli") -> Actor:
        """Check a password without opening a session (the CLI's ``--user``); audited as ``login``
        with the client, failures exactly as :meth:`login`.

        Raises:
            AuthError: as :meth:`login`; also while a one-time password is still unchanged.
        """
        u = self._check_password(username, password, client)
        actor = _actor(u)
        if actor.must_change_password:
            raise AuthError(f"{u.username} still has a one-time password.", "log in to the dashboard once and choose a new one.")
        self.audit.record(actor, "login", "user", u.username, {"client": client})
        return actor

    def cached_actor(self, token: str | None) -> Actor | None:
        """The actor of a token checked less than :data:`CACHE_S` seconds ago, else None (no
        database access: for the request path; fall back to :meth:`session_actor`)."""
        if not token:
            return None
        with self._lock:
            hit = self._cache.get(token_sha256(token))
        return hit[1] if hit is not None and time.monotonic() - hit[0] < CACHE_S else None

    def session_actor(self, token: str | None, use_cache: bool = True) -> Actor | None:
        """The actor of a live session token; None when missing, unknown, revoked, expired (idle or
        absolute) or its user is disabled. Refreshes the idle timer (at most every
        :data:`TOUCH_EVERY_S` seconds). ``use_cache``: answer from a :data:`CACHE_S`-second cache
        (the request path of tiles); pages pass False and always ask the database."""
        if not token:
            return None
        key = token_sha256(token)
        mono = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if use_cache and hit is not None and mono - hit[0] < CACHE_S:
            return hit[1]

        def look(s: Session):
            row = s.get(AuthSession, key)
            return (row, s.get(User, row.username)) if row is not None else (None, None)

        row, u = self.db._read(look)
        now = _now()
        if (row is None or u is None or row.revoked_at is not None or not u.active
                or _aware(row.expires_at) <= now or _aware(row.last_seen_at) + timedelta(minutes=IDLE_MINUTES) <= now):
            with self._lock:
                self._cache.pop(key, None)
            return None
        actor = _actor(u)
        touched = hit[2] if hit is not None else 0.0
        if mono - touched >= TOUCH_EVERY_S and not self.db.read_only:
            self.db.write(lambda s: s.execute(update(AuthSession).where(AuthSession.token_sha256 == key)
                                              .values(last_seen_at=now)))
            touched = mono
        with self._lock:
            self._cache[key] = (mono, actor, touched)
        return actor

    def logout(self, token: str | None) -> None:
        """End a session (idempotent); audited as ``logout``."""
        if not token:
            return
        key = token_sha256(token)
        actor = self.session_actor(token)

        def revoke(s: Session) -> int:
            return s.execute(update(AuthSession).where(AuthSession.token_sha256 == key, AuthSession.revoked_at.is_(None))
                             .values(revoked_at=_now())).rowcount

        n = self.db.write(revoke)
        with self._lock:
            self._cache.pop(key, None)
        if n and actor is not None:
            self.audit.record(actor, "logout", "user", actor.username)

    def _revoke_all(self, username: str) -> None:
        self.db.write(lambda s: s.execute(update(AuthSession).where(AuthSession.username == username,
                                                                    AuthSession.revoked_at.is_(None))
                                          .values(revoked_at=_now())))
        self._forget_sessions()

    def _forget_sessions(self) -> None:
        with self._lock:
            self._cache.clear()

    # -- first start --------------------------------------------------------------------------
    def ensure_first_admin(self, home: str | Path, echo: bool = True) -> str | None:
        """With no account at all, create ``admin`` (roles admin) and return where its password is.

        The password is ``PATHVIZ_ADMIN_PASSWORD`` when set (then no change is forced), else a
        random one-time password (must be changed at first login) printed to the console (stderr)
        and written to ``<home>/admin-initial-password.txt``, readable only by the owner (mode
        0600). Safe when several processes start at once (one creates, the others see the user).

        Returns:
            A message for the console, or None when accounts already exist.
        """
        if self.count():
            return None
        given = os.environ.get("PATHVIZ_ADMIN_PASSWORD", "")
        password = given or secrets.token_urlsafe(15)
        if given:
            check_password_rules(given, FIRST_ADMIN)
        try:
            self._insert(FIRST_ADMIN, password, frozenset({"admin"}), "Administrator", must_change=not given)
        except AuthError:
            return None  # another process created it first
        self.audit.record("system", "user.created", "user", FIRST_ADMIN, {"roles": ["admin"], "first_start": True})
        if given:
            msg = "[pathviz] First start: created user 'admin' with the password from PATHVIZ_ADMIN_PASSWORD."
        else:
            path = Path(home) / INITIAL_PASSWORD_FILE
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, f"username: {FIRST_ADMIN}\npassword: {password}\n".encode())
            finally:
                os.close(fd)
            msg = (f"[pathviz] First start: created user 'admin' with one-time password {password} "
                   f"(also in {path}, readable only by you). Log in and choose a new password; then delete the file.")
        if echo:
            print(msg, file=sys.stderr, flush=True)
        return msg
