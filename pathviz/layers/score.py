"""Score layers: per-patch numbers on a tile grid, and the heatmap raster they become.

A :class:`ScoreLayer` holds one score per patch of a :class:`~pathviz.slide.TileGrid`
(``float32[n_patches]``) or a sub-patch map per patch (``float32[n_patches, k, k]``, e.g. a
Grad-CAM or a survival-discriminative feature map upsampled inside the patch). Every layer kind
(tissue fraction, stain density, Grad-CAM, survival maps, attention weights) goes through this one
type, so the viewer, the flagged-patch gallery and the exports treat them alike.

A :class:`Raster` is the slide-aligned form: ``float32[rows, cols]`` whose cell ``(r, c)`` covers
the level-0 rectangle ``[c * cell_w, (c + 1) * cell_w) x [r * cell_h, (r + 1) * cell_h)``; NaN
means "no value" (drawn transparent).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pathviz.errors import PathVizError
from pathviz.store.npzio import load_npz, save_npz
from pathviz.slide.grid import TileGrid
from pathviz.slide.tissue import TissueMask

_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")


@dataclass(frozen=True)
class Raster:
    """A slide-aligned value grid (see module docstring).

    Attributes:
        values: ``float32[rows, cols]``; NaN where there is no value.
        cell_w, cell_h: level-0 pixels per raster cell along x and y.
    """

    values: np.ndarray
    cell_w: float
    cell_h: float


@dataclass(frozen=True)
class ScoreLayer:
    """Per-patch scores on one tile grid.

    Attributes:
        name: identifier (lower-case letters, digits, ``_``/``-``), e.g. ``haematoxylin``.
        title: human-readable name for legends.
        grid_key: key of the :class:`TileGrid` the scores belong to (``TileGrid.key``).
        scores: ``float32[n_patches]`` or ``float32[n_patches, k, k]`` (sub-patch maps, row-major
            inside the patch, ``[i, 0, 0]`` at the patch's top-left).
        units: unit of the scores for legends (e.g. ``"OD"``, ``"fraction"``).
        description: how the score was computed, with its source.
        higher_is_flagged: True when high scores are the ones to review (default).
        meta: free-form provenance (model version, parameters).
    """

    name: str
    title: str
    grid_key: str
    scores: np.ndarray
    units: str = ""
    description: str = ""
    higher_is_flagged: bool = True
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if not _NAME.match(self.name):
            raise PathVizError(
                f"Layer name {self.name!r} is not valid.",
                "use 1-64 lower-case letters, digits, '_' or '-', starting with a letter or digit.",
            )
        s = np.asarray(self.scores, dtype=np.float32)
        if s.ndim not in (1, 3) or (s.ndim == 3 and s.shape[1] != s.shape[2]):
            raise PathVizError(
                f"Layer {self.name!r}: scores must be float[n_patches] or float[n_patches, k, k], "
                f"got shape {s.shape}.",
                "reshape the scores to one value or one square map per patch.",
            )
        object.__setattr__(self, "scores", s)

    @property
    def patch_scores(self) -> np.ndarray:
        """``float32[n_patches]``: one score per patch (the mean of a sub-patch map)."""
        if self.scores.ndim == 1:
            return self.scores
        with np.errstate(all="ignore"):
            return np.nanmean(self.scores.reshape(len(self.scores), -1), axis=1).astype(np.float32)

    def value_range(self) -> tuple[float, float]:
        """``(min, max)`` of the finite scores; ``(0, 1)`` if there are none."""
        finite = self.scores[np.isfinite(self.scores)]
        if finite.size == 0:
            return 0.0, 1.0
        lo, hi = float(finite.min()), float(finite.max())
        return (lo, hi) if hi > lo else (lo, lo + 1e-6)

    def check_grid(self, grid: TileGrid) -> None:
        """Raise PathVizError unless the layer was computed on ``grid``."""
        if grid.key != self.grid_key or len(grid) != len(self.scores):
            raise PathVizError(
                f"Layer {self.name!r} ({len(self.scores)} patches, grid {self.grid_key}) does not "
                f"belong to grid {grid.key} ({len(grid)} patches).",
                "recompute the layer on this grid.",
            )

    def top_patches(self, k: int) -> np.ndarray:
        """Indices of the ``k`` patches to review first (highest score, or lowest when
        ``higher_is_flagged`` is False), NaN scores last. ``int64[min(k, n)]``."""
        s = self.patch_scores.astype(np.float64)
        key = np.where(np.isfinite(s), -s if self.higher_is_flagged else s, np.inf)
        return np.argsort(key, kind="stable")[: max(0, int(k))]

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write as ``.npz`` atomically; returns the path."""
        header = {
            "name": self.name,
            "title": self.title,
            "grid_key": self.grid_key,
            "units": self.units,
            "description": self.description,
            "higher_is_flagged": self.higher_is_flagged,
            "meta": self.meta,
        }
        return save_npz(path, header, scores=self.scores)

    @classmethod
    def load(cls, path: str | Path) -> "ScoreLayer":
        """Read a layer written by :meth:`save`. Raises PathVizError if unreadable."""
        header, arrays = load_npz(
            path, "score layer", "recompute the layer (dashboard: Workspace page; CLI: pathviz slide analyse)."
        )
        return cls(scores=arrays["scores"], **header)


def layer_raster(layer: ScoreLayer, grid: TileGrid) -> Raster:
    """Place a layer's scores on the slide: one raster cell per grid cell (or ``k x k`` cells per
    grid cell for sub-patch maps); cells without a kept tile are NaN.

    Returns:
        :class:`Raster` of shape ``(n_rows * k, n_cols * k)`` with cells of
        ``tile_size / k`` level-0 pixels.
    """
    layer.check_grid(grid)
    k = 1 if layer.scores.ndim == 1 else layer.scores.shape[1]
    values = np.full((grid.n_rows * k, grid.n_cols * k), np.nan, dtype=np.float32)
    cols, rows = grid.cells[:, 0], grid.cells[:, 1]
    if k == 1:
        values[rows, cols] = layer.scores
    else:
        blocks = values.reshape(grid.n_rows, k, grid.n_cols, k)
        blocks[rows, :, cols, :] = layer.scores
    return Raster(values=values, cell_w=grid.tile_size_x / k, cell_h=grid.tile_size_y / k)


def mask_raster(mask: TissueMask) -> Raster:
    """The tissue mask as a raster: 1.0 on tissue, NaN elsewhere (so only tissue is drawn)."""
    values = np.where(mask.mask, np.float32(1.0), np.float32(np.nan)).astype(np.float32)
    return Raster(values=values, cell_w=mask.downsample_x, cell_h=mask.downsample_y)
