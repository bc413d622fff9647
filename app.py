"""PathViz dashboard entry point: ``streamlit run app.py``.

Builds the demo workspace on first start (with a progress bar), then shows the pages by role.
"""

from __future__ import annotations

import streamlit as st

from pages.ui.context import workspace
from pathviz.demo import build_demo, demo_ready
from pathviz.errors import PathVizError

st.set_page_config(page_title="PathViz", page_icon="🔬", layout="wide")

ws = workspace()
if not ws.slides() and not demo_ready(ws):
    st.title("PathViz")
    st.write("First start: building the demo workspace from real slides shipped in pip packages…")
    bar = st.progress(0.0, "starting")
    try:
        build_demo(ws, lambda f, m: bar.progress(min(f, 1.0), m))
    except PathVizError as exc:
        st.error(f"The demo workspace could not be built: {exc}")
    bar.empty()

pages = {
    "Pathologist": [st.Page("pages/slide_viewer.py", title="Slide viewer", icon="🔬", default=True)],
    "Oncologist": [st.Page("pages/patient.py", title="Patient risk", icon="📈")],
    "Researcher": [st.Page("pages/pathways.py", title="Pathways", icon="🧬")],
    "Admin": [st.Page("pages/workspace.py", title="Workspace", icon="🗂️")],
}
st.navigation(pages).run()
