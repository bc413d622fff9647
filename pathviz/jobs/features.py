"""Patch-feature extraction into the feature store v2 (:class:`pathviz.store.features.PatchFeatureStore`).

Per slide: the grid's patches are read at level 0, box-averaged to ``read_mpp`` (the resolution
the encoder reads) and optionally Macenko-normalised with the stains estimated on the
full-resolution patches, as PAGE-Net reads them (:func:`pathviz.jobs.pagenet.cnn_patches`),
encoded in batches (:meth:`pathviz.nn.encoders.PatchEncoder.encode`) and written, one atomic file
per slide. Slides whose file is already there are skipped, so a killed extraction resumes where it
stopped.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from pathviz.errors import PathVizError
from pathviz.store.features import PatchFeatureStore
from pathviz.store.workspace import Workspace

Progress = Callable[[float, str], None]


def read_px(patch_size: int, mpp: float, read_mpp: float) -> int:
    """Side (px) of a grid patch box-averaged from the grid's ``mpp`` to ``read_mpp``.

    Raises:
        PathVizError: the patch does not box-average evenly to ``read_mpp``.
    """
    factor = read_mpp / mpp
    f = int(round(factor))
    if f < 1 or abs(factor - f) > 1e-6 or patch_size % f:
        raise PathVizError(f"Patches of {patch_size} px at {mpp} um/px cannot be box-averaged to {read_mpp} um/px.",
                           "analyse the slide on a grid whose mpp divides the encoder's read resolution.")
    return patch_size // f


def feature_version(encoder, read_mpp: float, stain_normalised: bool) -> str:
    """The store version of an extraction: the encoder's version plus the read resolution."""
    import hashlib

    return hashlib.sha1(f"{encoder.version(stain_normalised)}|{read_mpp}".encode()).hexdigest()[:12]


def extract_features(workspace: Workspace, slide_ids: list[str], encoder, read_mpp: float = 1.0,
                     stain_normalise: bool = True, progress: Progress | None = None,
                     stop_after: int | None = None) -> tuple[str, dict[str, dict]]:
    """Extract (or reuse) the features of ``slide_ids`` on each slide's default grid.

    Args:
        encoder: a :class:`pathviz.nn.encoders.PatchEncoder`.
        read_mpp: the resolution (um/px) the encoder reads; patches are box-averaged to it.
        stain_normalise: Macenko-normalise each slide first (stains from its full-resolution patches).
        stop_after: extract at most this many new slides, then return (tests use it to stand in
            for a killed run).

    Returns:
        ``(version, {slide_id: {"features": float32[n, dim], "coords": int64[n, 2], "grid_key",
        "extracted": bool}})`` (slides not reached when ``stop_after`` stops are absent).

    Raises:
        PathVizError: a slide is not analysed (no grid), or cannot be read at ``read_mpp``.
    """
    from pathviz.jobs.pagenet import cnn_patches

    report = progress or (lambda f, m: None)
    version = feature_version(encoder, read_mpp, stain_normalise)
    store = PatchFeatureStore(workspace, version)
    out, fresh, t0 = {}, set(), time.perf_counter()
    for i, sid in enumerate(slide_ids):
        key = workspace.default_grid_key(sid)
        if key is None:
            raise PathVizError(f"Slide {sid} has no tile grid yet.", f"analyse it first: pathviz slide analyse {sid}.")
        grid = workspace.grid(sid, key)
        if not store.has(sid, key, len(grid.coords)):
            if stop_after is not None and len(fresh) >= stop_after:
                break
            small, grid = cnn_patches(workspace, sid, lambda g: read_px(g.patch_size, g.mpp, read_mpp), stain_normalise)
            feats = encoder.encode(small).astype(np.float16)  # as stored: a fresh and a reused slide read alike
            store.save(sid, key, feats, grid.coords, {"encoder": encoder.describe(), "mpp": grid.mpp,
                                                      "patch_px": grid.patch_size, "read_mpp": read_mpp,
                                                      "stain_normalised": stain_normalise})
            fresh.add(sid)
            arrays = {"features": feats, "coords": np.asarray(grid.coords, np.int64)}
        else:
            arrays = store.load(sid, key)[1]
        out[sid] = {"features": arrays["features"].astype(np.float32), "coords": arrays["coords"], "grid_key": key,
                    "extracted": sid in fresh}
        if i % 10 == 0 or i == len(slide_ids) - 1:
            rate = len(fresh) / max(time.perf_counter() - t0, 1e-9)
            report((i + 1) / len(slide_ids), f"patch features: slide {i + 1}/{len(slide_ids)} ({len(fresh)} extracted "
                                             f"now, {len(out) - len(fresh)} reused; {rate:.2f} slides/s)")
    return version, out
