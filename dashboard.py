"""PathViz dashboard script: what every browser session runs (``app.py``'s ``st.App`` serves it).

On first start, runs the demo build as a background job and shows its progress; then the pages by role.
Test it directly, e.g. ``AppTest.from_file("dashboard.py")``; ``streamlit run app.py`` serves it
together with the viewer's tile routes.
"""

from __future__ import annotations

import streamlit as st

from pages.ui.context import workspace
from pages.ui.startup import first_start

st.set_page_config(page_title="PathViz", page_icon="🔬", layout="wide")

ws = workspace()
first_start(ws)  # first start: the demo build runs as a background job; its progress is shown here

pages = {
    "Pathologist": [st.Page("pages/slide_viewer.py", title="Slide viewer", icon="🔬", default=True)],
    "Oncologist": [st.Page("pages/patient.py", title="Patient risk", icon="📈")],
    "Researcher": [st.Page("pages/pathways.py", title="Pathways", icon="🧬")],
    "Admin": [st.Page("pages/admin.py", title="Models and jobs", icon="⚙️"),
              st.Page("pages/workspace.py", title="Workspace", icon="🗂️")],
}
st.navigation(pages).run()
