"""Images of a patch's feature maps for the viewer's patch detail view (PAGE-Net's top maps, Fig. 4)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pathviz.errors import PathVizError
from pathviz.layers.colormap import colorize, legend_colors, percentile_scale, percentile_ticks

#: Colour map of the map thumbnails.
MAPS_CMAP = "inferno"
#: Default nearest-neighbour upsampling: a 16x16 map becomes a 256x256 image.
MAPS_UPSAMPLE = 16


@dataclass(frozen=True)
class PatchMapImages:
    """What the patch detail view draws for a patch's maps.

    Attributes:
        images: one ``uint8[h * upsample, w * upsample, 3]`` RGB image per map, in input order.
        ticks: legend ticks ``[(percentile, value)]`` (percentile 0-100, value in the maps' own
            activation units) at the 0th, 50th and 100th percentiles of all finite values.
        silent: per map, True when the map is 0 everywhere in the patch (no activation; drawn black).
        legend: hex colours along the colour map, for the legend bar.
    """

    images: list[np.ndarray]
    ticks: list[tuple[float, float]]
    silent: list[bool]
    legend: list[str]


def patch_map_images(maps: np.ndarray, cmap: str = MAPS_CMAP, upsample: int = MAPS_UPSAMPLE) -> PatchMapImages:
    """Colour a patch's maps on one shared percentile scale and upsample them for display.

    Each value becomes its percentile rank among all finite values of all the maps
    (:func:`~pathviz.layers.colormap.percentile_scale`), so a weak map keeps its structure; each
    map cell becomes an ``upsample x upsample`` block of pixels (nearest neighbour, no smoothing,
    so the cells stay visible). NaN cells are drawn black (pure black, not the colour map's lowest colour).

    Args:
        maps: ``float[n_maps, h, w]`` activations (any units), e.g. ``FeatureStore.patch_maps``.
        cmap: colour-map name (:data:`pathviz.layers.colormap.COLORMAPS`).
        upsample: integer factor >= 1 applied to both axes.

    Returns:
        :class:`PatchMapImages`.

    Raises:
        PathVizError: ``maps`` is not a non-empty 3-D numeric array, has no finite value, or
            ``upsample`` is not a positive integer; unknown ``cmap``.
    """
    try:
        arr = np.asarray(maps, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PathVizError("Patch maps must be numeric.", "pass float[n_maps, h, w] activations.") from exc
    if arr.ndim != 3 or arr.size == 0:
        raise PathVizError(f"Patch maps have shape {arr.shape}, expected (n_maps, h, w).",
                           "pass float[n_maps, h, w] activations, one map per entry.")
    if isinstance(upsample, bool) or not isinstance(upsample, (int, np.integer)) or upsample < 1:
        raise PathVizError(f"Upsampling factor {upsample!r} is not a positive integer.", "use e.g. 16.")
    scaled = percentile_scale(arr)
    block = np.ones((int(upsample), int(upsample)), dtype=np.float32)
    images = [colorize(np.kron(m, block), cmap, 0.0, 1.0)[..., :3] for m in scaled]
    silent = [not np.any(m) for m in arr]
    return PatchMapImages(images=images, ticks=percentile_ticks(arr, (0, 50, 100)), silent=silent,
                          legend=legend_colors(cmap))
