"""Write an RGB array as a pyramidal tiled TIFF that OpenSlide opens as a WSI (``generic-tiff``).

Each pyramid level is a tiled page (level 0 first, then 2x downsamples), with X/Y resolution in
pixels per centimetre so OpenSlide reports ``openslide.mpp-x/y``. Used for generated test slides
and demo cohorts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image


def write_pyramidal_tiff(
    path: str | Path, rgb: np.ndarray, mpp: float, tile: int = 256, min_size: int = 256, compression: str = "zlib",
    quality: int = 90, jpeg_rgb: bool = False,
) -> Path:
    """Write ``rgb`` (``uint8[height, width, 3]``) as a pyramidal TIFF at ``mpp`` microns per pixel.

    ``compression``: ``"zlib"`` (lossless) or ``"jpeg"`` (``quality`` 1-100, via imagecodecs), as
    scanners write. ``jpeg_rgb``: JPEG in RGB colour space without chroma subsampling (4:4:4), so
    colour does not vary with texture as it does under YCbCr 4:2:0 (larger files; the benchmark
    cohort uses it).

    Levels halve (area-averaged with Pillow's box filter) until the longer side is below
    ``min_size``. Written to a temporary name and renamed, so a crash leaves no partial slide.

    Raises:
        ValueError: ``rgb`` is not ``uint8[h, w, 3]`` or ``mpp`` is not positive.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be uint8[height, width, 3], got {rgb.dtype}{list(rgb.shape)}.")
    if not mpp > 0:
        raise ValueError(f"mpp must be positive, got {mpp}.")
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    level, scale = rgb, 1
    with tifffile.TiffWriter(tmp) as tw:
        while True:
            res = 1e4 / (mpp * scale)  # pixels per centimetre
            tw.write(
                level,
                tile=(tile, tile),
                photometric="rgb",
                compression=compression,
                compressionargs=({"level": quality, **({"subsampling": (1, 1), "outcolorspace": "rgb"} if jpeg_rgb else {})}
                                 if compression == "jpeg" else None),
                resolution=(res, res),
                resolutionunit="CENTIMETER",
                subfiletype=0 if scale == 1 else 1,
            )
            if max(level.shape[:2]) < min_size:
                break
            h, w = level.shape[:2]
            level = np.asarray(
                Image.fromarray(level).resize((max(1, (w + 1) // 2), max(1, (h + 1) // 2)), Image.Resampling.BOX)
            )
            scale *= 2
    tmp.replace(path)
    return path
