"""The deep-zoom slide viewer component (OpenSeadragon in assets/viewer/)."""

from __future__ import annotations

from pathlib import Path

import streamlit.components.v1 as components

_FRONTEND = Path(__file__).resolve().parents[2] / "assets" / "viewer"
_component = components.declare_component("pathviz_viewer", path=str(_FRONTEND))


def frontend_installed() -> bool:
    return (_FRONTEND / "vendor" / "openseadragon" / "openseadragon.min.js").exists()


def slide_viewer(
    tile_url: str,
    slide: dict,
    overlay: dict | None,
    mask: dict,
    flags: list[dict],
    focus: dict | None,
    height: int = 620,
    key: str = "viewer",
):
    """Draw the viewer.

    Args:
        tile_url: base URL of the tile server.
        slide: ``{"id", "width", "height", "tile_size", "mpp"}``.
        overlay: ``{"layer", "cmap", "vmin", "vmax", "opacity", "scale", "floor"}`` or None
            (``scale`` "value" or "percentile", then ``vmin``/``vmax`` are percentiles; ``floor``
            0-99: patches ranked below it are transparent; both optional, default value/0).
        mask: ``{"show": bool, "opacity": float}``.
        flags: flagged patches ``[{"rank", "x", "y", "w", "h"}]`` (level-0 px), outlined.
        focus: ``{"rank", "x", "y", "w", "h", "nonce"}``: centre on this patch when ``nonce`` changes.
    """
    return _component(
        tile_url=tile_url, slide=slide, overlay=overlay, mask=mask, flags=flags, focus=focus,
        height=height, key=key, default=None,
    )
