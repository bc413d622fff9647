"""Workspace page: demo data, registered slides, adding a slide by path."""

from __future__ import annotations

import json

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
if status["cohort"]:
    from pages.ui.demo import demo_note

    st.markdown(demo_note(ws))
else:
    from pathviz.cohort.demo import DEMO_PATIENTS

    st.caption(f"The demo cohort will have {ws.settings.demo_patients or DEMO_PATIENTS} patients "
               "(PATHVIZ_DEMO_PATIENTS; `pathviz demo --patients N` in a fresh workspace for another size).")
active = JobQueue(ws.db, ws.home).active("demo")
if active:
    st.caption(f"The demo build runs in the background (job #{active[0].id}); closing this tab does not stop it.")
    job_progress(ws, active[0].id)
elif all(status.values()):
    st.success("The demo workspace is complete: slides, demo cohort and PAGE-Net.")
elif st.button("Build the demo workspace" if not any(status.values()) else "Resume the demo build", key="build_demo"):
    submit_demo_job(ws, actor)  # idempotent: built parts are kept, the rest is built by a background job
    st.rerun()

st.subheader("Cohorts")
from pathviz.cohort.loaders import shared_data_dir  # noqa: E402
from pathviz.cohort.registry import FORMATS, CohortRegistry  # noqa: E402

cohorts = CohortRegistry(ws.db, ws.audit)
if st.session_state.get("coh_added"):  # set by the add below, shown once after the rerun that lists the new cohort
    st.success(st.session_state.pop("coh_added"))
registered = cohorts.records()
if registered:
    st.dataframe(pd.DataFrame([{
        "name": r.name, "format": r.format, "patients": json.loads(r.summary).get("n"),
        "events": json.loads(r.summary).get("events"), "omics scale": json.loads(r.summary).get("omics_scale") or "-",
        "added by": r.added_by, "added (UTC)": r.added_at.strftime("%Y-%m-%d %H:%M"),
    } for r in registered]), hide_index=True, width="stretch", key="coh_table")
else:
    st.caption("No cohort registered yet; the built-in ones are always available (`pathviz cohort list`).")
roots = (*ws.allowed_roots(), shared_data_dir())
with st.form("add_cohort"):
    st.caption("A cohort folder (TCGA layout, cBioPortal study, GDC download) inside "
               + ", ".join(f"`{r}`" for r in roots) + ". CSV cohorts with a column mapping: `pathviz cohort add FILE "
               "--format csv --mapping MAP.json`.")
    c_path = st.text_input("Cohort folder", key="coh_path")
    c_format = st.selectbox("Format", [f for f in FORMATS if f != "csv"], key="coh_format")
    c_name = st.text_input("Name (optional)", key="coh_name")
    c_slides = st.text_input("Slide folder (optional)", key="coh_slides",
                             help="Slide files linked to patients by TCGA barcode (first 12 characters) or file stem; "
                             "for a mapping CSV (slide,patient_id) use `pathviz cohort add ... --slide-map FILE`.")
    go = st.form_submit_button("Add cohort")
if go:
    try:
        added = cohorts.add_from_ui(actor, c_path, c_format, c_name.strip() or None, roots, slides=c_slides)
        note = added.slide_links.note(added.n) if added.slide_links is not None else ""
        st.session_state["coh_added"] = (f"Added cohort {added.name}: {added.n} patients, {added.n_events} events; pages "
                                         "and the CLI can use it." + (f" {note[:1].upper()}{note[1:]}." if note else ""))
        st.session_state["coh_cov"] = added.name
        st.rerun()
    except PathVizError as exc:
        st.error(str(exc))

st.markdown("**What each patient has**")
from pathviz.cohort import available_cohorts, load_cohort  # noqa: E402
from pathviz.cohort.slides import coverage  # noqa: E402

cov_name = st.selectbox("Cohort", available_cohorts(), key="coh_cov")
try:
    cov_cohort = load_cohort(cov_name)
    cov = coverage(cov_cohort, [r.name for r in ws.slides()])
    st.caption(f"{cov_name}: {cov['patients']} patients · RNA {cov['with_rna']} with, {cov['without_rna']} without"
               + (f" ({cov_cohort.omics_scale})" if cov_cohort.omics_scale else "")
               + f" · slide files {cov['with_slides']} with, {cov['without_slides']} without · RNA and a slide "
               f"{cov['with_rna_and_slides']} · a slide registered in this workspace {cov['workspace_slides']}")
    st.caption("Endpoints: " + ", ".join(f"{e['label']} ({e['key']}): {e['patients']} patients" for e in cov["endpoints"]))
    if cov["slide_note"]:
        st.caption(cov["slide_note"][:1].upper() + cov["slide_note"][1:])
    if cov_cohort.omics_note:
        st.caption(f"Expression: {cov_cohort.omics_note}")
    st.dataframe(pd.DataFrame(cov["fields"]), hide_index=True, width="stretch", key="coh_fields",
                 column_config={"present": st.column_config.NumberColumn("patients with a value"),
                                "missing": st.column_config.NumberColumn("missing")})
except PathVizError as exc:
    st.error(f"{cov_name} cannot be loaded: {exc}")

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
