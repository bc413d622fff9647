"""DeepZoom tiles of a heatmap overlay, on exactly the slide's DeepZoom geometry.

The overlay pyramid has the same level sizes and tile lattice as
``openslide.deepzoom.DeepZoomGenerator(slide, tile_size, overlap=0, limit_bounds=False)``, so the
viewer stacks overlay tile ``(level, col, row)`` on slide tile ``(level, col, row)`` and the two
align by construction (the alignment test checks this against OpenSlide at every level).

Zoomed out, one overlay pixel covers several raster cells: it shows their maximum (NaN-aware),
so a single hot patch stays visible at every zoom, as a pathologist scanning a slide expects.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from pathviz.layers.colormap import colorize
from pathviz.layers.score import Raster


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

    def level_tiles(self, level: int) -> tuple[int, int]:
        """``(cols, rows)`` of tiles at a DeepZoom level."""
        w, h = self.level_dimensions[level]
        return math.ceil(w / self.tile_size), math.ceil(h / self.tile_size)

    def tile_values(self, level: int, address: tuple[int, int]) -> np.ndarray:
        """``float32[h, w]`` raster values drawn in one tile (NaN = transparent).

        Raises:
            ValueError: level or address outside the pyramid.
        """
        if not 0 <= level < self.level_count:
            raise ValueError(f"Invalid DeepZoom level {level} (0..{self.level_count - 1}).")
        col, row = address
        cols, rows = self.level_tiles(level)
        if not (0 <= col < cols and 0 <= row < rows):
            raise ValueError(f"Invalid tile address {address} at level {level} ({cols}x{rows} tiles).")
        lw, lh = self.level_dimensions[level]
        scale = 2.0 ** (self.level_count - 1 - level)  # level-0 pixels per level pixel
        px0, py0 = col * self.tile_size, row * self.tile_size
        tw, th = min(self.tile_size, lw - px0), min(self.tile_size, lh - py0)
        xs = self._cell_starts(px0, tw, scale, self.raster.cell_w)
        ys = self._cell_starts(py0, th, scale, self.raster.cell_h)
        return _max_pool(self.raster.values, ys, xs)

    def get_tile(self, level: int, address: tuple[int, int], cmap: str, vmin: float, vmax: float) -> Image.Image:
        """RGBA tile image; transparent where the raster has no value."""
        return Image.fromarray(colorize(self.tile_values(level, address), cmap, vmin, vmax), "RGBA")

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
