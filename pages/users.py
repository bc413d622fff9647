"""Admin page: accounts (create, roles, disable/enable, reset password) and the audit log (search,
export, chain check). Every change here is itself audited."""

from __future__ import annotations

from datetime import datetime, time, timezone

import pandas as pd
import streamlit as st

from pages.ui.auth import acting, require_page
from pages.ui.context import workspace
from pathviz.auth.audit import rows_csv
from pathviz.auth.policy import ROLES
from pathviz.errors import PathVizError

actor = require_page("users.manage", "Users and audit")
ws = workspace()
accounts = ws.accounts
state = st.session_state
st.title("Users and audit")

# -- users -------------------------------------------------------------------------------------
st.subheader("Users")
if state.get("usr_flash"):
    st.success(state.pop("usr_flash"))
users = accounts.users(actor)
now = datetime.now(timezone.utc)
st.dataframe(pd.DataFrame([{
    "username": u.username, "name": u.display_name, "roles": ", ".join(u.roles), "active": u.active,
    "locked": bool(u.locked_until and u.locked_until > now), "must change password": u.must_change_password,
    "last login (UTC)": u.last_login_at.strftime("%Y-%m-%d %H:%M") if u.last_login_at else "",
} for u in users]), hide_index=True, width="stretch", key="usr_table")
st.caption("Users: " + " · ".join(f"{u.username} ({', '.join(u.roles)})" for u in users))


def _one_time(msg: str, password: str) -> None:
    state["usr_flash"] = f"{msg} One-time password (shown once; the user must change it at first login): {password}"


c1, c2 = st.columns(2)
with c1.form("usr_add", clear_on_submit=True):
    st.markdown("**New user**")
    name = st.text_input("Username", key="usr_name", help="lowercase letters, digits, '.', '_' or '-'")
    display = st.text_input("Full name", key="usr_display")
    roles = st.multiselect("Roles", ROLES, key="usr_roles")
    if st.form_submit_button("Create user", type="primary"):
        import secrets

        pw = secrets.token_urlsafe(12)
        try:
            u = accounts.create_user(actor, name, pw, roles, display)
            _one_time(f"Created {u.username} ({', '.join(u.roles)}).", pw)
            st.rerun()
        except PathVizError as exc:
            st.error(str(exc))
with c2.form("usr_edit"):
    st.markdown("**Change a user**")
    who = st.selectbox("User", [u.username for u in users], key="usr_who")
    current = next((u for u in users if u.username == who), None)
    new_roles = st.multiselect("Roles", ROLES, default=list(current.roles) if current else [], key=f"usr_roles_{who}")
    action = st.radio("Change", ["set roles", "disable", "enable", "reset password"], horizontal=True, key="usr_action")
    if st.form_submit_button("Apply"):
        try:
            if action == "set roles":
                accounts.set_roles(actor, who, new_roles)
                state["usr_flash"] = f"{who}: roles now {', '.join(sorted(new_roles))}."
            elif action in ("disable", "enable"):
                accounts.set_active(actor, who, action == "enable")
                state["usr_flash"] = f"{who} {action}d."
            else:
                import secrets

                pw = secrets.token_urlsafe(12)
                accounts.reset_password(actor, who, pw)
                _one_time(f"{who}: password reset, sessions ended.", pw)
            st.rerun()
        except PathVizError as exc:
            st.error(str(exc))

# -- audit log ---------------------------------------------------------------------------------
st.subheader("Audit log")
st.caption("Append-only and hash-chained: each row's hash covers the previous row's, so an edited, deleted or "
           "reordered row is detected (`pathviz audit verify`, or the button below).")
f1, f2, f3, f4, f5 = st.columns([1, 1, 1.4, 1, 1])
who_f = f1.selectbox("User", [""] + sorted({u.username for u in users}), key="aud_user", format_func=lambda v: v or "anyone")
action_f = f2.text_input("Action starts with", key="aud_action", placeholder="login, review, job…")
text_f = f3.text_input("Object or details contain", key="aud_text")
since = f4.date_input("From (UTC)", value=None, key="aud_since")
until = f5.date_input("To (UTC)", value=None, key="aud_until")
rows = ws.audit.search(actor, username=who_f, action=action_f.strip(), text=text_f.strip(),
                       since=datetime.combine(since, time.min, timezone.utc) if since else None,
                       until=datetime.combine(until, time.max, timezone.utc) if until else None, limit=1000)
st.caption(f"{len(rows)} row{'s' if len(rows) != 1 else ''} (newest first, at most 1000)")
st.dataframe(pd.DataFrame(rows, columns=["id", "at", "username", "roles", "action", "object_type", "object_id", "details"]),
             hide_index=True, width="stretch", key="aud_table")
st.text("\n".join(f"{r['at'][:19]}  {r['username']}  {r['action']}  {r['object_type']}:{r['object_id']}"
                  for r in rows[:15]))  # plain text (the newest rows), also for screen readers and tests
a1, a2 = st.columns(2)
a1.download_button("Export CSV", rows_csv(rows), file_name="pathviz_audit.csv", mime="text/csv", key="aud_csv",
                   on_click=lambda n=len(rows): (me := acting("audit.read")) and ws.audit.record(me, "audit.exported",
                                                                                             "audit_log", "", {"rows": n}))
if a2.button("Verify the chain", key="aud_verify"):
    rep = ws.audit.verify()
    if rep.ok:
        st.success(f"Intact: {rep.rows} rows; head hash {rep.head_hash}.")
    else:
        st.error(f"Broken at row {rep.first_bad_id}: {rep.reason}.")
