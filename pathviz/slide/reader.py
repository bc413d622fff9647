"""One ``Slide`` interface over OpenSlide (pyramidal WSIs) and Pillow (plain images).

Everything speaks level-0 pixel coordinates: ``(x, y)`` of a region's top-left corner, sizes in
pixels of the level asked for (as OpenSlide). Microns per pixel (``mpp``) come from the file's
metadata, or must be declared for plain images (PNG/JPEG carry none).

Formats: whatever OpenSlide reads (Aperio ``.svs``, generic/pyramidal ``.tif``/``.tiff``,
Hamamatsu ``.ndpi``, MIRAX ``.mrxs``, Leica ``.scn``, ...) through the ``openslide-bin`` wheel, and
``.png``/``.jpg``/``.jpeg`` through Pillow (``openslide.ImageSlide``), which decodes the whole
image into memory and so is guarded against decompression bombs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import openslide
from openslide.deepzoom import DeepZoomGenerator
from PIL import Image, UnidentifiedImageError

from pathviz.errors import MissingMppError, SlideError, SlideTooLargeError

#: File suffixes read through OpenSlide.
OPENSLIDE_SUFFIXES = (".svs", ".tif", ".tiff", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".svslide", ".bif")
#: File suffixes read through Pillow as a single-level image.
PLAIN_SUFFIXES = (".png", ".jpg", ".jpeg")
#: Largest plain image (pixels) decoded into memory; Pillow's own bomb limit is 2 x 89.5 Mpx.
MAX_PLAIN_PIXELS = 2 * 89_478_485

_CONVERT_HINT = (
    "convert it to a pyramidal tiled TIFF (e.g. `vips tiffsave IN OUT.tif --tile --pyramid "
    "--compression jpeg --xres X --yres Y`) and add that file instead"
)


@dataclass(frozen=True)
class SlideInfo:
    """Summary of a slide's geometry and metadata (JSON-serialisable via :meth:`to_dict`).

    Attributes:
        path: absolute file path.
        width, height: level-0 size in pixels.
        level_count: number of pyramid levels.
        level_dimensions: ``(width, height)`` per level, pixels.
        level_downsamples: level-0 pixels per level pixel, per level.
        mpp_x, mpp_y: microns per level-0 pixel.
        mpp_source: ``"metadata"`` (read from the file) or ``"declared"`` (given by the user).
        objective_power: scanner objective (e.g. 20.0), or None if unknown.
        vendor: OpenSlide vendor string (``"aperio"``, ``"generic-tiff"``...) or ``"image"``.
    """

    path: str
    width: int
    height: int
    level_count: int
    level_dimensions: tuple[tuple[int, int], ...]
    level_downsamples: tuple[float, ...]
    mpp_x: float
    mpp_y: float
    mpp_source: str
    objective_power: float | None
    vendor: str

    def to_dict(self) -> dict:
        """Plain-dict form (lists instead of tuples) for JSON output."""
        d = asdict(self)
        d["level_dimensions"] = [list(x) for x in self.level_dimensions]
        d["level_downsamples"] = list(self.level_downsamples)
        return d


class CorruptRegionError(SlideError):
    """A region of an otherwise readable slide could not be decoded (a corrupt tile).

    Raised by :meth:`Slide.read_region` (and the reads built on it) after the slide's handle has
    been reopened, so the same :class:`Slide` keeps reading its other regions.

    Attributes:
        level: pyramid level that was read.
        rect: level-0 ``(x, y, width, height)`` of the region asked for, pixels.
        detail: the decoder's own error text.
    """

    def __init__(self, message: str, fix: str, path, level: int, rect: tuple[int, int, int, int], detail: str):
        super().__init__(message, fix, path)
        self.level = int(level)
        self.rect = tuple(int(v) for v in rect)
        self.detail = detail


class Slide:
    """An open whole-slide image or plain image, in level-0 coordinates.

    Use :func:`open_slide` to construct. Attributes mirror :class:`SlideInfo`.

    Args:
        path: the slide file.
        mpp: microns per pixel to use when the file carries none (required for PNG/JPEG);
            when the file does carry one, a declared value overrides it.

    Raises:
        SlideError: the file is missing, not an image, corrupt/truncated or unsupported.
        MissingMppError: no mpp in the file and none declared.
        SlideTooLargeError: a plain image above :data:`MAX_PLAIN_PIXELS`.
    """

    def __init__(self, path: str | Path, mpp: float | None = None):
        self.path = Path(path).expanduser().resolve()
        self._reopen_failed: SlideError | None = None
        if not self.path.exists():
            raise SlideError(f"Slide file not found: {self.path}.", "check the path.", self.path)
        if not self.path.is_file():
            raise SlideError(f"Not a file: {self.path}.", "give the path of a slide file.", self.path)
        suffix = self.path.suffix.lower()
        if suffix in PLAIN_SUFFIXES:
            self._osr = self._open_plain()
            self.vendor = "image"
        else:
            self._osr = self._open_openslide(suffix)
            self.vendor = self._osr.properties.get(openslide.PROPERTY_NAME_VENDOR, "unknown")
        # geometry kept from the first open: a handle that failed a read answers nothing any more
        self._dimensions = tuple(self._osr.dimensions)
        self._downsamples = tuple(float(d) for d in self._osr.level_downsamples)
        self.mpp_x, self.mpp_y, self.mpp_source = self._resolve_mpp(mpp)
        obj = self._osr.properties.get(openslide.PROPERTY_NAME_OBJECTIVE_POWER)
        self.objective_power = float(obj) if obj not in (None, "") else None

    # -- opening -------------------------------------------------------------------------
    def _open_plain(self) -> openslide.ImageSlide:
        previous = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = MAX_PLAIN_PIXELS // 2  # Pillow raises above 2x this value
        try:
            with Image.open(self.path) as probe:
                w, h = probe.size
                if w * h > MAX_PLAIN_PIXELS:
                    raise SlideTooLargeError(
                        f"{self.path} is a plain image of {w}x{h} = {w * h / 1e6:.0f} Mpx, above the "
                        f"{MAX_PLAIN_PIXELS / 1e6:.0f} Mpx limit for images decoded whole into memory.",
                        _CONVERT_HINT,
                        self.path,
                    )
                probe.load()  # decode now: a truncated PNG/JPEG fails here, not mid-viewing
                image = probe.convert("RGB")
        except Image.DecompressionBombError as exc:
            raise SlideTooLargeError(
                f"{self.path} is too large to decode safely ({exc}).", _CONVERT_HINT, self.path
            ) from exc
        except UnidentifiedImageError as exc:
            raise SlideError(
                f"{self.path} is not a readable image (Pillow cannot identify it).",
                "check that the file is a PNG or JPEG and not truncated or renamed.",
                self.path,
            ) from exc
        except OSError as exc:  # truncated data
            raise SlideError(
                f"{self.path} could not be decoded: {exc}.",
                "the file is corrupt or truncated; copy it again from the source.",
                self.path,
            ) from exc
        finally:
            Image.MAX_IMAGE_PIXELS = previous
        return openslide.ImageSlide(image)

    def _open_openslide(self, suffix: str, probe: bool = True) -> openslide.OpenSlide:
        try:
            osr = openslide.OpenSlide(str(self.path))
        except openslide.OpenSlideUnsupportedFormatError as exc:
            known = ", ".join(OPENSLIDE_SUFFIXES + PLAIN_SUFFIXES)
            raise SlideError(
                f"{self.path} is not a slide format OpenSlide can read"
                + (f" (suffix {suffix!r})." if suffix else "."),
                f"supported: {known}; a plain PNG/JPEG needs a declared mpp.",
                self.path,
            ) from exc
        except openslide.OpenSlideError as exc:
            raise SlideError(
                f"{self.path} is corrupt or truncated: OpenSlide says {exc}.",
                "copy the file again from the scanner or archive and check its size.",
                self.path,
            ) from exc
        if not probe:
            return osr
        # A truncated file often opens (the header is intact) but fails on pixel reads:
        # read the smallest level once so the error surfaces now, with the file's name.
        try:
            lvl = osr.level_count - 1
            w, h = osr.level_dimensions[lvl]
            osr.read_region((0, 0), lvl, (min(w, 512), min(h, 512)))
        except openslide.OpenSlideError as exc:
            osr.close()
            raise SlideError(
                f"{self.path} opens but its pixel data cannot be read ({exc}); the file is "
                "probably truncated or corrupt.",
                "copy the file again from the scanner or archive and check its size.",
                self.path,
            ) from exc
        return osr

    def _resolve_mpp(self, declared: float | None) -> tuple[float, float, str]:
        if declared is not None:
            if not (isinstance(declared, (int, float)) and math.isfinite(declared) and declared > 0):
                raise SlideError(
                    f"Declared mpp {declared!r} for {self.path} is not a positive number.",
                    "give microns per pixel, e.g. 0.25 (40x) or 0.5 (20x).",
                    self.path,
                )
            return float(declared), float(declared), "declared"
        props = self._osr.properties
        mx, my = props.get(openslide.PROPERTY_NAME_MPP_X), props.get(openslide.PROPERTY_NAME_MPP_Y)
        try:
            mpp_x, mpp_y = float(mx), float(my)
        except (TypeError, ValueError):
            mpp_x = mpp_y = float("nan")
        if not (math.isfinite(mpp_x) and math.isfinite(mpp_y) and mpp_x > 0 and mpp_y > 0):
            raise MissingMppError(
                f"{self.path} carries no microns-per-pixel (mpp) metadata.",
                "declare it (CLI: --mpp 0.5; API: mpp=0.5; dashboard: the mpp field); "
                "0.25 is typical at 40x and 0.5 at 20x.",
                self.path,
            )
        return mpp_x, mpp_y, "metadata"

    # -- geometry ------------------------------------------------------------------------
    @property
    def dimensions(self) -> tuple[int, int]:
        """Level-0 ``(width, height)`` in pixels."""
        return self._osr.dimensions

    @property
    def level_count(self) -> int:
        return self._osr.level_count

    @property
    def level_dimensions(self) -> tuple[tuple[int, int], ...]:
        return tuple(self._osr.level_dimensions)

    @property
    def level_downsamples(self) -> tuple[float, ...]:
        return tuple(float(d) for d in self._osr.level_downsamples)

    @property
    def mpp(self) -> float:
        """Mean of ``mpp_x`` and ``mpp_y``, microns per level-0 pixel."""
        return (self.mpp_x + self.mpp_y) / 2

    @property
    def properties(self) -> dict[str, str]:
        """Raw vendor metadata as OpenSlide reports it."""
        return dict(self._osr.properties)

    def info(self) -> SlideInfo:
        """Geometry and metadata as a :class:`SlideInfo`."""
        return SlideInfo(
            path=str(self.path),
            width=self.dimensions[0],
            height=self.dimensions[1],
            level_count=self.level_count,
            level_dimensions=self.level_dimensions,
            level_downsamples=self.level_downsamples,
            mpp_x=self.mpp_x,
            mpp_y=self.mpp_y,
            mpp_source=self.mpp_source,
            objective_power=self.objective_power,
            vendor=self.vendor,
        )

    # -- pixels ----------------------------------------------------------------------------
    def read_region(self, location: tuple[int, int], level: int, size: tuple[int, int]) -> Image.Image:
        """Read an RGB region.

        Args:
            location: ``(x, y)`` top-left corner in level-0 pixels.
            level: pyramid level to read from.
            size: ``(width, height)`` in pixels of that level.

        Returns:
            RGB image of ``size``; transparent (out-of-slide) pixels are white.

        Raises:
            SlideError: level out of range, or the file can no longer be opened.
            CorruptRegionError: the region's pixel data cannot be decoded (a SlideError naming the
                level and level-0 rectangle); the handle has been reopened, so other regions of
                this same :class:`Slide` stay readable.
        """
        if not 0 <= level < len(self._downsamples):
            raise SlideError(
                f"Level {level} does not exist in {self.path} (levels 0..{len(self._downsamples) - 1}).",
                "pick a level from slide info.",
                self.path,
            )
        if self._reopen_failed is not None:
            raise self._reopen_failed
        loc = tuple(int(v) for v in location)
        sz = tuple(int(v) for v in size)
        try:
            rgba = self._osr.read_region(loc, level, sz)
        except openslide.OpenSlideError as exc:
            ds = self._downsamples[level]  # cached: the failed handle answers nothing any more
            rect = (loc[0], loc[1], int(math.ceil(sz[0] * ds)), int(math.ceil(sz[1] * ds)))
            self._reopen_after_error()
            raise CorruptRegionError(
                f"Reading pixels of {self.path} failed at level {level}, level-0 region x={rect[0]} "
                f"y={rect[1]} {rect[2]}x{rect[3]} px ({exc}).",
                "the file is probably truncated or corrupt there; copy it again from the scanner or archive.",
                self.path,
                level,
                rect,
                str(exc),
            ) from exc
        return _rgba_on_white(rgba)

    def read_patch(self, x: int, y: int, size_level0: float, out_size: int) -> Image.Image:
        """Read a square patch given in level-0 coordinates, resampled to ``out_size`` pixels.

        Picks the pyramid level closest to (not coarser than) the needed downsample, as
        OpenSlide's ``get_best_level_for_downsample``, then resizes.

        Args:
            x, y: top-left corner, level-0 pixels.
            size_level0: side of the square in level-0 pixels (``patch_px * target_mpp / mpp``).
            out_size: side of the returned RGB image in pixels.
        """
        downsample = size_level0 / out_size
        level = self._osr.get_best_level_for_downsample(max(downsample, 1.0))
        ds = self.level_downsamples[level]
        side = max(1, int(round(size_level0 / ds)))
        region = self.read_region((x, y), level, (side, side))
        if region.size != (out_size, out_size):
            region = region.resize((out_size, out_size), Image.Resampling.BILINEAR)
        return region

    def thumbnail_level(self, max_size: int = 1024) -> int:
        """The pyramid level :meth:`get_thumbnail` reads for a thumbnail of ``max_size`` pixels."""
        w, h = self.dimensions
        downsample = max(w / max_size, h / max_size)
        return int(self._osr.get_best_level_for_downsample(downsample))

    def get_thumbnail(self, max_size: int = 1024, level: int | None = None) -> Image.Image:
        """RGB thumbnail whose longer side is at most ``max_size`` pixels (aspect kept).

        Args:
            max_size: longest side of the thumbnail, pixels.
            level: read this pyramid level (whole) instead of :meth:`thumbnail_level`, e.g. a
                coarser one when that level has a corrupt region; the thumbnail is then at most
                that level's size.

        Raises:
            CorruptRegionError: the level read cannot be decoded (the handle is reopened first).
        """
        if self._reopen_failed is not None:
            raise self._reopen_failed
        if level is None:
            try:
                return _rgba_on_white(self._osr.get_thumbnail((max_size, max_size)))
            except openslide.OpenSlideError as exc:
                self._reopen_after_error()
                lvl = self.thumbnail_level(max_size) if self._reopen_failed is None else -1
                w, h = self._dimensions
                raise CorruptRegionError(
                    f"The thumbnail of {self.path} (pyramid level {lvl}) cannot be decoded ({exc}).",
                    "the file is corrupt or truncated; copy it again from the scanner or archive, or re-export it "
                    "(e.g. `vips tiffsave IN OUT.tif --tile --pyramid --compression jpeg`).",
                    self.path,
                    lvl,
                    (0, 0, w, h),
                    str(exc),
                ) from exc
        lw, lh = self.level_dimensions[level]
        image = self.read_region((0, 0), level, (lw, lh))
        image.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
        return image

    def reopen(self) -> None:
        """Close the OpenSlide handle and open the file again.

        OpenSlide's errors are sticky: after one failed read every later read of the same handle
        fails too. :meth:`read_region` and :meth:`get_thumbnail` call this themselves after a
        failed read; generators made earlier by :meth:`deepzoom` keep the old (closed) handle.

        Raises:
            SlideError: the file can no longer be opened.
        """
        if self.vendor == "image":
            return  # decoded in memory by Pillow; its errors are not sticky
        try:
            self._osr.close()
        except Exception:  # noqa: BLE001 (a broken handle may fail to close; it is replaced either way)
            pass
        self._osr = self._open_openslide(self.path.suffix.lower(), probe=False)
        self._reopen_failed = None

    def _reopen_after_error(self) -> None:
        try:
            self.reopen()
        except SlideError as exc:
            self._reopen_failed = exc  # the next read raises it (the error being raised names the region)

    def deepzoom(self, tile_size: int = 256, overlap: int = 0) -> DeepZoomGenerator:
        """A DeepZoom generator over this slide.

        ``limit_bounds`` is False on purpose: DeepZoom level-max pixel ``(x, y)`` is level-0 pixel
        ``(x, y)``, so overlays computed in level-0 coordinates align exactly.
        """
        return DeepZoomGenerator(self._osr, tile_size=tile_size, overlap=overlap, limit_bounds=False)

    def close(self) -> None:
        self._osr.close()

    def __enter__(self) -> "Slide":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        w, h = self.dimensions
        return f"Slide({self.path.name!r}, {w}x{h}, levels={self.level_count}, mpp={self.mpp:.4g})"


def open_slide(path: str | Path, mpp: float | None = None) -> Slide:
    """Open a slide file; see :class:`Slide` for arguments and errors."""
    return Slide(path, mpp=mpp)


def _rgba_on_white(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode != "RGBA":
        return image.convert("RGB")
    arr = np.asarray(image, dtype=np.uint16)
    alpha = arr[..., 3:4]
    rgb = (arr[..., :3] * alpha + 255 * (255 - alpha)) // 255
    return Image.fromarray(rgb.astype(np.uint8), "RGB")
