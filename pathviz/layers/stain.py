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
from pathviz.slide.reader import Slide

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
    slide: Slide, grid: TileGrid, progress: Callable[[float], None] | None = None
) -> tuple[ScoreLayer, ScoreLayer]:
    """Mean haematoxylin and eosin optical density per patch.

    Args:
        slide: the open slide the grid was built on.
        grid: its tile grid.
        progress: optional callback receiving the fraction done (0-1).

    Returns:
        ``(haematoxylin, eosin)`` layers, ``float32[n_patches]`` each, in optical-density units
        of the ``rgb2hed`` stain space.
    """
    n = len(grid)
    h = np.empty(n, dtype=np.float32)
    e = np.empty(n, dtype=np.float32)
    xy = grid.coords
    side = float(max(grid.tile_size_x, grid.tile_size_y))
    for i in range(n):
        patch = np.asarray(slide.read_patch(int(xy[i, 0]), int(xy[i, 1]), side, DENSITY_READ_SIZE))
        hed = rgb2hed(patch)
        h[i] = hed[..., 0].mean()
        e[i] = hed[..., 1].mean()
        if progress and (i % 64 == 0 or i == n - 1):
            progress((i + 1) / n)
    common = dict(grid_key=grid.key, units="OD", meta={"read_size": DENSITY_READ_SIZE})
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
