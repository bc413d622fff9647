"""Pathologist's slide viewer: deep zoom, heatmap overlays, flagged patches, reviews, export.

Review state (issue 9): the review panel always belongs to the current slide and layer. The patch
choice (``selected_rank``) is reset to #1 whenever the slide or layer changes, and the form
(``verdict``, ``comment``) is loaded from the chosen patch's latest saved review, or blank, whenever
the (slide, layer, patch) it shows changes. Reviews are saved in button callbacks, which run before
the page is drawn, so the gallery badges, the counter and the export table show a review at once.
"""

from __future__ import annotations

import html
import json
import math
import time

import streamlit as st

from pages.ui.auth import acting, require_page
from pages.ui.context import VIEWER_TILE_URL, tile_service, workspace
from pages.ui.viewer import frontend_installed, slide_viewer
from pathviz.errors import PathVizError
from pathviz.report.export import (MAX_COMMENT_CHARS, flagged_csv, flagged_table, review_line,
                                   review_progress, to_geojson)
from pathviz.layers.colormap import COLORMAPS, legend_colors, percentile_ticks
from pathviz.layers.overlay import MAX_FLOOR, SCALES, display_defaults, percentile_ranks
from pathviz.viewer.maps import patch_map_images
from pathviz.viewer.tiles import TILE_SIZE
from pathviz.store.features import FeatureStore
from pathviz.store.registry import ModelRegistry, chosen_layer_refs
from pathviz.store.workspace import layer_label, read_patch_image, split_model_layer_name
from pathviz.survival.chance import model_evidence

NO_LAYER = "(none)"
SCALE_LABELS = {"value": "value", "percentile": "percentile rank within the slide"}
GALLERY_COLUMNS = 5
BADGES = {"agree": "✅ agree", "disagree": "❌ disagree"}
#: Keyboard shortcuts of the review buttons (Streamlit's ``st.button(shortcut=...)``; plain keys
#: are ignored while the cursor is in a text box, so typing a comment never triggers them).
SHORTCUTS = {"agree": "A", "disagree": "D", "prev": "P", "next": "N"}

actor = require_page("slides.view", "Slide viewer")
ws = workspace()
state = st.session_state
# The callbacks of one interaction run just before its script run and read "_run" before this line
# bumps it, so a callback that recorded ``state["_run"] == batch`` belongs to this interaction.
batch = state.get("_run", 0)
state["_run"] = batch + 1
st.title("Slide viewer")

slides = ws.slides()
if not slides:
    st.info("No slides in the workspace yet. Build the demo or add a slide on the **Workspace** page.")
    st.stop()

# -- controls ---------------------------------------------------------------------------------
by_id = {r.slide_id: r for r in slides}
with st.sidebar:
    slide_id = st.selectbox("Slide", list(by_id), format_func=lambda i: by_id[i].name, key="slide_id")

rec = by_id[slide_id]
if ws.default_grid_key(slide_id) is None:
    st.warning(f"{rec.name} has not been analysed yet (tissue mask, tile grid, layers).")
    if st.button("Analyse now", key="analyse"):
        bar = st.progress(0.0, "analysing")
        try:
            ws.analyse(slide_id, progress=lambda f, m: bar.progress(min(f, 1.0), m))
            ws.audit.record(actor, "slide.analysed", "slide", slide_id)
            tile_service().invalidate(slide_id)
            st.rerun()
        except PathVizError as exc:
            st.error(str(exc))
    st.stop()

grid = ws.grid(slide_id)
# model layers: only those of the versions the product uses (production alias, else newest); a
# retrained model writes its own layers and never replaces another version's
layer_refs = chosen_layer_refs(ModelRegistry(ws.models_dir))
layer_names = ws.layer_names(slide_id, model_tags=set(layer_refs))
layer_options = [NO_LAYER] + layer_names
if state.get("layer") not in layer_options:  # first visit, or a layer this slide lacks: its default layer
    state["layer"] = layer_options[min(2, len(layer_names))]
with st.sidebar:
    layer_name = st.selectbox("Score layer", layer_options, key="layer",
                              format_func=lambda n: layer_label(n, layer_refs))
    cmap = st.selectbox("Colour map", COLORMAPS, key="cmap")
    opacity = st.slider("Overlay opacity", 0.0, 1.0, 0.5, 0.05, key="opacity")
    show_mask = st.checkbox("Tissue mask", value=False, key="show_mask")
    mask_opacity = st.slider("Mask opacity", 0.0, 1.0, 0.35, 0.05, key="mask_opacity", disabled=not show_mask)
    top_k = st.number_input("Flagged patches (top k)", 1, 100, 10, key="top_k")

# The review panel belongs to this slide and layer: a new slide or layer starts at patch #1.
panel = (slide_id, layer_name)
if state.get("_review_panel") not in (None, panel):
    state["selected_rank"] = 1
    state.pop("focus", None)  # its rank outlined another layer's (or slide's) patch
state["_review_panel"] = panel

layer = ws.layer(slide_id, layer_name) if layer_name != NO_LAYER else None
overlay = None
if layer is not None:
    # display scale and transparency floor: a layer's meta["display"] gives their starting values
    # (e.g. attention maps: percentile, floor 50); the widgets are per slide and layer, like the range
    start_scale, start_floor = display_defaults(layer.meta)
    wkey = f"{slide_id}_{layer.name}"
    with st.sidebar:
        scale = st.radio("Display scale", SCALES, index=SCALES.index(start_scale), key=f"scale_{wkey}",
                         format_func=SCALE_LABELS.get,
                         help="Percentile: each patch is coloured by its rank among this slide's values of the "
                              "layer, so the map is never uniformly cold.")
        if scale == "percentile":
            vmin, vmax = st.slider("Percentile range", 0.0, 100.0, (0.0, 100.0), step=1.0, key=f"prange_{wkey}",
                                   format="%.0f")
        else:
            lo, hi = layer.value_range()
            vmin, vmax = st.slider(
                f"Value range ({layer.units})" if layer.units else "Value range",
                lo, hi, (lo, hi), step=(hi - lo) / 200 if hi > lo else None,  # the default 0.01 step snaps OD ranges
                key=f"range_{wkey}", format="%.3g",
            )
        floor = st.slider("Transparent below percentile", 0, MAX_FLOOR, start_floor, key=f"floor_{wkey}",
                          help="Patches whose percentile rank within this slide is below this are not drawn (0 = off).")
    overlay = {"layer": layer.name, "cmap": cmap, "vmin": vmin, "vmax": vmax, "opacity": opacity,
               "scale": scale, "floor": int(floor)}

st.caption(
    f"{rec.name} · {rec.width}x{rec.height} px · {rec.mpp:.4g} µm/px"
    + (" (declared)" if rec.declared_mpp else "")
    + f" · {len(grid)} tissue patches of {grid.patch_size} px at {grid.mpp} µm/px"
)
# Everything above the viewer that depends on the layer sits in one container, so the viewer keeps
# its place in the page when a layer adds or drops a note (a moved component is remounted, and a
# remount racing a rerun can leave its frame blank).
with st.container():
    if rec.source == "demo_cohort" and layer_name in ("haematoxylin", "eosin"):
        from pages.ui.demo import STAIN_LAYER_NOTE

        st.info(STAIN_LAYER_NOTE)

    # -- legend -----------------------------------------------------------------------------------
    if layer is not None:
        colours = ", ".join(legend_colors(cmap))
        bar = f"<div style='width:220px;height:12px;background:linear-gradient(to right,{colours});border:1px solid #999'></div>"
        units = html.escape(layer.units)
        if scale == "percentile":  # percentile ticks with the layer's raw values at those percentiles
            try:
                ticks = percentile_ticks(layer.scores, (vmin, (vmin + vmax) / 2, vmax))
            except PathVizError:  # no finite value in the layer: no ticks to show
                ticks = []
            marks = "".join(f"<span>p{p:.0f} = {v:.3g}</span>" for p, v in ticks)
            scale_html = (f"<div style='display:flex;flex-direction:column'>{bar}<div style='width:220px;display:flex;"
                          f"justify-content:space-between;font-size:0.8em'>{marks}</div></div><span>{units} "
                          "(percentile rank within the slide)</span>")
        else:
            scale_html = f"<span>{vmin:.3g}</span>{bar}<span>{vmax:.3g} {units}</span>"
        st.markdown(f"<div data-testid='pv-legend' style='display:flex;align-items:center;gap:8px'>"
                    f"<b>{html.escape(layer.title)}</b>{scale_html}</div>", unsafe_allow_html=True)
        if floor:
            ranks = percentile_ranks(layer.scores)
            kept = layer.scores[ranks >= floor]
            st.caption(f"Transparent: patches ranked below p{floor} within this slide"
                       + (f" (values below {kept.min():.3g} {layer.units})." if kept.size else "."))
        st.caption(layer.description)
        tag = split_model_layer_name(layer.name)[1]
        if tag in layer_refs:  # a model's map: its held-out evidence beside it
            line, warning = model_evidence(layer_refs[tag], ModelRegistry(ws.models_dir).get(layer_refs[tag]).metrics)
            st.caption(line)
            if warning:
                st.warning(f"⚠ {warning}")

# -- flagged patches ----------------------------------------------------------------------------
table = flagged_table(ws, slide_id, layer.name, int(top_k)) if layer is not None else None
focus = state.get("focus")
if focus and focus.get("slide_id") != slide_id:
    focus = None
flags = [] if table is None else [
    {"rank": int(r.rank), "x": int(r.x), "y": int(r.y), "w": int(r.width), "h": int(r.height)} for r in table.itertuples()
]

if not frontend_installed():
    st.error("The viewer's JavaScript is not installed. Run `python scripts/fetch_frontend.py` (scripts/app.sh does this).")
else:
    slide_viewer(
        tile_url=VIEWER_TILE_URL,  # the app's own server (same origin): see pages/ui/context.py
        slide={"id": slide_id, "width": rec.width, "height": rec.height, "tile_size": TILE_SIZE, "mpp": rec.mpp},
        overlay=overlay,
        mask={"show": bool(show_mask), "opacity": float(mask_opacity)},
        flags=flags,
        focus=focus,
    )


@st.cache_data(show_spinner=False, max_entries=512)
def _crop(home: str, slide_id: str, rect: tuple[int, int, int, int], size: int):
    return read_patch_image(ws, slide_id, rect, size)


# -- review callbacks (they run before the next script run draws anything) ---------------------
def _select(sid: str, rank: int, rect: tuple[int, int, int, int]) -> None:
    """Show patch ``rank`` in the review panel (form loaded from its saved review) and centre the viewer on it."""
    state["focus"] = {"slide_id": sid, "rank": int(rank), "x": rect[0], "y": rect[1], "w": rect[2], "h": rect[3],
                      "nonce": time.time()}
    state["selected_rank"] = int(rank)
    state["_review_nav"] = state.get("_run", 0)  # a navigation: the form loads the patch's saved review


def _centre(row) -> None:
    _select(slide_id, int(row.rank), (int(row.x), int(row.y), int(row.width), int(row.height)))


def _step(sid: str, lname: str, k: int, step: int) -> None:
    """Next (+1) or previous (-1) flagged patch of the panel's slide and layer, wrapping round."""
    rows = flagged_table(ws, sid, lname, k)
    if rows.empty:
        return
    ranks = [int(r) for r in rows["rank"]]
    cur = state.get("selected_rank")
    pos = ranks.index(cur) if cur in ranks else -1
    r = rows.iloc[(pos + step) % len(rows)]
    _select(sid, int(r["rank"]), (int(r.x), int(r.y), int(r.width), int(r.height)))


def _edited() -> None:
    """The user changed the verdict or comment: remember for which patch, in which interaction."""
    state["_review_edited"] = (state.get("_run", 0), (state.get("slide_id"), state.get("layer"), state.get("selected_rank")))


def _save(sid: str, lname: str, k: int, verdict: str | None = None) -> None:
    """Save a review of the patch selected in the panel of slide ``sid`` and layer ``lname``.

    ``verdict`` None takes the form's verdict (the Save button); "agree"/"disagree" are the quick
    buttons. The patch is the selected rank as it is now (a choice made in the same interaction
    counts); a slide or layer that changed in the same interaction saves nothing.
    """
    me = acting("reviews.write")  # checked now: the page's check ran before this click
    if me is None:
        return
    if (state.get("slide_id"), state.get("layer")) != (sid, lname):
        state["_review_flash"] = ("error", "The slide or layer changed before the review was saved; nothing was saved.")
        return
    verdict = verdict or state.get("verdict")
    rank = state.get("selected_rank")
    rows = flagged_table(ws, sid, lname, max(k, rank if isinstance(rank, int) else 1))
    hit = rows[rows["rank"] == rank]
    if hit.empty:
        state["_review_flash"] = ("error", f"Patch {rank!r} is not a flagged patch of this layer; nothing was saved.")
        return
    r = hit.iloc[0]
    rect = (int(r.x), int(r.y), int(r.width), int(r.height))
    try:
        ws.save_review(me, sid, lname, ws.grid(sid).key, rect, verdict, state.get("comment") or "", float(r.score))
    except PathVizError as exc:
        state["_review_flash"] = ("error", str(exc))
        return
    state["verdict"] = verdict  # the form now shows what was saved
    state["_review_shown"] = (sid, lname, int(rank))
    state["_review_flash"] = ("success", f"Saved: {verdict} on patch #{int(rank)} by {me.username}.")


def _exported(sid: str, fmt: str, rows: int) -> None:
    """Download callback: audit the export as the user logged in now."""
    me = acting("reviews.export")
    if me is not None:
        ws.record_export(me, sid, fmt, rows)


if table is None:
    st.info("Choose a score layer to see its flagged patches.")
    st.stop()

ranks = [int(r) for r in table["rank"]]
if state.get("selected_rank") not in ranks:  # e.g. top k lowered below the chosen rank
    state["selected_rank"] = ranks[0]
selected_now = int(state["selected_rank"])

st.subheader(f"Top {len(table)} flagged patches · {layer.title}")
home = str(ws.home)
for start in range(0, len(table), GALLERY_COLUMNS):
    cols = st.columns(GALLERY_COLUMNS)
    for col, row in zip(cols, list(table.itertuples())[start : start + GALLERY_COLUMNS]):
        with col:
            rect = (int(row.x), int(row.y), int(row.width), int(row.height))
            st.image(_crop(home, slide_id, rect, grid.patch_size), width="stretch")
            badge = BADGES.get(row.verdict, "unreviewed")
            here = " · **◀ in review**" if int(row.rank) == selected_now else ""
            st.caption(f"#{row.rank} · score {row.score:.3g} · x {row.x}, y {row.y} · {badge}{here}")
            st.button("Centre", key=f"centre_{row.rank}", on_click=_centre, args=(row,))

# -- review -----------------------------------------------------------------------------------
st.subheader("Review")
done, total = review_progress(table)
st.progress(done / total if total else 0.0)
st.markdown(f"<span data-testid='pv-review-counter'>Reviewed {done} of {total}</span> flagged patches of this slide "
            "and layer", unsafe_allow_html=True)
st.caption(
    f"Keyboard: **{SHORTCUTS['agree']}** agree and save · **{SHORTCUTS['disagree']}** disagree and save · "
    f"**{SHORTCUTS['next']}** next patch · **{SHORTCUTS['prev']}** previous patch "
    "(they act when the page has the focus: click outside the comment box or the slide viewer first)."
)
selected = st.selectbox("Patch", ranks, key="selected_rank", format_func=lambda r: f"#{r}")
row = table.loc[table["rank"] == selected].iloc[0]
rect = (int(row.x), int(row.y), int(row.width), int(row.height))

# Load the form from this patch's latest saved review (blank if none) whenever the patch it shows
# changes, unless the user filled it in for this very patch in this same interaction (e.g. chose
# patch #2 and typed its comment before the page had rerun); Next / Previous / Centre always load.
shown = (slide_id, layer.name, int(selected))
if state.get("_review_shown") != shown:
    edited_now = state.get("_review_edited") == (batch, shown) and state.get("_review_nav") != batch
    if not edited_now:
        state["verdict"] = row.verdict or None
        state["comment"] = row.comment or ""
    state["_review_shown"] = shown

rank_html = ""
if scale == "percentile":  # the raw score's percentile rank among this slide's patches, beside it
    rank = float(percentile_ranks(layer.patch_scores)[int(row.patch_index)])
    if math.isfinite(rank):
        rank_html = f" (<span data-testid='pv-review-rank'>p{rank:.0f}</span> of this slide's patches)"
st.markdown(
    f"<div data-testid='pv-review-patch'>Patch <b>#{int(selected)}</b> of <b>{html.escape(rec.name)}</b> · "
    f"{html.escape(layer.title)} · "
    f"score <b data-testid='pv-review-score'>{row.score:.3g}</b>{rank_html} · level-0 x {row.x}, y {row.y}, "
    f"{row.width}x{row.height} px · {BADGES.get(row.verdict, 'unreviewed')}</div>",
    unsafe_allow_html=True,
)
left, right = st.columns([1, 2])
with left:
    st.image(_crop(home, slide_id, rect, grid.patch_size), width="stretch")
    meta = layer.meta or {}
    if "top_maps" in meta and "model_version" in meta:  # a PAGE-Net layer: the patch's top maps (seed 000, Fig. 4)
        st.metric("Patient's PAGE-Net prognostic index", f"{meta['prognostic_index']:.3f}")
        try:
            maps = FeatureStore(ws, meta["model_version"]).patch_maps(slide_id, (int(row.x), int(row.y)), meta["top_maps"])
            shown = patch_map_images(maps)  # one shared percentile scale, upsampled for display
            map_cols = st.columns(len(maps))
            for col, j, img in zip(map_cols, meta["top_maps"], shown.images):
                col.image(img, caption=f"map {j}", width="stretch")
            ticks = shown.ticks
            bar = ", ".join(shown.legend)
            st.markdown(
                "<div data-testid='pv-maps-legend' style='font-size:0.8em'>"
                f"<div style='height:10px;background:linear-gradient(to right,{bar});border:1px solid #999'></div>"
                "<div style='display:flex;justify-content:space-between'>"
                + "".join(f"<span>{'median' if p == 50 else ('min' if p == 0 else 'max')} {v:.3g}</span>" for p, v in ticks)
                + "</div></div>",
                unsafe_allow_html=True,
            )
            silent = [str(j) for j, off in zip(meta["top_maps"], shown.silent) if off]
            st.caption(
                "Activations of the survival-discriminative maps that move the prognostic index most, inside this "
                "patch, on one shared percentile scale: the colour is the value's rank among all the values of "
                "these maps (black = lowest, yellow = highest; the bar's labels are the activation values), so a "
                "weak map keeps its structure."
                + (f" Map{'s' if len(silent) > 1 else ''} {', '.join(silent)} {'are' if len(silent) > 1 else 'is'} "
                   "0 everywhere in this patch (no activation), hence black." if silent else "")
            )
        except PathVizError as exc:
            st.caption(str(exc))
with right:
    if not actor.can("reviews.write"):
        st.caption(f"Reviews are written by pathologists; {actor.username} ({actor.roles_text}) sees them read-only.")
    else:
        st.radio("Verdict", ["agree", "disagree"], index=None, horizontal=True, key="verdict", on_change=_edited)
        st.text_area("Comment", key="comment", on_change=_edited, max_chars=MAX_COMMENT_CHARS)
        save_args = (slide_id, layer.name, int(top_k))
        with st.container(horizontal=True):
            st.button("Save review", key="save_review", type="primary", on_click=_save, args=save_args)
            st.button("Agree", key="quick_agree", shortcut=SHORTCUTS["agree"], on_click=_save,
                      args=save_args + ("agree",), help="Save 'agree' with the comment above")
            st.button("Disagree", key="quick_disagree", shortcut=SHORTCUTS["disagree"], on_click=_save,
                      args=save_args + ("disagree",), help="Save 'disagree' with the comment above")
            st.button("Previous", key="prev_patch", shortcut=SHORTCUTS["prev"], on_click=_step, args=save_args + (-1,))
            st.button("Next patch", key="next_patch", shortcut=SHORTCUTS["next"], on_click=_step, args=save_args + (1,))
    flash = state.pop("_review_flash", None)
    if flash:
        (st.success if flash[0] == "success" else st.error)(flash[1])
    history = [r for r in ws.db.reviews(slide_id, layer.name) if (r.x, r.y, r.width, r.height) == rect]
    for r in reversed(history):
        st.text(review_line(r))  # plain text: a comment's Markdown or HTML is shown, never rendered or fetched

# -- export -----------------------------------------------------------------------------------
st.subheader("Export")
st.dataframe(table, hide_index=True, width="stretch")
if actor.can("reviews.export"):  # each download is audited (export.downloaded)
    c1, c2 = st.columns(2)
    c1.download_button(
        "QuPath GeoJSON", json.dumps(to_geojson(table, layer.name, slide_id), indent=1),
        file_name=f"{slide_id}_{layer.name}_flagged.geojson", mime="application/geo+json", key="dl_geojson",
        on_click=_exported, args=(slide_id, "geojson", len(table)),
    )
    c2.download_button(
        "CSV", flagged_csv(table), file_name=f"{slide_id}_{layer.name}_flagged.csv", mime="text/csv", key="dl_csv",
        on_click=_exported, args=(slide_id, "csv", len(table)),
    )
