"""Account page: who you are, your roles, password change, logout."""

from __future__ import annotations

import streamlit as st

from pages.ui.auth import logout_url, password_form, require_login
from pathviz.auth.accounts import IDLE_MINUTES, SESSION_HOURS

actor = require_login()
st.title("Account")
st.markdown(f"**{actor.username}** · roles: {actor.roles_text or 'none'}")
st.caption(f"Roles are given by an admin (Admin › Users and audit). Sessions end at logout, after {IDLE_MINUTES:g} minutes "
           f"without activity (PATHVIZ_SESSION_IDLE_MINUTES) and after {SESSION_HOURS:g} hours in any case "
           "(PATHVIZ_SESSION_HOURS).")
st.subheader("Change password")
password_form(actor)
st.markdown(f'<a href="{logout_url()}" target="_self" data-testid="pv-logout-account">Log out</a>', unsafe_allow_html=True)
