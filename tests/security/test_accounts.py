"""Accounts and roles (trust issue, item 1): argon2 hashes, lockout, session expiry, the first
admin's one-time password, and permissions enforced by the backend (job API, registry, reviews,
CLI), not only by hidden pages."""

from __future__ import annotations

import os
import sqlite3
import stat
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from conftest import TEST_PASSWORD, login_token, make_user
from pathviz.auth import accounts as acc_mod
from pathviz.auth.accounts import LOGIN_REFUSED, MAX_FAILED_LOGINS
from pathviz.auth.policy import AuthError, PermissionDeniedError, operator
from pathviz.cli import main
from pathviz.jobs.queue import JobQueue
from pathviz.store.models import AuthSession, User

OP = operator()


def test_passwords_are_argon2id_hashes_never_plain(ws):
    make_user(ws, "ana", "pathologist")
    raw = sqlite3.connect(ws.settings.home / "pathviz.db").execute("SELECT password_hash FROM users").fetchone()[0]
    assert raw.startswith("$argon2id$") and TEST_PASSWORD not in raw
    with pytest.raises(Exception, match="shorter than 12"):
        ws.accounts.create_user(OP, "bob", "short", "oncologist")
    with pytest.raises(Exception, match="contains the username"):
        ws.accounts.create_user(OP, "bob", "bob-is-my-password", "oncologist")
    with pytest.raises(AuthError, match="Unknown role"):
        ws.accounts.create_user(OP, "bob", TEST_PASSWORD, "surgeon")
    with pytest.raises(AuthError, match="taken"):
        ws.accounts.create_user(OP, "ana", TEST_PASSWORD, "oncologist")


def test_lockout_after_repeated_failures_and_one_message_for_all(ws):
    make_user(ws, "ana", "pathologist")
    messages = set()
    for _ in range(MAX_FAILED_LOGINS):
        with pytest.raises(AuthError) as err:
            ws.accounts.login("ana", "wrong password!!", "10.0.0.9")
        messages.add(err.value.message)
    with pytest.raises(AuthError) as err:  # the right password, but locked now
        ws.accounts.login("ana", TEST_PASSWORD)
    messages.add(err.value.message)
    with pytest.raises(AuthError) as err:  # an unknown user: the same answer (no enumeration)
        ws.accounts.login("nobody", TEST_PASSWORD)
    messages.add(err.value.message)
    assert messages == {LOGIN_REFUSED}
    info = ws.accounts.get("ana")
    assert info.locked_until is not None and info.locked_until > datetime.now(timezone.utc) + timedelta(minutes=14)
    reasons = [r["details"] for r in ws.audit.search(OP, action="login.failed")]
    assert sum('"wrong password"' in d for d in reasons) == MAX_FAILED_LOGINS
    assert any('"locked"' in d for d in reasons) and any('"unknown user"' in d for d in reasons)
    ws.accounts.reset_password(OP, "ana", "a brand new passphrase")  # an admin clears the lockout
    token, actor = ws.accounts.login("ana", "a brand new passphrase")
    assert actor.must_change_password  # a reset password is one-time


def test_session_idle_and_absolute_expiry_logout_and_disable(ws, monkeypatch):
    token = login_token(ws, "ana", ("pathologist",))
    assert ws.accounts.session_actor(token).username == "ana"
    ws.accounts._forget_sessions()
    key = acc_mod.token_sha256(token)
    old = datetime.now(timezone.utc) - timedelta(minutes=acc_mod.IDLE_MINUTES + 1)
    ws.db.write(lambda s: s.execute(update(AuthSession).where(AuthSession.token_sha256 == key).values(last_seen_at=old)))
    assert ws.accounts.session_actor(token) is None  # idle too long
    token = login_token(ws, "ana")
    key = acc_mod.token_sha256(token)
    ws.db.write(lambda s: s.execute(update(AuthSession).where(AuthSession.token_sha256 == key)
                                    .values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))))
    ws.accounts._forget_sessions()
    assert ws.accounts.session_actor(token) is None  # past the absolute limit
    token = login_token(ws, "ana")
    ws.accounts.logout(token)
    assert ws.accounts.session_actor(token) is None
    token = login_token(ws, "ana")
    ws.accounts.set_active(OP, "ana", False)
    assert ws.accounts.session_actor(token) is None  # disabling ends the sessions at once
    with pytest.raises(AuthError):
        ws.accounts.login("ana", TEST_PASSWORD)
    assert ws.accounts.session_actor("forged-token") is None and ws.accounts.session_actor(None) is None
    stored = sqlite3.connect(ws.settings.home / "pathviz.db").execute("SELECT token_sha256 FROM auth_sessions").fetchall()
    assert all(token not in row[0] for row in stored)  # only hashes of tokens are stored


def test_first_start_creates_admin_with_an_owner_only_one_time_password(ws, monkeypatch, capsys):
    monkeypatch.delenv("PATHVIZ_ADMIN_PASSWORD", raising=False)
    msg = ws.accounts.ensure_first_admin(ws.home)
    err = capsys.readouterr().err
    path = ws.home / acc_mod.INITIAL_PASSWORD_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    password = path.read_text().split("password: ")[1].strip()
    assert password in err and str(path) in msg
    _, actor = ws.accounts.login("admin", password)
    assert actor.roles == {"admin"} and actor.must_change_password
    assert ws.accounts.ensure_first_admin(ws.home) is None  # only once
    ws.accounts.change_password(actor, password, "my own root passphrase")
    assert not ws.accounts.login("admin", "my own root passphrase")[1].must_change_password


def test_first_admin_password_from_the_environment(ws, monkeypatch):
    monkeypatch.setenv("PATHVIZ_ADMIN_PASSWORD", "chosen by the installer")
    ws.accounts.ensure_first_admin(ws.home, echo=False)
    assert not (ws.home / acc_mod.INITIAL_PASSWORD_FILE).exists()
    assert ws.accounts.login("admin", "chosen by the installer")[1].can("users.manage")


def test_last_admin_cannot_be_removed(ws):
    make_user(ws, "root2", "admin")
    with pytest.raises(AuthError, match="last active admin"):
        ws.accounts.set_roles(OP, "root2", "pathologist")
    with pytest.raises(AuthError, match="last active admin"):
        ws.accounts.set_active(OP, "root2", False)


def test_backend_refuses_a_pathologist_jobs_models_and_users(ws):
    token = login_token(ws, "pat", ("pathologist",))
    pat = ws.accounts.session_actor(token)
    queue = JobQueue(ws.db, ws.home)
    with pytest.raises(PermissionDeniedError, match="pat \\(pathologist\\) may not submit jobs"):
        queue.submit("verify_models", actor=pat)
    job = queue.submit("verify_models", actor=OP)
    with pytest.raises(PermissionDeniedError):
        queue.cancel(job.id, actor=pat)
    with pytest.raises(PermissionDeniedError):
        ws.registry().rollback("pagenet/demo", actor=pat)
    with pytest.raises(PermissionDeniedError):
        ws.accounts.create_user(pat, "mallory", TEST_PASSWORD, "admin")
    with pytest.raises(PermissionDeniedError):
        ws.audit.search(pat)
    queue.cancel(job.id, actor=OP)
    assert [j.submitted_by for j in queue.list()] == [OP.username]


def test_cli_as_a_pathologist_is_refused_and_as_admin_works(ws, monkeypatch, capsys):
    make_user(ws, "pat", "pathologist")
    make_user(ws, "boss", "admin")
    monkeypatch.setenv("PATHVIZ_PASSWORD", TEST_PASSWORD)
    assert main(["--user", "pat", "jobs", "submit", "verify_models", "--no-worker"]) == 2
    assert "pat (pathologist) may not submit jobs" in capsys.readouterr().err
    assert main(["--user", "pat", "users", "add", "eve", "--roles", "admin"]) == 2
    assert ws.accounts.get("eve") is None
    monkeypatch.setenv("PATHVIZ_PASSWORD", "not the password")
    assert main(["--user", "boss", "users", "list"]) == 2
    assert LOGIN_REFUSED in capsys.readouterr().err
    monkeypatch.setenv("PATHVIZ_PASSWORD", TEST_PASSWORD)
    assert main(["--user", "boss", "jobs", "submit", "verify_models", "--no-worker"]) == 0
    assert main(["--user", "boss", "users", "add", "eve", "--roles", "oncologist,researcher"]) == 0
    out = capsys.readouterr().out
    assert "one-time password" in out and ws.accounts.get("eve").roles == ("oncologist", "researcher")
    rows = ws.audit.search(OP)
    assert ("boss", "user.created") in {(r["username"], r["action"]) for r in rows}
    assert ("boss", "job.submitted") in {(r["username"], r["action"]) for r in rows}
    assert JobQueue(ws.db, ws.home).list()[0].submitted_by == "boss"


def test_parallel_guesses_cannot_slip_past_the_lockout(ws):
    """30 wrong passwords at once: attempts are reserved before the (slow) argon2 check, so at most
    MAX_FAILED_LOGINS are verified and the right password is refused afterwards."""
    from concurrent.futures import ThreadPoolExecutor

    make_user(ws, "ana", "pathologist")

    def guess(i):
        try:
            ws.accounts.login("ana", f"wrong guess number {i}")
        except AuthError:
            pass

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(guess, range(30)))
    rows = ws.audit.search(OP, action="login.failed")
    assert sum('"wrong password"' in r["details"] for r in rows) == MAX_FAILED_LOGINS
    assert sum('"locked"' in r["details"] for r in rows) == 30 - MAX_FAILED_LOGINS
    with pytest.raises(AuthError):
        ws.accounts.login("ana", TEST_PASSWORD)


def test_strangers_cannot_write_free_text_or_reserved_names_into_the_log(ws):
    with pytest.raises(AuthError):
        ws.accounts.login("evil\n2026-11-23  admin  user.created", "whatever password")
    row = ws.audit.search(OP, action="login.failed")[0]
    assert row["username"] == "(invalid name)" and "evil" not in row["object_id"]
    with pytest.raises(AuthError, match="reserved"):
        ws.accounts.create_user(OP, "system", TEST_PASSWORD, "researcher")


def test_gene_sets_from_a_server_path_are_for_admins_only(ws, tmp_path):
    from pathviz.jobs.coxpasnet import add_user_gmt

    gmt = tmp_path / "sets.gmt"
    gmt.write_text("".join(f"SET{k}\tdesc\t" + "\t".join(f"G{k}_{i}" for i in range(20)) + "\n" for k in range(3)))
    researcher = ws.accounts.session_actor(login_token(ws, "res", ("researcher",)))
    with pytest.raises(PermissionDeniedError, match="read gene-set files from paths on the server"):
        add_user_gmt(ws, None, str(gmt), actor=researcher)
    assert add_user_gmt(ws, gmt.read_bytes(), "sets.gmt", actor=researcher).exists()  # uploads are fine
    assert add_user_gmt(ws, None, str(gmt), actor=OP).exists()
