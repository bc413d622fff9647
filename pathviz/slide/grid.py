"""Tile grid: square patches of ``patch_size`` pixels at a target ``mpp``, kept where there is tissue.

A grid is a regular lattice anchored at level-0 pixel (0, 0). Cell ``(col, row)`` covers the
level-0 rectangle ``[col * tile_size_level0, (col + 1) * tile_size_level0)`` along x (likewise y),
where ``tile_size_level0 = patch_size * mpp / slide_mpp``. Score layers live on this lattice, so
the same numbers index patches, heatmap cells and exported rectangles.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pathviz.errors import EmptyTissueMaskError, PathVizError
from pathviz.store.npzio import load_npz, save_npz
from pathviz.slide.reader import Slide
from pathviz.slide.tissue import TissueMask

#: Default analysis grid, defined once here (``tile_grid``'s defaults; the CLI imports them):
#: 256-px patches at 0.5 microns per pixel (20x objective), kept where at least 50% is tissue.
DEFAULT_MPP = 0.5
DEFAULT_PATCH_SIZE = 256
DEFAULT_MIN_TISSUE = 0.5


@dataclass(frozen=True)
class TileGrid:
    """Tissue tiles of one slide at one magnification.

    Attributes:
        mpp: target microns per pixel of a patch.
        patch_size: patch side in pixels at ``mpp``.
        tile_size_x, tile_size_y: patch side in level-0 pixels (float; ``patch_size * mpp /
            slide_mpp_x`` and ``..._y``).
        slide_width, slide_height: level-0 slide size, pixels.
        n_cols, n_rows: size of the full lattice (tiles that fit entirely inside the slide).
        cells: ``int32[n_tiles, 2]``: ``(col, row)`` of each kept tile.
        tissue_fraction: ``float32[n_tiles]``: tissue fraction of each kept tile (0-1).
        min_tissue: threshold the tiles were kept at (0-1).
    """

    mpp: float
    patch_size: int
    tile_size_x: float
    tile_size_y: float
    slide_width: int
    slide_height: int
    n_cols: int
    n_rows: int
    cells: np.ndarray
    tissue_fraction: np.ndarray
    min_tissue: float

    def __len__(self) -> int:
        return int(self.cells.shape[0])

    @property
    def coords(self) -> np.ndarray:
        """``int64[n_tiles, 2]``: level-0 ``(x, y)`` of each tile's top-left corner."""
        xy = np.empty((len(self), 2), dtype=np.int64)
        xy[:, 0] = np.floor(self.cells[:, 0] * self.tile_size_x).astype(np.int64)
        xy[:, 1] = np.floor(self.cells[:, 1] * self.tile_size_y).astype(np.int64)
        return xy

    def rect(self, i: int) -> tuple[int, int, int, int]:
        """Level-0 ``(x, y, width, height)`` of tile ``i`` (integer pixels)."""
        x0 = int(np.floor(self.cells[i, 0] * self.tile_size_x))
        y0 = int(np.floor(self.cells[i, 1] * self.tile_size_y))
        x1 = int(np.floor((self.cells[i, 0] + 1) * self.tile_size_x))
        y1 = int(np.floor((self.cells[i, 1] + 1) * self.tile_size_y))
        return x0, y0, x1 - x0, y1 - y0

    def index_at(self, x: float, y: float) -> int | None:
        """Index of the kept tile containing level-0 point ``(x, y)``, or None."""
        col, row = int(x // self.tile_size_x), int(y // self.tile_size_y)
        hit = np.flatnonzero((self.cells[:, 0] == col) & (self.cells[:, 1] == row))
        return int(hit[0]) if hit.size else None

    @property
    def key(self) -> str:
        """File-name-safe identifier, e.g. ``mpp0.500_px256``."""
        return grid_key(self.mpp, self.patch_size)

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the grid as ``.npz`` (arrays plus a JSON header), atomically; returns the path."""
        header = {
            "mpp": self.mpp,
            "patch_size": self.patch_size,
            "tile_size_x": self.tile_size_x,
            "tile_size_y": self.tile_size_y,
            "slide_width": self.slide_width,
            "slide_height": self.slide_height,
            "n_cols": self.n_cols,
            "n_rows": self.n_rows,
            "min_tissue": self.min_tissue,
        }
        return save_npz(path, header, cells=self.cells, tissue_fraction=self.tissue_fraction)

    @classmethod
    def load(cls, path: str | Path) -> "TileGrid":
        """Read a grid written by :meth:`save`.

        Raises:
            PathVizError: the file is missing or not a PathViz grid.
        """
        header, arrays = load_npz(path, "tile grid", "recompute it with `pathviz slide tiles` or `pathviz slide analyse`.")
        return cls(cells=arrays["cells"], tissue_fraction=arrays["tissue_fraction"], **header)

    def to_table(self):
        """Tiles as a pandas DataFrame: ``x, y, width, height`` (level-0 px), ``col, row``,
        ``tissue_fraction``."""
        import pandas as pd

        xy = self.coords
        return pd.DataFrame(
            {
                "x": xy[:, 0],
                "y": xy[:, 1],
                "width": np.round(np.full(len(self), self.tile_size_x)).astype(int),
                "height": np.round(np.full(len(self), self.tile_size_y)).astype(int),
                "col": self.cells[:, 0],
                "row": self.cells[:, 1],
                "tissue_fraction": self.tissue_fraction,
            }
        )


def grid_key(mpp: float, patch_size: int) -> str:
    """The grid's storage key, e.g. ``mpp0.500_px256`` (mpp to 3 decimals, patch side in px)."""
    return f"mpp{mpp:.3f}_px{int(patch_size)}"


def tile_grid(
    slide: Slide,
    mask: TissueMask,
    mpp: float = DEFAULT_MPP,
    patch_size: int = DEFAULT_PATCH_SIZE,
    min_tissue: float = DEFAULT_MIN_TISSUE,
) -> TileGrid:
    """Lay a tile grid over the slide and keep tiles with enough tissue.

    Args:
        slide: the open slide.
        mask: its tissue mask (:func:`~pathviz.slide.tissue.tissue_mask`).
        mpp: target microns per pixel of a patch (e.g. 0.5 for 20x).
        patch_size: patch side in pixels at ``mpp`` (e.g. 256).
        min_tissue: keep tiles whose tissue fraction is at least this (0-1).

    Raises:
        PathVizError: non-positive ``mpp``/``patch_size``, ``min_tissue`` outside 0-1, or a
            patch larger than the slide.
        EmptyTissueMaskError: the mask holds no tissue, or no tile reaches ``min_tissue``.
    """
    if not (mpp > 0 and patch_size > 0):
        raise PathVizError(f"mpp ({mpp}) and patch size ({patch_size}) must be positive.",
                           f"e.g. --mpp {DEFAULT_MPP} --size {DEFAULT_PATCH_SIZE}.")
    if not 0.0 <= min_tissue <= 1.0:
        raise PathVizError(f"min_tissue {min_tissue} is outside 0-1.", "use a fraction such as 0.5.")
    w0, h0 = slide.dimensions
    ts_x = patch_size * mpp / slide.mpp_x
    ts_y = patch_size * mpp / slide.mpp_y
    n_cols, n_rows = int(w0 // ts_x), int(h0 // ts_y)
    if n_cols == 0 or n_rows == 0:
        raise PathVizError(
            f"A {patch_size}px patch at {mpp} mpp is {ts_x:.0f}x{ts_y:.0f} level-0 pixels, larger than "
            f"the slide {slide.path.name} ({w0}x{h0}).",
            "use a smaller patch size or a finer mpp.",
            slide.path,
        )
    if min_tissue > 0 and not mask.mask.any():
        raise EmptyTissueMaskError(
            f"No tissue was detected on {slide.path} (the tissue mask is empty).",
            "check the slide is not blank or out of focus; to tile it anyway use min_tissue=0 "
            "(CLI: --min-tissue 0).",
            slide.path,
        )
    fractions = _cell_fractions(mask, n_cols, n_rows, ts_x, ts_y)
    rows, cols = np.nonzero(fractions >= min_tissue) if min_tissue > 0 else np.indices((n_rows, n_cols)).reshape(2, -1)
    if rows.size == 0:
        raise EmptyTissueMaskError(
            f"No tile of {slide.path.name} reaches the tissue threshold {min_tissue:.2f} "
            f"(largest tile tissue fraction {fractions.max():.2f}).",
            "lower --min-tissue or use a smaller patch size.",
            slide.path,
        )
    cells = np.stack([cols, rows], axis=1).astype(np.int32)
    return TileGrid(
        mpp=float(mpp),
        patch_size=int(patch_size),
        tile_size_x=float(ts_x),
        tile_size_y=float(ts_y),
        slide_width=int(w0),
        slide_height=int(h0),
        n_cols=n_cols,
        n_rows=n_rows,
        cells=cells,
        tissue_fraction=fractions[rows, cols].astype(np.float32),
        min_tissue=float(min_tissue),
    )


def _cell_fractions(mask: TissueMask, n_cols: int, n_rows: int, ts_x: float, ts_y: float) -> np.ndarray:
    """``float[n_rows, n_cols]`` tissue fraction per lattice cell, by area-weighted sampling of
    the mask (each mask pixel counted at its centre)."""
    m = mask.mask.astype(np.float64)
    mr, mc = m.shape
    # level-0 centre of each mask pixel -> lattice cell index
    cx = ((np.arange(mc) + 0.5) * mask.downsample_x // ts_x).astype(np.int64)
    cy = ((np.arange(mr) + 0.5) * mask.downsample_y // ts_y).astype(np.int64)
    keep_c, keep_r = cx < n_cols, cy < n_rows
    sums = np.zeros((n_rows, n_cols))
    counts = np.zeros((n_rows, n_cols))
    sub = m[np.ix_(keep_r, keep_c)]
    rr, cc = np.meshgrid(cy[keep_r], cx[keep_c], indexing="ij")
    np.add.at(sums, (rr, cc), sub)
    np.add.at(counts, (rr, cc), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
    if (counts == 0).any():
        # Lattice cells smaller than a mask pixel: take the mask pixel under the cell centre.
        rows, cols = np.nonzero(counts == 0)
        mx = np.minimum(((cols + 0.5) * ts_x / mask.downsample_x).astype(int), mc - 1)
        my = np.minimum(((rows + 0.5) * ts_y / mask.downsample_y).astype(int), mr - 1)
        frac[rows, cols] = m[my, mx]
    return frac
