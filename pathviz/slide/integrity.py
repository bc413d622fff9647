"""Cheap integrity check of a slide's whole pyramid, and the record of its corrupt regions.

Opening a slide (:func:`~pathviz.slide.reader.open_slide`) only decodes the first pixels of the
smallest level, so a file with a damaged level (a truncated copy, a bad sector) or a single corrupt
tile still opens. :func:`check_pyramid` decodes a small deterministic sample of tiles at *every*
level: at most :data:`SAMPLES_PER_LEVEL` per level (the four corners, the centre, then points
spread between them), so the cost is bounded (tens of tile decodes, well under a second for a
normal slide) whatever the slide's size.

* Every sampled tile of a level fails: the level is broken, :class:`~pathviz.errors.SlideError`.
* Some fail: those tiles are returned as :class:`CorruptRegion` (the workspace stores them in
  ``derived/<slide_id>/integrity.json``); analysis later skips the patches it cannot read and adds
  them to the same record.

OpenSlide's errors are sticky per handle; :meth:`~pathviz.slide.reader.Slide.read_region` reopens
the handle after a failed read, so the check goes on reading the other tiles.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from pathviz.errors import SlideError
from pathviz.slide.reader import CorruptRegionError, Slide

#: Most tiles decoded per pyramid level.
SAMPLES_PER_LEVEL = 8
#: Tile side assumed when the file does not report one (``openslide.level[N].tile-width``), pixels.
DEFAULT_TILE = 256
#: Largest window read inside one sampled tile, pixels of its level (one tile is decoded whole anyway).
MAX_WINDOW = 256
#: Where the samples sit, as fractions of the level's tile columns and rows (first ones first).
_SPOTS = ((0, 0), (1, 0), (0, 1), (1, 1), (0.5, 0.5), (0.25, 0.25), (0.75, 0.75), (0.25, 0.75), (0.75, 0.25))

FIX = ("the file is truncated or corrupt: copy it again from the scanner or archive (compare its size or "
       "checksum with the original), or re-export it as a pyramidal TIFF "
       "(`vips tiffsave IN OUT.tif --tile --pyramid --compression jpeg`) and add that file instead.")


@dataclass(frozen=True)
class CorruptRegion:
    """A region of a slide that could not be decoded.

    Attributes:
        level: pyramid level at which the read failed.
        rect: level-0 ``(x, y, width, height)`` of the region, pixels (a tile for the
            registration check, a patch for analysis).
        error: the decoder's error text.
        found_by: ``"registration"`` (:func:`check_pyramid`) or ``"analysis"`` (a skipped patch).
        grid_key: the tile grid of a skipped patch (``TileGrid.key``), else None.
        patch: index of the skipped patch in that grid, else None.
    """

    level: int
    rect: tuple[int, int, int, int]
    error: str
    found_by: str = "registration"
    grid_key: str | None = None
    patch: int | None = None

    def to_dict(self) -> dict:
        """JSON-ready dict (``rect`` as a list)."""
        d = asdict(self)
        d["rect"] = list(self.rect)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CorruptRegion":
        """Inverse of :meth:`to_dict` (unknown keys ignored)."""
        return cls(
            level=int(d["level"]),
            rect=tuple(int(v) for v in d["rect"]),
            error=str(d.get("error", "")),
            found_by=str(d.get("found_by", "registration")),
            grid_key=d.get("grid_key"),
            patch=None if d.get("patch") is None else int(d["patch"]),
        )

    def describe(self) -> str:
        """Short text, e.g. ``level 2 x=0 y=0 1024x1024`` (``patch 7, ...`` for a skipped patch)."""
        x, y, w, h = self.rect
        where = f"level {self.level} x={x} y={y} {w}x{h}"
        return f"patch {self.patch} ({where})" if self.patch is not None else where


def sample_tiles(cols: int, rows: int, n: int = SAMPLES_PER_LEVEL) -> list[tuple[int, int]]:
    """Up to ``n`` distinct ``(col, row)`` tile indices spread over a ``cols x rows`` lattice:
    corners, centre, then points between them (deterministic)."""
    out: list[tuple[int, int]] = []
    for fx, fy in _SPOTS:
        cell = (int(round(fx * (cols - 1))), int(round(fy * (rows - 1))))
        if cell not in out:
            out.append(cell)
        if len(out) >= n:
            break
    return out


def check_pyramid(slide: Slide, samples_per_level: int = SAMPLES_PER_LEVEL) -> list[CorruptRegion]:
    """Decode a deterministic sample of tiles at every pyramid level of ``slide``.

    Args:
        slide: an open slide (a plain PNG/JPEG is already decoded whole and is not checked).
        samples_per_level: most tiles decoded per level (at least 1).

    Returns:
        The sampled tiles that failed, as :class:`CorruptRegion` (``found_by="registration"``,
        ``rect`` the tile's level-0 rectangle in pixels); empty when all decoded.

    Raises:
        SlideError: every sampled tile of some level failed (the message names the level(s)
            and says how to fix the file), or the file can no longer be opened.
    """
    if slide.vendor == "image":
        return []
    props = slide.properties
    w0, h0 = slide.dimensions
    failures: list[CorruptRegion] = []
    broken: list[tuple[int, int, int, str]] = []  # level, width, height, first error
    for level, ((lw, lh), ds) in enumerate(zip(slide.level_dimensions, slide.level_downsamples)):
        if lw <= 0 or lh <= 0:
            continue
        tw = _int_prop(props, f"openslide.level[{level}].tile-width") or DEFAULT_TILE
        th = _int_prop(props, f"openslide.level[{level}].tile-height") or DEFAULT_TILE
        cells = sample_tiles(-(-lw // tw), -(-lh // th), max(1, int(samples_per_level)))
        level_failures: list[CorruptRegion] = []
        for col, row in cells:
            # a window strictly inside the tile (1 px inset), so only this tile is decoded
            lx, ly = col * tw, row * th
            ww, wh = min(tw, lw - lx), min(th, lh - ly)
            inset_x, inset_y = (1 if ww > 2 else 0), (1 if wh > 2 else 0)
            size = (max(1, min(MAX_WINDOW, ww - 2 * inset_x)), max(1, min(MAX_WINDOW, wh - 2 * inset_y)))
            location = (int(round((lx + inset_x) * ds)), int(round((ly + inset_y) * ds)))
            try:
                slide.read_region(location, level, size)
            except CorruptRegionError as exc:
                x0, y0 = int(math.floor(lx * ds)), int(math.floor(ly * ds))
                x1, y1 = min(w0, int(math.ceil((lx + ww) * ds))), min(h0, int(math.ceil((ly + wh) * ds)))
                level_failures.append(CorruptRegion(level, (x0, y0, x1 - x0, y1 - y0), exc.detail))
        if level_failures and len(level_failures) == len(cells):
            broken.append((level, lw, lh, level_failures[0].error))
        failures.extend(level_failures)
    if broken:
        levels = "; ".join(f"level {lv} ({lw}x{lh} px): all sampled tiles fail ({err})" for lv, lw, lh, err in broken)
        raise SlideError(
            f"{slide.path} has {'a broken pyramid level' if len(broken) == 1 else 'broken pyramid levels'} "
            f"that cannot be decoded: {levels}.",
            FIX,
            slide.path,
        )
    return failures


def _int_prop(props: dict, key: str) -> int | None:
    try:
        v = int(props.get(key, ""))
    except (TypeError, ValueError):
        return None
    return v if v > 0 else None
