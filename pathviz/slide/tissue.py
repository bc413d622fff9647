"""Tissue detection at thumbnail scale.

Method: Otsu threshold on the HSV saturation channel of a thumbnail (stained tissue is
saturated, glass background is not), clipped to [0.04, 0.15] so that a field covered by tissue
(no glass: Otsu would split the tissue itself) stays tissue and blank glass never is; then
morphological clean-up with scikit-image: remove objects smaller than ``min_object_um2`` and fill
holes smaller than ``max_hole_um2``. This is the
usual background-removal step of WSI pipelines (e.g. CLAM, seed 004's "background removal").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.filters import threshold_otsu
from skimage.morphology import remove_small_holes, remove_small_objects

from pathviz.errors import SlideError
from pathviz.slide.reader import CorruptRegionError, Slide

#: Saturation below which a pixel is never tissue, whatever Otsu says (blank glass).
MIN_SATURATION = 0.04
#: Saturation above which a pixel is always tissue (H&E-stained tissue is well above it).
MAX_THRESHOLD = 0.15


@dataclass(frozen=True)
class TissueMask:
    """Binary tissue mask at thumbnail scale.

    Attributes:
        mask: ``bool[rows, cols]``; True where tissue.
        downsample_x, downsample_y: level-0 pixels per mask pixel along x and y.
        threshold: saturation threshold used (0-1).
    """

    mask: np.ndarray
    downsample_x: float
    downsample_y: float
    threshold: float

    @property
    def tissue_fraction(self) -> float:
        """Fraction of the slide area covered by tissue (0-1)."""
        return float(self.mask.mean()) if self.mask.size else 0.0

    def fraction_in(self, x: float, y: float, w: float, h: float) -> float:
        """Tissue fraction inside a level-0 rectangle ``(x, y, w, h)``, 0-1."""
        c0 = int(np.floor(x / self.downsample_x))
        r0 = int(np.floor(y / self.downsample_y))
        c1 = max(c0 + 1, int(np.ceil((x + w) / self.downsample_x)))
        r1 = max(r0 + 1, int(np.ceil((y + h) / self.downsample_y)))
        window = self.mask[max(r0, 0) : r1, max(c0, 0) : c1]
        return float(window.mean()) if window.size else 0.0


def tissue_mask(
    slide: Slide,
    thumbnail_size: int = 2048,
    min_object_um2: float = 5_000.0,
    max_hole_um2: float = 5_000.0,
) -> TissueMask:
    """Detect tissue on a slide.

    Args:
        slide: an open slide.
        thumbnail_size: longer side of the thumbnail the mask is computed on, pixels.
        min_object_um2: tissue objects smaller than this area (square microns) are dropped.
        max_hole_um2: holes smaller than this area inside tissue are filled.

    Returns:
        A :class:`TissueMask`; it may be all False (callers that need tissue raise
        :class:`~pathviz.errors.EmptyTissueMaskError`).

    Raises:
        SlideError: the thumbnail cannot be decoded at its pyramid level nor at any coarser
            one (a corrupt region there; a coarser level, when readable, is used instead).
    """
    thumb = np.asarray(_thumbnail(slide, thumbnail_size))
    w0, h0 = slide.dimensions
    rows, cols = thumb.shape[:2]
    ds_x, ds_y = w0 / cols, h0 / rows
    sat = saturation(thumb)
    if float(sat.max() - sat.min()) < 1e-6:
        threshold = 1.0  # a uniform image: no contrast, no tissue
    else:
        threshold = min(max(float(threshold_otsu(sat)), MIN_SATURATION), MAX_THRESHOLD)
    mask = sat > threshold
    px_area_um2 = ds_x * slide.mpp_x * ds_y * slide.mpp_y
    min_px = max(1, int(round(min_object_um2 / px_area_um2)))
    hole_px = max(1, int(round(max_hole_um2 / px_area_um2)))
    mask = remove_small_objects(mask, max_size=min_px)
    mask = remove_small_holes(mask, max_size=hole_px)
    return TissueMask(mask=mask, downsample_x=ds_x, downsample_y=ds_y, threshold=threshold)


def saturation(rgb: np.ndarray) -> np.ndarray:
    """HSV saturation ``float64[h, w]`` in [0, 1] of ``uint8[h, w, 3]`` RGB: ``(max - min) / max``
    per pixel (0 for black), the value of ``skimage.color.rgb2hsv(rgb)[..., 1]`` without computing hue
    and value (about 4x faster on a 2048 px thumbnail)."""
    rgb = np.asarray(rgb)[..., :3]
    mx = rgb.max(axis=2).astype(np.float64)
    mn = rgb.min(axis=2).astype(np.float64)
    return np.divide(mx - mn, mx, out=np.zeros_like(mx), where=mx > 0)


def _thumbnail(slide: Slide, size: int):
    """The slide's thumbnail; when its level has a corrupt region, the whole of the next coarser
    readable level instead (a smaller thumbnail: the mask's downsample follows from its shape)."""
    try:
        return slide.get_thumbnail(size)
    except CorruptRegionError as first:
        errors = [f"level {first.level}: {first.detail}"]
        for level in range(first.level + 1, slide.level_count):
            try:
                return slide.get_thumbnail(size, level=level)
            except CorruptRegionError as exc:
                errors.append(f"level {level}: {exc.detail}")
        raise SlideError(
            f"The tissue mask of {slide.path} cannot be computed: its thumbnail cannot be decoded at pyramid "
            f"level {first.level} nor at any coarser level ({'; '.join(errors)}).",
            "the file is truncated or corrupt: copy it again from the scanner or archive, or re-export it as a "
            "pyramidal TIFF (`vips tiffsave IN OUT.tif --tile --pyramid --compression jpeg`) and add that file.",
            slide.path,
        ) from first
