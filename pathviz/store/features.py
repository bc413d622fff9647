"""Per-slide CNN feature files (PAGE-Net's patch scores and maps), stored once per model version.

Lives in storage, not in the training job, so the slide viewer reads stored features without
importing torch or captum.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pathviz.errors import PathVizError
from pathviz.store.npzio import load_npz, save_npz
from pathviz.store.workspace import Workspace


class FeatureStore:
    """Per-slide CNN outputs saved once and reused: ``derived/<slide_id>/features/<version>.npz``
    with patch coordinates (level-0 px), patch scores ``float32[n, N]`` (stage-1 pooling) and the
    maps ``float16[n, N, h, w]``. A new model version writes a new file, so stale features are
    never read (invalidation by version)."""

    def __init__(self, workspace: Workspace, version: str):
        self.workspace, self.version = workspace, version

    def path(self, slide_id: str) -> Path:
        return self.workspace.derived_dir(slide_id) / "features" / f"pagenet-{self.version}.npz"

    def has(self, slide_id: str) -> bool:
        return self.path(slide_id).exists()

    def save(self, slide_id: str, coords: np.ndarray, scores: np.ndarray, maps: np.ndarray) -> None:
        save_npz(self.path(slide_id), {"version": self.version}, coords=coords, scores=scores.astype(np.float32),
                 maps=maps.astype(np.float16))

    def patch_maps(self, slide_id: str, xy: tuple[int, int], maps: list[int]) -> np.ndarray:
        """The activations ``float[len(maps), h, w]`` of chosen maps inside the patch whose level-0
        top-left corner is ``xy`` (the patch detail view, as the seed's Fig. 4).

        Raises:
            PathVizError: no stored features for this slide and version, or no patch at ``xy``.
        """
        if not self.has(slide_id):
            raise PathVizError(f"No PAGE-Net features of model {self.version} for {slide_id}.", "retrain PAGE-Net.")
        arrays = self.load(slide_id)
        hit = np.flatnonzero((arrays["coords"][:, 0] == xy[0]) & (arrays["coords"][:, 1] == xy[1]))
        if len(hit) == 0:
            raise PathVizError(f"No patch at x={xy[0]}, y={xy[1]} in the features of {slide_id}.", "pick a flagged patch.")
        return arrays["maps"][hit[0]][list(maps)].astype(np.float32)

    def load(self, slide_id: str) -> dict[str, np.ndarray]:
        header, arrays = load_npz(self.path(slide_id), "feature file", "retrain or recompute the features.")
        if header.get("version") != self.version:
            raise PathVizError(f"Feature file of {slide_id} is for model {header.get('version')}.", "recompute features.")
        return arrays


class PatchFeatureStore:
    """Feature store v2 (issue 14): per slide, grid and encoder version, the patch features of one
    encoder, ``derived/<slide_id>/features/enc-<version>-<grid_key>.npz``:

    * ``features``: ``float16[n_patches, dim]`` (the encoder's output, rounded to half precision);
    * ``coords``: ``int64[n_patches, 2]`` level-0 top-left corners (x, y) of the grid's patches;
    * header: ``version``, ``encoder`` (name, weights SHA-256 or random seed, input px), ``mpp``
      (of the grid), ``patch_px`` (level-0 side), ``read_mpp`` (what the encoder read), ``grid_key``.

    Each file is written atomically (:func:`pathviz.store.npzio.save_npz`), one per slide, so a
    killed extraction leaves only whole files and a rerun continues with the slides still missing
    (:meth:`has` checks the file reads and matches the grid). A new encoder version writes new
    files; stale features are never read.
    """

    def __init__(self, workspace: Workspace, version: str):
        self.workspace, self.version = workspace, version

    def path(self, slide_id: str, grid_key: str) -> Path:
        return self.workspace.derived_dir(slide_id) / "features" / f"enc-{self.version}-{grid_key}.npz"

    def has(self, slide_id: str, grid_key: str, n_patches: int | None = None) -> bool:
        """True when the slide's file exists, reads, is of this version and (when given) holds
        ``n_patches`` patches."""
        path = self.path(slide_id, grid_key)
        if not path.exists():
            return False
        try:
            header, arrays = load_npz(path, "feature file", "")
        except PathVizError:
            return False
        return header.get("version") == self.version and (n_patches is None or len(arrays["features"]) == n_patches)

    def save(self, slide_id: str, grid_key: str, features: np.ndarray, coords: np.ndarray, header: dict) -> Path:
        """Write one slide's features (atomically). ``features`` float[n, dim], ``coords`` int[n, 2].

        Raises:
            PathVizError: features and coordinates disagree in length.
        """
        if len(features) != len(coords):
            raise PathVizError(f"{len(features)} feature rows for {len(coords)} patches of {slide_id}.", "re-extract.")
        return save_npz(self.path(slide_id, grid_key), {**header, "version": self.version, "grid_key": grid_key},
                        features=np.asarray(features, np.float16), coords=np.asarray(coords, np.int64))

    def load(self, slide_id: str, grid_key: str) -> tuple[dict, dict[str, np.ndarray]]:
        """``(header, {"features": float16[n, dim], "coords": int64[n, 2]})``.

        Raises:
            PathVizError: missing, unreadable or of another version.
        """
        header, arrays = load_npz(self.path(slide_id, grid_key), "feature file",
                                  "extract the features again (the training job does it).")
        if header.get("version") != self.version:
            raise PathVizError(f"Feature file of {slide_id} is of encoder version {header.get('version')}, not "
                               f"{self.version}.", "extract the features again.")
        return header, arrays
