"""Pathologist's slide viewer: deep zoom, heatmap overlays, flagged patches, reviews, export."""

from __future__ import annotations

import json
import time

import numpy as np
import streamlit as st

from pages.ui.context import tile_server, workspace
from pages.ui.viewer import frontend_installed, slide_viewer
from pathviz.errors import PathVizError
from pathviz.export import flagged_table, to_geojson
from pathviz.layers.colormap import COLORMAPS, colorize, legend_colors
from pathviz.tiles import TILE_SIZE
from pathviz.training.pagenet_job import FeatureStore
from pathviz.workspace import read_patch_image

NO_LAYER = "(none)"
GALLERY_COLUMNS = 5

ws = workspace()
st.title("Slide viewer")

slides = ws.slides()
if not slides:
    st.info("No slides in the workspace yet. Build the demo or add a slide on the **Workspace** page.")
    st.stop()

# -- controls ---------------------------------------------------------------------------------
by_id = {r.slide_id: r for r in slides}
with st.sidebar:
    reviewer = st.text_input("Reviewer", key="reviewer", placeholder="your name")
    slide_id = st.selectbox("Slide", list(by_id), format_func=lambda i: by_id[i].name, key="slide_id")

rec = by_id[slide_id]
if ws.default_grid_key(slide_id) is None:
    st.warning(f"{rec.name} has not been analysed yet (tissue mask, tile grid, layers).")
    if st.button("Analyse now", key="analyse"):
        bar = st.progress(0.0, "analysing")
        try:
            ws.analyse(slide_id, progress=lambda f, m: bar.progress(min(f, 1.0), m))
            tile_server().service.invalidate(slide_id)
            st.rerun()
        except PathVizError as exc:
            st.error(str(exc))
    st.stop()

grid = ws.grid(slide_id)
layer_names = ws.layer_names(slide_id)
with st.sidebar:
    layer_name = st.selectbox("Score layer", [NO_LAYER] + layer_names, index=min(2, len(layer_names)), key="layer")
    cmap = st.selectbox("Colour map", COLORMAPS, key="cmap")
    opacity = st.slider("Overlay opacity", 0.0, 1.0, 0.5, 0.05, key="opacity")
    show_mask = st.checkbox("Tissue mask", value=False, key="show_mask")
    mask_opacity = st.slider("Mask opacity", 0.0, 1.0, 0.35, 0.05, key="mask_opacity", disabled=not show_mask)
    top_k = st.number_input("Flagged patches (top k)", 1, 100, 10, key="top_k")

layer = ws.layer(slide_id, layer_name) if layer_name != NO_LAYER else None
overlay = None
if layer is not None:
    lo, hi = layer.value_range()
    with st.sidebar:
        vmin, vmax = st.slider(
            f"Value range ({layer.units})" if layer.units else "Value range",
            lo, hi, (lo, hi), key=f"range_{slide_id}_{layer.name}", format="%.3g",
        )
    overlay = {"layer": layer.name, "cmap": cmap, "vmin": vmin, "vmax": vmax, "opacity": opacity}

st.caption(
    f"{rec.name} · {rec.width}x{rec.height} px · {rec.mpp:.4g} µm/px"
    + (" (declared)" if rec.declared_mpp else "")
    + f" · {len(grid)} tissue patches of {grid.patch_size} px at {grid.mpp} µm/px"
)

# -- legend -----------------------------------------------------------------------------------
if layer is not None:
    colours = ", ".join(legend_colors(cmap))
    st.markdown(
        f"<div data-testid='pv-legend' style='display:flex;align-items:center;gap:8px'>"
        f"<b>{layer.title}</b><span>{vmin:.3g}</span>"
        f"<div style='width:220px;height:12px;background:linear-gradient(to right,{colours});border:1px solid #999'></div>"
        f"<span>{vmax:.3g} {layer.units}</span></div>",
        unsafe_allow_html=True,
    )
    st.caption(layer.description)

# -- flagged patches ----------------------------------------------------------------------------
table = flagged_table(ws, slide_id, layer.name, int(top_k)) if layer is not None else None
focus = st.session_state.get("focus")
if focus and focus.get("slide_id") != slide_id:
    focus = None
flags = [] if table is None else [
    {"rank": int(r.rank), "x": int(r.x), "y": int(r.y), "w": int(r.width), "h": int(r.height)} for r in table.itertuples()
]

if not frontend_installed():
    st.error("The viewer's JavaScript is not installed. Run `python scripts/fetch_frontend.py` (scripts/app.sh does this).")
else:
    server = tile_server()
    slide_viewer(
        tile_url=server.url,
        slide={"id": slide_id, "width": rec.width, "height": rec.height, "tile_size": TILE_SIZE, "mpp": rec.mpp},
        overlay=overlay,
        mask={"show": bool(show_mask), "opacity": float(mask_opacity)},
        flags=flags,
        focus=focus,
    )


@st.cache_data(show_spinner=False, max_entries=512)
def _crop(home: str, slide_id: str, rect: tuple[int, int, int, int], size: int):
    return read_patch_image(ws, slide_id, rect, size)


def _centre(row) -> None:
    st.session_state["focus"] = {
        "slide_id": slide_id, "rank": int(row.rank), "x": int(row.x), "y": int(row.y),
        "w": int(row.width), "h": int(row.height), "nonce": time.time(),
    }
    st.session_state["selected_rank"] = int(row.rank)


if table is None:
    st.info("Choose a score layer to see its flagged patches.")
    st.stop()

st.subheader(f"Top {len(table)} flagged patches · {layer.title}")
home = str(ws.home)
for start in range(0, len(table), GALLERY_COLUMNS):
    cols = st.columns(GALLERY_COLUMNS)
    for col, row in zip(cols, list(table.itertuples())[start : start + GALLERY_COLUMNS]):
        with col:
            rect = (int(row.x), int(row.y), int(row.width), int(row.height))
            st.image(_crop(home, slide_id, rect, grid.patch_size), width="stretch")
            badge = {"agree": "✅ agree", "disagree": "❌ disagree"}.get(row.verdict, "unreviewed")
            st.caption(f"#{row.rank} · score {row.score:.3g} · x {row.x}, y {row.y} · {badge}")
            st.button("Centre", key=f"centre_{row.rank}", on_click=_centre, args=(row,))

# -- review -----------------------------------------------------------------------------------
st.subheader("Review")
ranks = [int(r) for r in table["rank"]]
if st.session_state.get("selected_rank") not in ranks:
    st.session_state["selected_rank"] = ranks[0]
selected = st.selectbox(
    "Patch", ranks, key="selected_rank",
    format_func=lambda r: f"#{r} · score {table.loc[table['rank'] == r, 'score'].iloc[0]:.3g}",
)
row = table.loc[table["rank"] == selected].iloc[0]
left, right = st.columns([1, 2])
with left:
    rect = (int(row.x), int(row.y), int(row.width), int(row.height))
    st.image(_crop(home, slide_id, rect, grid.patch_size), caption=f"level-0 x {row.x}, y {row.y}, {row.width}x{row.height} px")
    meta = layer.meta or {}
    if "top_maps" in meta and "model_version" in meta:  # a PAGE-Net layer: the patch's top maps (seed 000, Fig. 4)
        st.metric("Patient's PAGE-Net prognostic index", f"{meta['prognostic_index']:.3f}")
        try:
            maps = FeatureStore(ws, meta["model_version"]).patch_maps(slide_id, (int(row.x), int(row.y)), meta["top_maps"])
            top = float(maps.max()) or 1.0
            map_cols = st.columns(len(maps))
            for col, j, m in zip(map_cols, meta["top_maps"], maps):
                big = np.kron(m, np.ones((16, 16)))  # nearest-neighbour upsampling for display
                col.image(colorize(big, "inferno", 0.0, top)[..., :3], caption=f"map {j}", width="stretch")
            st.caption("Activations of the survival-discriminative maps that move the prognostic index most, inside this "
                       "patch (common colour scale, black = 0).")
        except PathVizError as exc:
            st.caption(str(exc))
with right:
    verdict = st.radio("Verdict", ["agree", "disagree"], horizontal=True, key="verdict")
    comment = st.text_area("Comment", key="comment")
    if st.button("Save review", key="save_review", type="primary"):
        try:
            ws.db.add_review(slide_id, layer.name, grid.key, rect, verdict, reviewer, comment, float(row.score))
            st.success(f"Saved: {verdict} on patch #{selected} by {reviewer.strip()}.")
            table = flagged_table(ws, slide_id, layer.name, int(top_k))
        except PathVizError as exc:
            st.error(str(exc))
    history = [r for r in ws.db.reviews(slide_id, layer.name) if (r.x, r.y, r.width, r.height) == rect]
    for r in reversed(history):
        st.markdown(f"- **{r.verdict}** by {r.reviewer} ({r.created_at:%Y-%m-%d %H:%M} UTC){': ' + r.comment if r.comment else ''}")

# -- export -----------------------------------------------------------------------------------
st.subheader("Export")
st.dataframe(table, hide_index=True, width="stretch")
c1, c2 = st.columns(2)
c1.download_button(
    "QuPath GeoJSON", json.dumps(to_geojson(table, layer.name, rec.name), indent=1),
    file_name=f"{slide_id}_{layer.name}_flagged.geojson", mime="application/geo+json", key="dl_geojson",
)
c2.download_button(
    "CSV", table.to_csv(index=False), file_name=f"{slide_id}_{layer.name}_flagged.csv", mime="text/csv", key="dl_csv",
)
