"""Who is logged in, for the pages: every page calls :func:`require_page` first.

The user comes from the session cookie the login form set (:data:`pathviz.auth.web.COOKIE`, read
through ``st.context.cookies``) and is checked against the database on every script run
(:meth:`pathviz.auth.accounts.Accounts.session_actor`: logout, expiry and disabling take effect at
the next interaction). Tests that run a page with ``AppTest`` log in with a real account and put
the token in ``st.session_state[TOKEN_KEY]`` (only server code can write session state).
Pages check permissions themselves, so a page opened by its URL is gated like one opened from the
navigation.
"""

from __future__ import annotations

import streamlit as st

from pages.ui.context import workspace
from pathviz.auth.accounts import IDLE_MINUTES
from pathviz.auth.policy import PERMISSIONS, Actor
from pathviz.auth.web import COOKIE, SESSION_PATH
from pathviz.errors import PathVizError

TOKEN_KEY = "_pathviz_token"


def _base() -> str:
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}" if base else ""


def login_url() -> str:
    return f"{_base()}/{SESSION_PATH}/login"


def logout_url() -> str:
    return f"{_base()}/{SESSION_PATH}/logout"


def session_token() -> str | None:
    """This browser session's token (tests: session state; the app: the session cookie)."""
    token = st.session_state.get(TOKEN_KEY)
    if token:
        return token
    try:
        value = st.context.cookies.get(COOKIE)
    except Exception:  # noqa: BLE001 - no request context (bare script run)
        return None
    return value if isinstance(value, str) and value else None


def current_actor() -> Actor | None:
    """The logged-in user of this browser session, or None."""
    return workspace().accounts.session_actor(session_token(), use_cache=False)  # pages always ask the database


def _link(label: str, href: str, testid: str) -> None:
    st.markdown(f'<a href="{href}" target="_self" data-testid="{testid}">{label}</a>', unsafe_allow_html=True)


def require_login() -> Actor:
    """The logged-in user; without one, a short notice with a link to the login form (stops the script)."""
    actor = current_actor()
    if actor is None:
        st.session_state.pop("_auth_flash", None)
        st.title("PathViz")
        st.warning(f"You are not logged in, or your session has ended (logout, {IDLE_MINUTES:g} minutes without "
                   "activity, or the account was disabled).")
        _link("Log in", login_url(), "pv-login-link")
        st.stop()
    return actor


def password_form(actor: Actor, forced: bool = False) -> None:
    """The password change form (a one-time password must be changed before any page opens)."""
    if forced:
        st.title("Choose a new password")
        st.info(f"Welcome, {actor.username}. You logged in with a one-time password; choose your own to continue.")
    with st.form("pv_password"):
        old = st.text_input("Current password", type="password", key="pv_pw_old")
        new = st.text_input("New password (at least 12 characters)", type="password", key="pv_pw_new")
        again = st.text_input("New password again", type="password", key="pv_pw_again")
        go = st.form_submit_button("Change password", type="primary")
    if go:
        if new != again:
            st.error("The two new passwords differ; type them again.")
            return
        try:
            workspace().accounts.change_password(actor, old, new)
        except PathVizError as exc:
            st.error(str(exc))
            return
        st.success("Password changed.")
        if forced:
            st.rerun()


def require_page(permission: str, title: str) -> Actor:
    """The logged-in user, when allowed ``permission``; otherwise the login link, the forced password
    change, or a refusal naming the roles that would open ``title`` (each stops the script)."""
    actor = require_login()
    if actor.must_change_password:
        password_form(actor, forced=True)
        st.stop()
    flash = st.session_state.pop("_auth_flash", None)
    if flash:
        st.error(flash)
    if not actor.can(permission):
        st.title(title)
        roles = " or ".join(sorted(PERMISSIONS[permission]))
        st.error(f"{title} is for the {roles} role; {actor.username} holds {actor.roles_text or 'no role'}. "
                 "Ask an admin if you need it.")
        st.stop()
    return actor


def acting(permission: str) -> Actor | None:
    """The user for a button callback or a fragment rerun, checked again now: callbacks run before
    the page's own :func:`require_page` and fragments rerun without it, so a session that ended
    (logout, expiry, disabled account, role removed) since the page was drawn must act as nobody.
    Returns None (and leaves a flash message) when the session or the permission is gone."""
    actor = current_actor()
    if actor is None or actor.must_change_password or not actor.can(permission):
        st.session_state["_auth_flash"] = "Your session has ended or no longer allows this; nothing was done."
        return None
    return actor


def sidebar_identity(actor: Actor) -> None:
    """Who is logged in, with the logout link (sidebar)."""
    with st.sidebar:
        st.caption(f"Logged in as **{actor.username}** ({actor.roles_text})")
        _link("Log out", logout_url(), "pv-logout")
