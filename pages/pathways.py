"""Researcher's pathway page: Cox-PASNet pathway and gene rankings, KM by pathway node, heatmap,
model comparison."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from pages.ui.context import workspace
from pathviz.cohort import available_cohorts, load_cohort
from pathviz.errors import PathVizError
from pathviz.explain import node_km
from pathviz.genomics import readable_descriptions
from pathviz.nn import CoxPASNetModel
from pathviz.plots import heatmap_figure, km_figure
from pathviz.survival import p_label
from pathviz.risk import StoredRiskModel
from pathviz.store.registry import ModelRegistry, RegistryError
from pathviz.training import rank_model
from pathviz.training.coxpasnet_job import (
    add_user_gmt,
    cohorts_with_omics,
    coxpasnet_model_name,
    train_registered_coxpasnet,
    user_gmt_files,
)
from pathviz.training.coxpasnet_job import default_model_dir
from pathviz.training.pagenet_job import default_pagenet_dir

BENCH_RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results" / "genomic_models.csv"
LIBRARIES = {"kegg": "KEGG (shipped, org.Hs.eg.db)", "go_bp": "GO biological process (shipped)"}

st.title("Pathways")
ws = workspace()

def _add_gmt() -> None:
    """Button callback (runs before the widgets are drawn, so it may select the new library)."""
    upload, path = st.session_state.get("pw_gmt_upload"), st.session_state.get("pw_gmt_path", "").strip()
    try:
        added = add_user_gmt(ws, upload.getvalue() if upload is not None else None, upload.name if upload is not None else path)
        st.session_state["pw_library"] = str(added)
        st.session_state["pw_gmt_error"] = None
    except PathVizError as exc:
        st.session_state["pw_gmt_error"] = str(exc)


with st.sidebar:
    omics_cohorts = cohorts_with_omics()
    cohort_name = st.selectbox("Cohort", omics_cohorts, key="pw_cohort")
    user_gmts = {str(p): f"{p.name} (yours)" for p in user_gmt_files(ws)}
    libraries = {**LIBRARIES, **user_gmts}
    lib_name = st.selectbox("Gene sets", list(libraries), format_func=libraries.get, key="pw_library")
    with st.expander("Load your own GMT"):
        st.caption("MSigDB, Reactome or any GMT file (name<TAB>description<TAB>genes…). It is checked, then kept in "
                   "the workspace's genesets/ folder and offered above.")
        upload = st.file_uploader("Upload a .gmt file", type=["gmt", "txt"], key="pw_gmt_upload")
        gmt_path = st.text_input("…or a path on the server", key="pw_gmt_path", placeholder="/data/h.all.v2024.1.Hs.symbols.gmt")
        st.button("Add gene sets", key="pw_gmt_add", disabled=upload is None and not gmt_path.strip(), on_click=_add_gmt)
        if st.session_state.get("pw_gmt_error"):
            st.error(st.session_state["pw_gmt_error"])
    seed = int(st.number_input("Split seed", 0, 10_000, 0, key="pw_seed"))
    repeats = int(st.number_input("Repeated splits (stability)", 1, 20, 3, key="pw_repeats"))
    img_format = st.radio("Plot download format", ["png", "svg"], horizontal=True, key="pw_img")
PLOT_CONFIG = {"toImageButtonOptions": {"format": img_format, "scale": 2}, "displaylogo": False}

registry = ModelRegistry(ws.models_dir)
model_name = coxpasnet_model_name(cohort_name, lib_name, seed)
version = None
if registry.versions("coxpasnet", model_name):
    try:
        version = registry.get(f"coxpasnet/{model_name}")  # the production alias, else the newest version
        folder = registry.path(version.ref)  # files checked against the manifest
    except RegistryError as exc:
        st.error(str(exc))
        st.stop()
else:  # a model folder written before the registry
    folder = default_model_dir(ws.models_dir, cohort_name, lib_name, seed)


def pagenet_section() -> None:
    """Rankings of the integrated model (PAGE-Net's genome layers), when one is trained for this cohort."""
    pg = default_pagenet_dir(ws.models_dir, cohort_name, seed)
    if not (pg / "pathway_ranking.csv").exists():
        return
    st.subheader("Integrated model: PAGE-Net (slides + expression + age)")
    m = json.loads((pg / "metrics.json").read_text())
    c = m["test_c_index"]
    pg_held = StoredRiskModel.from_pagenet(pg).held_out()
    st.markdown(f"**Held-out test Harrell's C of PAGE-Net: {pg_held.headline()}** — {pg_held.method()}.")
    st.caption(f"Comparators on the same test patients: Cox-PASNet (genes + age) {c['coxpasnet']:.3f}, image-only Cox-EN "
               f"{c['image_cox_en']:.3f}" + (f", clinical Cox (age, no learning from images or genes) {c['clinical']:.3f}"
                                             if "clinical" in c else "")
               + ". Pathway importance: mean |Integrated Gradients| of PAGE-Net's prognostic index at its genome pathway "
               "layer (KEGG), slide features held fixed.")
    if pg_held.warning:
        st.error(f"⚠ {pg_held.warning}")
    pw_pg = pd.read_csv(pg / "pathway_ranking.csv")
    pw_pg["description"] = readable_descriptions(pw_pg["pathway"], pw_pg["description"])
    st.dataframe(pw_pg[["rank", "pathway", "description", "importance", "direction", "size"]].head(50), hide_index=True,
                 key="pg_pathways", column_config={"importance": st.column_config.NumberColumn(format="%.4f")})
    genes_pg = pd.read_csv(pg / "gene_ranking.csv")
    st.dataframe(genes_pg.head(50), hide_index=True, key="pg_genes")
    d1, d2 = st.columns(2)
    d1.download_button("PAGE-Net pathway ranking (CSV)", pw_pg.to_csv(index=False), file_name=f"pagenet_{cohort_name}_pathways.csv",
                       key="dl_pg_pathways")
    d2.download_button("PAGE-Net gene ranking (CSV)", genes_pg.to_csv(index=False), file_name=f"pagenet_{cohort_name}_genes.csv",
                       key="dl_pg_genes")


if not (folder / "metrics.json").exists():
    st.info(f"No Cox-PASNet model for {cohort_name} with {libraries[lib_name]} (seed {seed}) yet. The CLI equivalent is "
            f"`pathviz train coxpasnet --cohort {cohort_name} --genesets {lib_name} --seed {seed} --repeats {repeats}`.")
    if st.button(f"Train Cox-PASNet ({repeats} split{'s' if repeats > 1 else ''})", key="pw_train", type="primary"):
        bar = st.progress(0.0, "starting")
        try:
            train_registered_coxpasnet(ws.models_dir, cohort_name, lib_name, seed=seed, repeats=repeats,
                                progress=lambda f, m: bar.progress(min(f, 1.0), m))
            st.rerun()
        except PathVizError as exc:
            st.error(str(exc))
    pagenet_section()
    st.stop()


@st.cache_resource(show_spinner=False, max_entries=8)
def _model(path: str, mtime: float) -> CoxPASNetModel:
    return CoxPASNetModel.load(path, device="cpu")


ranked = rank_model(folder, top=10_000)
metrics = ranked["metrics"]
held = ranked["held_out"]
model = _model(str(folder), (folder / "weights.pt").stat().st_mtime)
cohort = load_cohort(cohort_name)

if version is not None:
    al = [a for a, v in registry.aliases("coxpasnet", model_name).items() if v == version.version]
    newest = registry.versions("coxpasnet", model_name)[-1].version
    st.caption(f"Model {version.ref} ({', '.join(al) if al else 'newest version, no alias'}), trained {version.created} "
               f"on {version.cohort} (data {version.data_digest}), split seed {version.split_seed}, {version.code_version}"
               + (f". A newer version {newest} exists; promote it with `pathviz models promote coxpasnet/{model_name}@{newest}`."
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
             "chance. Retrain it (delete the folder or choose another seed) before reading the rankings.")
elif held.warning:
    st.error(f"⚠ {held.warning} The pathway and gene rankings below describe what this network fitted, not "
             "biology it found.")
if held is not None and len(held.splits) > 1:
    st.caption(f"The rankings, node KM and heatmap below come from the split-{metrics['split_seed']} model (held-out C "
               f"{held.splits[0]:.3f} on its own validation patients); stability counts the other splits.")
for note in model.notes_:
    st.caption(note)
st.caption("Importance: mean |Integrated Gradients| of the prognostic index at the pathway node (captum); direction + means "
           "higher pathway expression, higher risk. Stability: share of repeated splits with the pathway in the top 10.")

# -- rankings ------------------------------------------------------------------------------------
st.subheader("Ranked pathways")
query = st.text_input("Search pathways or genes", key="pw_search")
pw = ranked["pathways"].copy()
if query:
    q = query.strip().lower()
    pw = pw[pw["pathway"].str.lower().str.contains(q, regex=False) | pw["description"].str.lower().str.contains(q, regex=False)
            | pw["genes"].str.lower().str.contains(q, regex=False)]
cols = [c for c in ("rank", "pathway", "description", "importance", "direction", "stability", "size", "set_size", "coverage", "genes")
        if c in pw.columns]
st.dataframe(pw[cols], hide_index=True, key="pw_table", column_config={
    "importance": st.column_config.NumberColumn(format="%.4f"), "coverage": st.column_config.NumberColumn(format="%.2f"),
    "stability": st.column_config.NumberColumn(format="%.2f")})
st.download_button("Pathway ranking (CSV)", ranked["pathways"].to_csv(index=False), file_name=f"{folder.name}_pathways.csv",
                   key="dl_pathways")
st.subheader("Ranked genes")
genes = ranked["genes"]
if query:
    genes = genes[genes["gene"].str.lower().str.contains(query.strip().lower(), regex=False)]
st.dataframe(genes.head(200), hide_index=True, key="gene_table")
st.download_button("Gene ranking (CSV)", ranked["genes"].to_csv(index=False), file_name=f"{folder.name}_genes.csv", key="dl_genes")

# -- KM by node ---------------------------------------------------------------------------------
st.subheader("Kaplan-Meier by pathway node")
choice = st.selectbox("Node", ranked["pathways"]["pathway"].tolist(), key="pw_node",
                      format_func=lambda p: str(ranked["pathways"].set_index("pathway").at[p, "description"]) or p)
comp, med = node_km(model, cohort.clinical, cohort.omics, "pathway", choice)
st.plotly_chart(km_figure(comp, f"{choice}: activation above vs below the median ({med:.3g})"), config=PLOT_CONFIG, key="fig_node_km")
if comp.logrank is not None:
    st.caption(f"All {cohort.n} patients (training and validation). {p_label(comp.logrank.p_value, 'Log-rank p')}.")

# -- heatmap ------------------------------------------------------------------------------------
st.subheader("Patients x top pathways")
top_n = int(st.slider("Pathways shown", 5, min(40, len(ranked["pathways"])), min(15, len(ranked["pathways"])), key="pw_top"))
acts = model.node_activations(cohort.clinical, cohort.omics)["pathway"]
risk = model.predict_risk(cohort.clinical, cohort.omics)
top_paths = ranked["pathways"]["pathway"].head(top_n).tolist()
idx = [model.pathways_.index(p) for p in top_paths]
order = np.argsort(risk)
heat = pd.DataFrame(acts[order][:, idx], index=cohort.clinical.index[order], columns=top_paths)
st.plotly_chart(heatmap_figure(heat, "Pathway-node activation (tanh)", "activation"), config=PLOT_CONFIG, key="fig_heat")
st.download_button("Heatmap data (CSV)", heat.assign(prognostic_index=risk[order]).to_csv(), file_name=f"{folder.name}_heatmap.csv",
                   key="dl_heat")

pagenet_section()

# -- model comparison ------------------------------------------------------------------------------
st.subheader("Model comparison (bench/genomic_models.py)")
if BENCH_RESULTS.exists():
    bench = pd.read_csv(BENCH_RESULTS)
    bench["C-index"] = bench["c_index_mean"].map("{:.3f}".format) + " ± " + bench["c_index_sd"].map("{:.3f}".format)
    table = bench.pivot(index="cohort", columns="model", values="C-index").rename(
        columns={"coxpasnet": "Cox-PASNet", "coxnet": "elastic-net Cox (same genes + age)", "clinical": "clinical Cox (age)"})
    st.dataframe(table, key="bench_table")
    st.caption(f"Held-out C-index over {int(bench['splits'].max())} stratified 70/30 splits per cohort.")
    st.download_button("Comparison (CSV)", bench.to_csv(index=False), file_name="genomic_models.csv", key="dl_bench")
else:
    st.info("No benchmark results yet: run `python bench/genomic_models.py`.")
