"""DeepZoom tiles of a heatmap overlay, on exactly the slide's DeepZoom geometry.

The overlay pyramid has the same level sizes and tile lattice as
``openslide.deepzoom.DeepZoomGenerator(slide, tile_size, overlap=0, limit_bounds=False)``, so the
viewer stacks overlay tile ``(level, col, row)`` on slide tile ``(level, col, row)`` and the two
align by construction (the alignment test checks this against OpenSlide at every level).

Zoomed out, one overlay pixel covers several raster cells: it shows their maximum (NaN-aware),
so a single hot patch stays visible at every zoom, as a pathologist scanning a slide expects.

Display scales (:data:`SCALES`): ``"value"`` colours the raster's own values; ``"percentile"``
colours each cell's percentile rank (0-100) among all finite values of the raster (the slide's
layer), so a map is never uniformly cold. In both, a *floor* (0-99) draws the cells whose rank is
below it fully transparent (:func:`display_values`).
"""

from __future__ import annotations

import math
import threading

import numpy as np
from PIL import Image

from pathviz.errors import PathVizError
from pathviz.layers.colormap import colorize, percentile_scale
from pathviz.layers.score import Raster

#: Display scales of a score overlay: colour by value, or by percentile rank within the slide.
SCALES = ("value", "percentile")
#: Highest "transparent below percentile" floor (0 = off).
MAX_FLOOR = 99


def percentile_ranks(values: np.ndarray) -> np.ndarray:
    """Percentile rank (0-100) of each value among all finite ``values`` (e.g. a slide's layer).

    The rank is 100 x the fraction of the other finite values that are strictly smaller
    (:func:`~pathviz.layers.colormap.percentile_scale`): ties share one rank, the lowest value has
    rank 0 and a unique maximum 100. Ranks are rounded to 4 decimals, so a rank meant to be 29 is
    not 28.999998 (a floor of 29 must keep it).

    Args:
        values: ``float[...]`` of any shape (``float[n]`` patch scores, ``float[n, k, k]``
            sub-patch maps, a ``float[rows, cols]`` raster). NaN is ignored and stays NaN.

    Returns:
        ``float32`` of the same shape; an empty array gives an empty array.

    Raises:
        PathVizError: ``values`` is not numeric.
    """
    arr = np.asarray(values)
    if arr.size == 0:
        return np.zeros(arr.shape, dtype=np.float32)
    return np.round(percentile_scale(arr).astype(np.float64) * 100.0, 4).astype(np.float32)


def check_display(scale: str, floor: int) -> None:
    """Raise PathVizError unless ``scale`` is one of :data:`SCALES` and ``floor`` an integer 0-99."""
    if scale not in SCALES:
        raise PathVizError(f"Unknown display scale {scale!r}.", f"use one of {', '.join(SCALES)}.")
    if isinstance(floor, bool) or not isinstance(floor, (int, np.integer)) or not 0 <= floor <= MAX_FLOOR:
        raise PathVizError(f"Transparency floor {floor!r} is not an integer percentile 0-{MAX_FLOOR}.",
                           "use e.g. 50 (0 = off).")


def display_values(values: np.ndarray, scale: str = "value", floor: int = 0,
                   ranks: np.ndarray | None = None) -> np.ndarray:
    """The values an overlay draws for a display scale and a transparency floor.

    Args:
        values: ``float[...]`` layer values (a raster, patch scores or sub-patch maps); NaN = no value.
        scale: ``"value"`` (the values themselves) or ``"percentile"`` (their percentile ranks 0-100
            among all finite ``values``, :func:`percentile_ranks`).
        floor: percentile 0-99; values whose rank is below it become NaN (drawn transparent).
            0 = off.
        ranks: :func:`percentile_ranks` of ``values`` if already computed (same shape).

    Returns:
        ``float32`` of the same shape as ``values``: values (layer units) or ranks (0-100), NaN
        where there is no value or the rank is below ``floor``.

    Raises:
        PathVizError: unknown scale, floor outside 0-99 (see :func:`check_display`).
    """
    check_display(scale, floor)
    if ranks is None and (scale == "percentile" or floor > 0):
        ranks = percentile_ranks(values)
    out = np.array(ranks if scale == "percentile" else values, dtype=np.float32, copy=True)
    if floor > 0:
        with np.errstate(invalid="ignore"):
            out[~(ranks >= floor)] = np.nan
    return out


def display_defaults(meta: dict | None) -> tuple[str, int]:
    """``(scale, floor)`` a layer asks the viewer to start with, from its ``meta["display"]``
    (e.g. ``{"display": {"scale": "percentile", "floor": 50}}``); ``("value", 0)`` when absent.
    A malformed entry falls back to the default for that field (never raises)."""
    display = (meta or {}).get("display")
    display = display if isinstance(display, dict) else {}
    scale = display.get("scale") if display.get("scale") in SCALES else "value"
    floor = display.get("floor", 0)
    try:
        floor = int(floor) if float(floor) == int(floor) else 0
    except (TypeError, ValueError, OverflowError):
        floor = 0
    return scale, floor if 0 <= floor <= MAX_FLOOR else 0


def deepzoom_level_dimensions(width: int, height: int) -> list[tuple[int, int]]:
    """DeepZoom level sizes, level 0 = 1x1 up to ``(width, height)``, halving with ceil
    (the Deep Zoom spec, as OpenSlide's DeepZoomGenerator computes them)."""
    size = (int(width), int(height))
    dims = [size]
    while size[0] > 1 or size[1] > 1:
        size = (max(1, math.ceil(size[0] / 2)), max(1, math.ceil(size[1] / 2)))
        dims.append(size)
    return dims[::-1]


class OverlayDeepZoom:
    """DeepZoom pyramid of a :class:`~pathviz.layers.score.Raster` over a slide.

    Args:
        raster: the values to draw, in level-0 cells.
        width, height: the slide's level-0 size in pixels.
        tile_size: DeepZoom tile side in pixels (must match the slide's generator).
    """

    def __init__(self, raster: Raster, width: int, height: int, tile_size: int = 256):
        self.raster = raster
        self.width, self.height = int(width), int(height)
        self.tile_size = int(tile_size)
        self.level_dimensions = deepzoom_level_dimensions(width, height)
        self.level_count = len(self.level_dimensions)
        self._ranks: np.ndarray | None = None
        self._shown: dict[tuple[str, int], np.ndarray] = {}  # (scale, floor) -> display values, newest last
        self._lock = threading.Lock()

    def display(self, scale: str = "value", floor: int = 0) -> np.ndarray:
        """``float32[rows, cols]``: the raster as drawn with a display scale and floor
        (:func:`display_values`; ranks over all finite raster cells). The last few settings are kept.

        Raises:
            PathVizError: unknown scale or floor outside 0-99.
        """
        check_display(scale, floor)
        if scale == "value" and floor == 0:
            return self.raster.values
        with self._lock:
            shown = self._shown.get((scale, floor))
            if shown is None:
                if self._ranks is None:
                    self._ranks = percentile_ranks(self.raster.values)
                shown = display_values(self.raster.values, scale, floor, self._ranks)
                self._shown[(scale, floor)] = shown
                while len(self._shown) > 4:
                    del self._shown[next(iter(self._shown))]
            return shown

    def level_tiles(self, level: int) -> tuple[int, int]:
        """``(cols, rows)`` of tiles at a DeepZoom level."""
        w, h = self.level_dimensions[level]
        return math.ceil(w / self.tile_size), math.ceil(h / self.tile_size)

    def tile_values(self, level: int, address: tuple[int, int], scale: str = "value", floor: int = 0) -> np.ndarray:
        """``float32[h, w]`` values drawn in one tile (NaN = transparent): raster values, or
        percentile ranks 0-100 with ``scale="percentile"``; cells ranked below ``floor`` are NaN
        before zoomed-out pixels take their maximum.

        Raises:
            ValueError: level or address outside the pyramid; PathVizError: bad scale or floor.
        """
        if not 0 <= level < self.level_count:
            raise ValueError(f"Invalid DeepZoom level {level} (0..{self.level_count - 1}).")
        col, row = address
        cols, rows = self.level_tiles(level)
        if not (0 <= col < cols and 0 <= row < rows):
            raise ValueError(f"Invalid tile address {address} at level {level} ({cols}x{rows} tiles).")
        lw, lh = self.level_dimensions[level]
        down = 2.0 ** (self.level_count - 1 - level)  # level-0 pixels per level pixel
        px0, py0 = col * self.tile_size, row * self.tile_size
        tw, th = min(self.tile_size, lw - px0), min(self.tile_size, lh - py0)
        xs = self._cell_starts(px0, tw, down, self.raster.cell_w)
        ys = self._cell_starts(py0, th, down, self.raster.cell_h)
        return _max_pool(self.display(scale, floor), ys, xs)

    def get_tile(self, level: int, address: tuple[int, int], cmap: str, vmin: float, vmax: float,
                 scale: str = "value", floor: int = 0) -> Image.Image:
        """RGBA tile image; transparent where the raster has no value or the rank is below ``floor``.
        ``vmin``/``vmax`` are in the layer's units, or percentiles (0-100) with ``scale="percentile"``."""
        values = self.tile_values(level, address, scale, floor)
        return Image.fromarray(colorize(values, cmap, vmin, vmax), "RGBA")

    def get_dzi(self, fmt: str = "png") -> str:
        """The DZI XML descriptor (same geometry as the slide's, overlap 0)."""
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" Format="{fmt}" '
            f'Overlap="0" TileSize="{self.tile_size}"><Size Width="{self.width}" Height="{self.height}"/></Image>'
        )

    @staticmethod
    def _cell_starts(p0: int, n: int, scale: float, cell: float) -> np.ndarray:
        """For output pixels ``p0 .. p0+n-1``, the index of the first raster cell each covers
        (``int64[n + 1]``; the last entry is the end of the last pixel's span)."""
        edges = (p0 + np.arange(n + 1)) * scale / cell
        starts = np.floor(edges[:-1]).astype(np.int64)
        end = max(int(np.ceil(edges[-1])), int(starts[-1]) + 1)
        return np.append(starts, end)


def _max_pool(values: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """NaN-aware max of ``values`` over the cell spans ``[ys[i], max(ys[i+1], ys[i]+1))`` x
    ``[xs[j], ...)``; spans outside the raster give NaN."""
    rows, cols = values.shape
    out_h, out_w = len(ys) - 1, len(xs) - 1
    r0, r1 = int(ys[0]), int(ys[-1])
    c0, c1 = int(xs[0]), int(xs[-1])
    # Pad the window so spans past the raster edge read NaN.
    window = np.full((r1 - r0, c1 - c0), np.nan, dtype=np.float32)
    rr0, rr1, cc0, cc1 = max(r0, 0), min(r1, rows), max(c0, 0), min(c1, cols)
    if rr1 > rr0 and cc1 > cc0:
        window[rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0] = values[rr0:rr1, cc0:cc1]
    if window.size == 0:
        return np.full((out_h, out_w), np.nan, dtype=np.float32)
    ry = np.minimum(ys[:-1] - r0, window.shape[0] - 1)
    rx = np.minimum(xs[:-1] - c0, window.shape[1] - 1)
    with np.errstate(invalid="ignore"):
        pooled = np.fmax.reduceat(window, ry, axis=0) if out_h > 0 else window[:0]
        pooled = np.fmax.reduceat(pooled, rx, axis=1) if out_w > 0 else pooled[:, :0]
    return pooled.astype(np.float32, copy=False)
