"""Researcher's pathway page: Cox-PASNet pathway and gene rankings, KM by pathway node, heatmap,
model comparison. Rendering only: searches, tables, the heatmap matrix and the comparison come from
:mod:`pathviz.explain`."""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

from pages.ui.auth import acting, require_page
from pages.ui.cohort import endpoint_selectbox
from pages.ui.context import workspace
from pathviz.cohort import endpoint_model_name, load_cohort_endpoint
from pathviz.errors import PathVizError
from pathviz.explain import (
    activation_heatmap,
    filter_genes,
    filter_pathways,
    node_km,
    node_labels,
    pathway_table,
    read_model_comparison,
)
from pathviz.explain.pagenet import read_pagenet_rankings
from pathviz.jobs.coxpasnet import add_user_gmt, cohorts_with_omics, rank_model, user_gmt_files
from pathviz.jobs.queue import JobQueue
from pathviz.jobs.worker import ensure_worker
from pathviz.report.plots import heatmap_figure, km_figure
from pathviz.survival.chance import HeldOutC
from pathviz.risk.coxpasnet import CoxPASNetModel
from pathviz.risk.registered import version_label
from pathviz.store.registry import ModelRegistry, RegistryError
from pathviz.survival import p_label
from pages.ui.startup import job_progress

BENCH_RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results" / "genomic_models.csv"
LIBRARIES = {"kegg": "KEGG (shipped, org.Hs.eg.db)", "go_bp": "GO biological process (shipped)"}

actor = require_page("pathways.view", "Pathways")
st.title("Pathways")
ws = workspace()

def _add_gmt() -> None:
    """Button callback (runs before the widgets are drawn, so it may select the new library)."""
    upload, path = st.session_state.get("pw_gmt_upload"), st.session_state.get("pw_gmt_path", "").strip()
    me = acting("pathways.view")
    if me is None:
        return
    try:
        added = add_user_gmt(ws, upload.getvalue() if upload is not None else None, upload.name if upload is not None else path,
                             actor=me)
        st.session_state["pw_library"] = str(added)
        st.session_state["pw_gmt_error"] = None
    except PathVizError as exc:
        st.session_state["pw_gmt_error"] = str(exc)


with st.sidebar:
    omics_cohorts = cohorts_with_omics()
    cohort_name = st.selectbox("Cohort", omics_cohorts, key="pw_cohort")
    endpoint, ends = endpoint_selectbox(cohort_name, "pw_endpoint", "The survival endpoint the model is trained on; "
                                        "each endpoint has its own models (patients without it are left out).")
    model_name = endpoint_model_name(cohort_name, endpoint)
    user_gmts = {str(p): f"{p.name} (yours)" for p in user_gmt_files(ws)}
    libraries = {**LIBRARIES, **user_gmts}
    lib_name = st.selectbox("Gene sets", list(libraries), format_func=libraries.get, key="pw_library")
    with st.expander("Load your own GMT"):
        st.caption("MSigDB, Reactome or any GMT file (name<TAB>description<TAB>genes…). It is checked, then kept in "
                   "the workspace's genesets/ folder and offered above.")
        upload = st.file_uploader("Upload a .gmt file", type=["gmt", "txt"], key="pw_gmt_upload")
        gmt_path = ""
        if actor.can("slides.manage"):  # reading a server path is an admin's right (no file-existence oracle for others)
            gmt_path = st.text_input("…or a path on the server (admins)", key="pw_gmt_path",
                                     placeholder="/data/h.all.v2024.1.Hs.symbols.gmt")
        st.button("Add gene sets", key="pw_gmt_add", disabled=upload is None and not gmt_path.strip(), on_click=_add_gmt)
        if st.session_state.get("pw_gmt_error"):
            st.error(st.session_state["pw_gmt_error"])
    img_format = st.radio("Plot download format", ["png", "svg"], horizontal=True, key="pw_img")
PLOT_CONFIG = {"toImageButtonOptions": {"format": img_format, "scale": 2}, "displaylogo": False}

registry = ModelRegistry(ws.models_dir)
queue = JobQueue(ws.db, ws.home)


@st.cache_resource(show_spinner=False, max_entries=32)
def _verified_path(models_dir: str, ref: str) -> Path:
    """A version's folder, its files checked against the manifest once per process (versions are
    immutable, so the reference is the cache key; no re-hashing of weights on every rerun)."""
    return ModelRegistry(models_dir).path(ref)

versions = list(reversed(registry.versions("coxpasnet", model_name)))  # newest first
version = None
if versions:
    chosen = registry.get(f"coxpasnet/{model_name}")  # the production alias, else the newest version
    aliases = registry.aliases("coxpasnet", model_name)
    by_version = {v: a for a, v in aliases.items()}
    labels = {m.version: f"{m.version}" + (f" · {by_version[m.version]}" if m.version in by_version else "")
              + f" · {m.params.get('genesets', '?')}, seed {m.split_seed}" for m in versions}
    if st.session_state.get("pw_version") not in labels:
        st.session_state["pw_version"] = chosen.version
    with st.sidebar:
        picked = st.selectbox("Model version", list(labels), format_func=labels.get, key="pw_version",
                              help="Pages use the production version (else the newest); promote one on the admin page.")
    try:
        version = registry.get(f"coxpasnet/{model_name}@{picked}")
        folder = _verified_path(str(ws.models_dir), version.ref)  # files checked against the manifest
    except RegistryError as exc:
        st.error(str(exc))
        st.stop()


def train_section() -> None:
    """Train a new Cox-PASNet version of this cohort as a background job (gene sets, seed, splits)."""
    with st.expander("Train a new version", expanded=version is None):
        running = [j for j in queue.active("coxpasnet") if j.params.get("cohort") == cohort_name
                   and (j.params.get("endpoint") or next(iter(ends))) == endpoint]
        if running:
            st.caption(f"Job #{running[0].id} is training Cox-PASNet on {cohort_name} in the background.")
            job_progress(ws, running[0].id)
            return
        seed = int(st.number_input("Split seed", 0, 10_000, 0, key="pw_seed"))
        repeats = int(st.number_input("Repeated splits (stability)", 1, 20, 3, key="pw_repeats"))
        impute = st.checkbox("Impute patients without expression (training-row gene means)", value=False,
                             key="pw_impute", help="Default: patients without an expression profile are left out and "
                             "counted; imputing keeps them with average expression, which can blur the ranking.")
        primary = endpoint == next(iter(ends))
        st.caption(f"New version of coxpasnet/{model_name}: {libraries[lib_name]}, endpoint {ends[endpoint]}, split seed "
                   f"{seed}, {repeats} split{'s' if repeats > 1 else ''}, patients without expression "
                   f"{'imputed' if impute else 'left out'}. CLI: `pathviz train coxpasnet --cohort {cohort_name} "
                   f"--genesets {lib_name} --seed {seed} --repeats {repeats}"
                   + ("" if primary else f" --endpoint {endpoint}") + (" --missing-omics impute" if impute else "")
                   + "`. It runs as a background job (see the admin page); you may leave this page.")
        if st.button(f"Train Cox-PASNet ({repeats} split{'s' if repeats > 1 else ''})", key="pw_train", type="primary"):
            try:
                job = queue.submit("coxpasnet", {"cohort": cohort_name, "genesets": lib_name, "seed": seed, "repeats": repeats,
                                                 "endpoint": "" if primary else endpoint,
                                                 "missing_omics": "impute" if impute else "exclude"}, actor=actor)
                ensure_worker(ws.home, job.device)
                st.rerun()
            except PathVizError as exc:
                st.error(str(exc))


def pagenet_section() -> None:
    """Rankings of the integrated model (PAGE-Net's genome layers), when one is trained for this cohort."""
    try:
        pg_man = registry.get(f"pagenet/{cohort_name}")
        pg = _verified_path(str(ws.models_dir), pg_man.ref)
    except RegistryError:
        return
    st.subheader("Integrated model: PAGE-Net (slides + expression + age)")
    st.caption(f"Model {version_label(registry, pg_man)}, trained {pg_man.created}, split seed {pg_man.split_seed}.")
    c = pg_man.metrics["test_c_index"]
    pg_held = HeldOutC.from_dict(pg_man.metrics["held_out"])  # recorded by the training job, not recomputed
    st.markdown(f"**Held-out test Harrell's C of PAGE-Net: {pg_held.headline()}** — {pg_held.method()}.")
    st.caption(f"Comparators on the same test patients: Cox-PASNet (genes + age) {c['coxpasnet']:.3f}, image-only Cox-EN "
               f"{c['image_cox_en']:.3f}" + (f", clinical Cox (age, no learning from images or genes) {c['clinical']:.3f}"
                                             if "clinical" in c else "")
               + ". Pathway importance: mean |Integrated Gradients| of PAGE-Net's prognostic index at its genome pathway "
               "layer (KEGG), slide features held fixed.")
    if pg_held.warning:
        st.error(f"⚠ {pg_held.warning}")
    pg_rank = read_pagenet_rankings(pg)
    st.dataframe(pg_rank.pathway_view(), hide_index=True,
                 key="pg_pathways", column_config={"importance": st.column_config.NumberColumn(format="%.4f")})
    st.dataframe(pg_rank.gene_view(), hide_index=True, key="pg_genes")
    d1, d2 = st.columns(2)
    d1.download_button("PAGE-Net pathway ranking (CSV)", pg_rank.pathways.to_csv(index=False),
                       file_name=f"pagenet_{cohort_name}_pathways.csv", key="dl_pg_pathways")
    d2.download_button("PAGE-Net gene ranking (CSV)", pg_rank.genes.to_csv(index=False),
                       file_name=f"pagenet_{cohort_name}_genes.csv", key="dl_pg_genes")


if version is None:
    st.info(f"No Cox-PASNet model for {cohort_name} ({ends[endpoint]}) yet: train one below (a background job; the admin "
            "page shows it).")
    train_section()
    pagenet_section()
    st.stop()


@st.cache_resource(show_spinner=False, max_entries=8)
def _ranked(path: str, ref: str) -> dict:
    return rank_model(path, top=10_000)  # the stored rankings of one immutable version


@st.cache_resource(show_spinner=False, max_entries=8)
def _model(path: str, ref: str) -> CoxPASNetModel:
    return CoxPASNetModel.load(path, device="cpu")  # versions are immutable: the reference is the cache key


ranked = _ranked(str(folder), version.ref)
metrics = ranked["metrics"]
held = ranked["held_out"]
model = _model(str(folder), version.ref)
cohort = load_cohort_endpoint(cohort_name, endpoint)

newest = versions[0].version
st.caption(f"Model {version_label(registry, version)}, trained {version.created} on {version.cohort} (data "
           f"{version.data_digest}) with {version.params.get('genesets', '?')} gene sets, split seed {version.split_seed}, "
           f"{version.code_version}" + (f". A newer version {newest} exists; compare and promote it on the admin page."
                                        if newest != version.version else "."))
c1, c2, c3, c4 = st.columns(4)
if held is not None:
    c1.metric("Held-out C-index" + (" (mean over splits)" if len(held.splits) > 1 else ""), f"{held.c_index:.3f}",
              help=held.method())
    base = ranked["baseline"]
    st.markdown(f"**Held-out Harrell's C: {held.headline()}** — {held.method()}.  \nNo-learning baseline on the same "
                "held-out patients: " + (f"clinical Cox ({', '.join(metrics.get('clinical') or [])}) {base.headline()}"
                                         if base else "none (the model has no clinical covariate; chance = 0.5)") + ".")
else:
    c1.metric("Held-out C-index", "not recorded")
c2.metric("Inner validation C", f"{metrics['inner_validation_c_index']:.3f}", help="early stopping / grid split")
c3.metric("Pathways", metrics["pathways"])
c4.metric("Genes", metrics["genes"])
if held is None:
    st.error("⚠ This model folder predates the held-out C-index record, so its rankings cannot be checked against "
             "chance. Train a new version (below) before reading the rankings.")
elif held.warning:
    st.error(f"⚠ {held.warning} The pathway and gene rankings below describe what this network fitted, not "
             "biology it found.")
if held is not None and len(held.splits) > 1:
    st.caption(f"The rankings, node KM and heatmap below come from the split-{metrics['split_seed']} model (held-out C "
               f"{held.splits[0]:.3f} on its own validation patients); stability counts the other splits.")
st.caption(f"Endpoint: {cohort.endpoint} (times in months). Patients: "
           + (metrics.get("omics_note") or f"{metrics.get('n_patients', cohort.n)} with expression") + ".")
for note in model.notes_:
    st.caption(note)
st.caption("Importance: mean |Integrated Gradients| of the prognostic index at the pathway node (captum); direction + means "
           "higher pathway expression, higher risk. Stability: share of repeated splits with the pathway in the top 10.")

# -- rankings ------------------------------------------------------------------------------------
st.subheader("Ranked pathways")
query = st.text_input("Search pathways or genes", key="pw_search")
st.dataframe(pathway_table(filter_pathways(ranked["pathways"], query)), hide_index=True, key="pw_table", column_config={
    "importance": st.column_config.NumberColumn(format="%.4f"), "coverage": st.column_config.NumberColumn(format="%.2f"),
    "stability": st.column_config.NumberColumn(format="%.2f")})
st.download_button("Pathway ranking (CSV)", ranked["pathways"].to_csv(index=False), file_name=f"coxpasnet_{cohort_name}_{version.version}_pathways.csv",
                   key="dl_pathways")
st.subheader("Ranked genes")
st.dataframe(filter_genes(ranked["genes"], query).head(200), hide_index=True, key="gene_table")
st.download_button("Gene ranking (CSV)", ranked["genes"].to_csv(index=False), file_name=f"coxpasnet_{cohort_name}_{version.version}_genes.csv", key="dl_genes")

# -- KM by node ---------------------------------------------------------------------------------
st.subheader("Kaplan-Meier by pathway node")
labels = node_labels(ranked["pathways"])
choice = st.selectbox("Node", list(labels), key="pw_node", format_func=labels.get)
comp, med = node_km(model, cohort.clinical, cohort.omics, "pathway", choice)
st.plotly_chart(km_figure(comp, f"{choice}: activation above vs below the median ({med:.3g})"), config=PLOT_CONFIG, key="fig_node_km")
if comp.logrank is not None:
    st.caption(f"All {cohort.n} patients (training and validation). {p_label(comp.logrank.p_value, 'Log-rank p')}.")

# -- heatmap ------------------------------------------------------------------------------------
st.subheader("Patients x top pathways")
top_n = int(st.slider("Pathways shown", 5, min(40, len(ranked["pathways"])), min(15, len(ranked["pathways"])), key="pw_top"))
heat = activation_heatmap(model, cohort.clinical, cohort.omics, ranked["pathways"]["pathway"].head(top_n).tolist())
st.plotly_chart(heatmap_figure(heat.activations, "Pathway-node activation (tanh)", "activation"), config=PLOT_CONFIG,
                key="fig_heat")
st.download_button("Heatmap data (CSV)", heat.to_frame().to_csv(), file_name=f"coxpasnet_{cohort_name}_{version.version}_heatmap.csv", key="dl_heat")

train_section()
pagenet_section()

# -- model comparison ------------------------------------------------------------------------------
st.subheader("Model comparison (bench/genomic_models.py)")
comparison = read_model_comparison(BENCH_RESULTS)
if comparison is not None:
    bench, table = comparison
    st.dataframe(table, key="bench_table")
    st.caption(f"Held-out C-index over {int(bench['splits'].max())} stratified 70/30 splits per cohort.")
    st.download_button("Comparison (CSV)", bench.to_csv(index=False), file_name="genomic_models.csv", key="dl_bench")
else:
    st.info("No benchmark results yet: run `python bench/genomic_models.py`.")
