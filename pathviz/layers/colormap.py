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


def percentile_scale(values: np.ndarray) -> np.ndarray:
    """Put several maps on one shared colour scale that shows structure: each value becomes its
    percentile rank among all finite values of ``values``.

    A common linear scale (0 to the overall maximum) paints every map whose values are far below
    another map's maximum solid black; ranks keep one monotone scale (a higher value is never a
    darker colour, in any map) and spread the colours over all the values shown.

    Args:
        values: ``float[...]``, e.g. ``float[n_maps, h, w]``, the maps drawn together. NaN is ignored
            and stays NaN.

    Returns:
        ``float32`` of the same shape, in ``[0, 1]``: the fraction of the other finite values that
        are strictly smaller (0 = the lowest value, ties included; 1 = the unique maximum). All
        values equal gives 0 everywhere.

    Raises:
        PathVizError: ``values`` is empty or not numeric.
    """
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PathVizError("Percentile scaling needs numeric values.", "pass a float array of map activations.") from exc
    if arr.size == 0:
        raise PathVizError("Percentile scaling got no values.", "pass at least one map with at least one value.")
    out = np.full(arr.shape, np.nan, dtype=np.float32)
    finite = np.isfinite(arr)
    n = int(finite.sum())
    if n == 0:
        return out
    ordered = np.sort(arr[finite])
    below = np.searchsorted(ordered, arr[finite], side="left")  # how many values are strictly smaller
    out[finite] = below / max(n - 1, 1)
    return out


def percentile_ticks(values: np.ndarray, percentiles: tuple[float, ...] = (0, 50, 100)) -> list[tuple[float, float]]:
    """Legend ticks for :func:`percentile_scale`: ``[(percentile, value)]``, the value (in the maps'
    own units) found at each percentile (0-100) of all finite ``values``.

    Raises:
        PathVizError: no finite values, or a percentile outside 0-100.
    """
    arr = np.asarray(values, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        raise PathVizError("No finite values to put on a legend.", "check the maps (all NaN or empty).")
    if any(not 0 <= p <= 100 for p in percentiles):
        raise PathVizError(f"Percentiles {percentiles} must lie in 0-100.", "use e.g. (0, 50, 100).")
    # "lower" = a value that occurs in the maps, so the legend names real activations
    qs = np.percentile(finite, list(percentiles), method="lower")
    return [(float(p), float(q)) for p, q in zip(percentiles, qs)]
