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
