"""Colour maps for heatmap overlays, sampled from plotly's named colour scales."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from plotly.colors import get_colorscale, sample_colorscale

from pathviz.errors import PathVizError

#: Colour maps offered in the viewer (plotly colour-scale names).
COLORMAPS = ("viridis", "inferno", "magma", "plasma", "turbo", "jet", "rdbu_r", "greens", "blues")


@lru_cache(maxsize=32)
def colormap_lut(name: str) -> np.ndarray:
    """``uint8[256, 3]`` RGB lookup table for a plotly colour scale (``_r`` suffix reverses).

    Raises:
        PathVizError: unknown colour-map name.
    """
    base, reverse = (name[:-2], True) if name.endswith("_r") else (name, False)
    try:
        scale = get_colorscale(base)
    except Exception as exc:  # plotly raises PlotlyError for unknown names
        raise PathVizError(f"Unknown colour map {name!r}.", f"use one of {', '.join(COLORMAPS)}.") from exc
    colours = sample_colorscale(scale, list(np.linspace(0, 1, 256)), colortype="tuple")
    lut = np.clip(np.round(np.asarray(colours) * 255), 0, 255).astype(np.uint8)
    return lut[::-1].copy() if reverse else lut


def colorize(values: np.ndarray, cmap: str, vmin: float, vmax: float, alpha: int = 255) -> np.ndarray:
    """Map values to RGBA.

    Args:
        values: ``float[h, w]``; NaN becomes fully transparent.
        cmap: colour-map name (see :data:`COLORMAPS`), or ``solid:#RRGGBB`` for one colour.
        vmin, vmax: values mapped to the ends of the colour map (clipped outside).
        alpha: opacity 0-255 of the drawn pixels.

    Returns:
        ``uint8[h, w, 4]``.
    """
    out = np.zeros(values.shape + (4,), dtype=np.uint8)
    finite = np.isfinite(values)
    if cmap.startswith("solid:"):
        hexcol = cmap[6:].lstrip("#")
        out[finite, :3] = [int(hexcol[i : i + 2], 16) for i in (0, 2, 4)]
    else:
        span = max(float(vmax) - float(vmin), 1e-12)
        idx = np.clip((values[finite] - vmin) / span * 255.0, 0, 255).astype(np.uint8)
        out[finite, :3] = colormap_lut(cmap)[idx]
    out[finite, 3] = alpha
    return out


def legend_colors(cmap: str, n: int = 11) -> list[str]:
    """``n`` hex colours along the map, for drawing a legend bar."""
    lut = colormap_lut(cmap)
    picks = lut[np.linspace(0, 255, n).round().astype(int)]
    return ["#%02x%02x%02x" % tuple(int(v) for v in c) for c in picks]
