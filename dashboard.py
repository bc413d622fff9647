"""PathViz dashboard script: what every browser session runs (``app.py``'s ``st.App`` serves it).

Only logged-in users get here (``app.py``'s login gate redirects everyone else to the login form;
this script checks the session again, and each page checks its own permission). A one-time
password must be changed first. On first start the demo build runs as a background job and its
progress is shown; then the navigation lists the pages of the user's roles only.
Test it directly, e.g. ``AppTest.from_file("dashboard.py")`` with a logged-in token in
``session_state`` (:data:`pages.ui.auth.TOKEN_KEY`).
"""

from __future__ import annotations

import streamlit as st

from pages.ui.auth import password_form, require_login, sidebar_identity
from pages.ui.context import workspace
from pages.ui.startup import first_start

st.set_page_config(page_title="PathViz", page_icon="🔬", layout="wide")

ws = workspace()
actor = require_login()
if actor.must_change_password:
    password_form(actor, forced=True)
    st.stop()
first_start(ws)  # first start: the demo build runs as a background job; its progress is shown here
sidebar_identity(actor)

#: (group, permission, page) in navigation order; a group shows when the user holds the permission.
PAGES = [
    ("Pathologist", "slides.view", st.Page("pages/slide_viewer.py", title="Slide viewer", icon="🔬")),
    ("Oncologist", "patients.view", st.Page("pages/patient.py", title="Patient risk", icon="📈")),
    ("Researcher", "pathways.view", st.Page("pages/pathways.py", title="Pathways", icon="🧬")),
    ("Admin", "jobs.manage", st.Page("pages/admin.py", title="Models and jobs", icon="⚙️")),
    ("Admin", "slides.manage", st.Page("pages/workspace.py", title="Workspace", icon="🗂️")),
    ("Admin", "users.manage", st.Page("pages/users.py", title="Users and audit", icon="👥")),
]
nav: dict[str, list] = {}
for group, permission, page in PAGES:
    if actor.can(permission):
        nav.setdefault(group, []).append(page)
nav.setdefault("Account", []).append(st.Page("pages/account.py", title="Account", icon="👤"))
st.navigation(nav).run()
