"""First real score layers: tissue fraction and haematoxylin / eosin density.

Haematoxylin and eosin densities come from colour deconvolution (Ruifrok & Johnston, "Quantification
of histochemical staining by color deconvolution", Anal Quant Cytol Histol 2001), as implemented by
scikit-image ``rgb2hed``. The mean haematoxylin optical density of a patch is a standard proxy for
nuclear density (haematoxylin stains nuclei); eosin density tracks stroma and cytoplasm.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from skimage.color import rgb2hed

from pathviz.layers.score import ScoreLayer
from pathviz.slide.grid import TileGrid
from pathviz.slide.integrity import CorruptRegion
from pathviz.slide.reader import CorruptRegionError, Slide

#: Patches are read at this side (pixels) to compute densities; a mean is stable under resampling.
DENSITY_READ_SIZE = 64


def tissue_fraction_layer(grid: TileGrid) -> ScoreLayer:
    """Layer of each patch's tissue fraction (0-1), taken from the grid."""
    return ScoreLayer(
        name="tissue_fraction",
        title="Tissue fraction",
        grid_key=grid.key,
        scores=grid.tissue_fraction,
        units="fraction",
        description="Fraction of the patch covered by the tissue mask (Otsu on saturation).",
    )


def stain_density_layers(
    slide: Slide,
    grid: TileGrid,
    progress: Callable[[float], None] | None = None,
    skipped: list[CorruptRegion] | None = None,
) -> tuple[ScoreLayer, ScoreLayer]:
    """Mean haematoxylin and eosin optical density per patch.

    A patch whose pixels cannot be decoded (a corrupt region of the file,
    :class:`~pathviz.slide.reader.CorruptRegionError`) is skipped: its scores are NaN ("no value":
    drawn transparent, ranked last, left out of value ranges), the slide's handle has been reopened
    so the other patches are read as usual, and the skipped patch indices are listed in both
    layers' ``meta["skipped_patches"]``.

    Args:
        slide: the open slide the grid was built on.
        grid: its tile grid.
        progress: optional callback receiving the fraction done (0-1).
        skipped: when given, one :class:`~pathviz.slide.integrity.CorruptRegion` per skipped
            patch is appended (``found_by="analysis"``, the patch's level-0 rectangle in pixels).

    Returns:
        ``(haematoxylin, eosin)`` layers, ``float32[n_patches]`` each, in optical-density units
        of the ``rgb2hed`` stain space; NaN for skipped patches.

    Raises:
        SlideError: the file can no longer be opened at all (not a single corrupt region).
    """
    n = len(grid)
    h = np.empty(n, dtype=np.float32)
    e = np.empty(n, dtype=np.float32)
    xy = grid.coords
    side = float(max(grid.tile_size_x, grid.tile_size_y))
    bad: list[int] = []
    for i in range(n):
        try:
            patch = np.asarray(slide.read_patch(int(xy[i, 0]), int(xy[i, 1]), side, DENSITY_READ_SIZE))
        except CorruptRegionError as exc:
            h[i] = e[i] = np.nan
            bad.append(i)
            if skipped is not None:
                skipped.append(CorruptRegion(exc.level, grid.rect(i), exc.detail, "analysis", grid.key, i))
        else:
            hed = rgb2hed(patch)
            h[i] = hed[..., 0].mean()
            e[i] = hed[..., 1].mean()
        if progress and (i % 64 == 0 or i == n - 1):
            progress((i + 1) / n)
    meta = {"read_size": DENSITY_READ_SIZE}
    if bad:
        meta["skipped_patches"] = bad
    common = dict(grid_key=grid.key, units="OD", meta=meta)
    return (
        ScoreLayer(
            name="haematoxylin",
            title="Haematoxylin density (nuclear proxy)",
            scores=h,
            description="Mean haematoxylin optical density by colour deconvolution "
            "(Ruifrok & Johnston 2001; scikit-image rgb2hed).",
            **common,
        ),
        ScoreLayer(
            name="eosin",
            title="Eosin density",
            scores=e,
            description="Mean eosin optical density by colour deconvolution "
            "(Ruifrok & Johnston 2001; scikit-image rgb2hed).",
            **common,
        ),
    )
