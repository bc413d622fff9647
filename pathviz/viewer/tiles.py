"""Tile service for the viewer: DeepZoom slide tiles and heatmap overlay tiles, with caches.

:class:`TileService` holds the logic (no HTTP), so the benchmark and tests can call it directly;
:mod:`pathviz.viewer.routes` serves it from the app's own server (same origin as the dashboard) to
the viewer's OpenSeadragon, and :mod:`pathviz.viewer.shared` keeps the one service per workspace
that the routes and the pages share.

Caching: open slides and their DeepZoom generators are kept per slide; encoded tiles (JPEG for the
slide, PNG for overlays) are kept in a byte-bounded LRU, so a tile seen once is served from memory.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import openslide

from pathviz.errors import PathVizError, SlideError
from pathviz.layers.overlay import OverlayDeepZoom, check_display
from pathviz.layers.score import layer_raster, mask_raster
from pathviz.slide.reader import Slide
from pathviz.store.workspace import Workspace

_LOG = logging.getLogger(__name__)

TILE_SIZE = 256
JPEG_QUALITY = 85
#: Pseudo-layer name of the tissue mask overlay.
MASK_LAYER = "tissue_mask"


_PATH = re.compile(r"(?:[A-Za-z]:)?[\\/][^\s:;,'\"()\[\]]*[\\/][^\s:;,'\"()\[\]]*|[^\s:;,'\"()\[\]/\\]+\.(?:svs|tiff?|ndpi|vms|vmu|scn|mrxs|bif|svslide|dcm|jpe?g|png)\b",
                   re.IGNORECASE)


def _without_paths(text: str) -> str:
    """``text`` with file paths and slide file names replaced by ``<file>`` (for log lines)."""
    return _PATH.sub("<file>", text)


def _overlay_key(slide_id: str, layer: str, level: int, col: int, row: int, cmap: str, vmin: float, vmax: float,
                 scale: str, floor: int) -> tuple:
    """Tile-cache key of an overlay tile: every drawing parameter, so settings never share a tile."""
    return ("overlay", slide_id, layer, cmap, scale, int(floor), float(vmin), float(vmax), level, col, row)


class LRUBytes:
    """Thread-safe LRU cache of bytes, bounded by total size (``max_bytes``)."""

    def __init__(self, max_bytes: int = 256 << 20):
        self.max_bytes = max_bytes
        self._data: OrderedDict[tuple, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple, count_miss: bool = True) -> bytes | None:
        """The cached bytes of ``key`` (now most recently used), or None.

        ``count_miss=False`` looks without counting a miss (a caller that will ask again, e.g.
        the tile routes peek on the event loop and render in a worker thread on a miss).
        """
        with self._lock:
            val = self._data.get(key)
            if val is None:
                if count_miss:
                    self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return val

    def put(self, key: tuple, val: bytes) -> None:
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._size -= len(old)
            self._data[key] = val
            self._size += len(val)
            while self._size > self.max_bytes and self._data:
                _, v = self._data.popitem(last=False)
                self._size -= len(v)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._size = 0


@dataclass
class _OpenSlide:
    slide: Slide
    dz: object  # openslide.deepzoom.DeepZoomGenerator


class TileService:
    """Serves DeepZoom tiles of registered slides and of their score layers.

    Args:
        workspace: the workspace whose slides are served (only registered slide ids are
            accepted; no file path ever comes from a request).
        cache_bytes: size bound of the encoded-tile cache.
    """

    def __init__(self, workspace: Workspace, cache_bytes: int = 256 << 20, tile_size: int = TILE_SIZE):
        self.workspace = workspace
        self.tile_size = tile_size
        self.cache = LRUBytes(cache_bytes)
        self._slides: dict[str, _OpenSlide] = {}
        self._overlays: dict[tuple[str, str], OverlayDeepZoom] = {}
        self._lock = threading.Lock()
        self.tiles_served = 0

    # -- slides ----------------------------------------------------------------------------
    def _open(self, slide_id: str) -> _OpenSlide:
        with self._lock:
            entry = self._slides.get(slide_id)
            if entry is None:
                slide = self.workspace.open(slide_id)
                entry = _OpenSlide(slide, slide.deepzoom(tile_size=self.tile_size, overlap=0))
                self._slides[slide_id] = entry
            return entry

    def slide_geometry(self, slide_id: str) -> dict:
        """``{"width", "height", "tile_size", "levels", "mpp"}`` of a slide's DeepZoom pyramid."""
        e = self._open(slide_id)
        w, h = e.slide.dimensions
        return {"width": w, "height": h, "tile_size": self.tile_size, "levels": e.dz.level_count, "mpp": e.slide.mpp}

    def slide_dzi(self, slide_id: str) -> str:
        """DeepZoom descriptor (DZI XML, JPEG tiles) of a registered slide.

        Raises:
            WorkspaceError: unknown slide id; SlideError: the slide file cannot be read.
        """
        return self._open(slide_id).dz.get_dzi("jpeg")

    def cached_slide_tile(self, slide_id: str, level: int, col: int, row: int) -> bytes | None:
        """JPEG bytes of a slide tile if it is in the tile cache (counted as served), else None.

        Never opens a slide or renders, so it is cheap enough to call on an event loop; a None is
        not counted as a cache miss (the caller then calls :meth:`slide_tile`, which counts it).
        """
        data = self.cache.get(("slide", slide_id, level, col, row), count_miss=False)
        if data is not None:
            self.tiles_served += 1
        return data

    def slide_tile(self, slide_id: str, level: int, col: int, row: int) -> bytes:
        """JPEG bytes of DeepZoom tile ``(level, col, row)`` (256 px, level 0 = one pixel).

        Raises:
            ValueError: level or address outside the pyramid; WorkspaceError: unknown slide.
        """
        key = ("slide", slide_id, level, col, row)
        data = self.cache.get(key)
        if data is None:
            try:
                tile = self._open(slide_id).dz.get_tile(level, (col, row))
            except openslide.OpenSlideError as exc:
                # OpenSlide's errors are sticky: this handle would fail every later read too. Drop
                # it (the next request reopens the file) so one corrupt region costs one tile.
                self._drop_handle(slide_id)
                # the reason without file names (OpenSlide/libtiff messages may quote the slide's path,
                # which carries the original, often patient-identifying, file name): the slide id names it
                _LOG.warning("slide %s: tile %s/%s_%s could not be decoded: %s", slide_id, level, col, row,
                             _without_paths(str(exc)))
                raise SlideError(f"Tile {level}/{col}_{row} of slide {slide_id!r} could not be decoded: the slide file has "
                                 "a corrupt region.", "the other tiles are still served; re-scan or re-copy the slide.") from exc
            buf = io.BytesIO()
            tile.save(buf, "JPEG", quality=JPEG_QUALITY)
            data = buf.getvalue()
            self.cache.put(key, data)
        self.tiles_served += 1
        return data

    def _drop_handle(self, slide_id: str) -> None:
        """Close and forget a slide's open handle (it is reopened on the next request)."""
        with self._lock:
            entry = self._slides.pop(slide_id, None)
        if entry is not None:
            try:
                entry.slide.close()
            except Exception:  # noqa: BLE001 (a broken handle may fail to close; it is dropped either way)
                pass

    # -- overlays --------------------------------------------------------------------------
    def _overlay(self, slide_id: str, layer: str) -> OverlayDeepZoom:
        key = (slide_id, layer)
        with self._lock:
            ov = self._overlays.get(key)
        if ov is None:
            w, h = self._open(slide_id).slide.dimensions
            if layer == MASK_LAYER:
                raster = mask_raster(self.workspace.tissue_mask(slide_id))
            else:
                raster = layer_raster(self.workspace.layer(slide_id, layer), self.workspace.grid(slide_id))
            ov = OverlayDeepZoom(raster, w, h, self.tile_size)
            with self._lock:
                self._overlays[key] = ov
        return ov

    def cached_overlay_tile(
        self, slide_id: str, layer: str, level: int, col: int, row: int, cmap: str, vmin: float, vmax: float,
        scale: str = "value", floor: int = 0,
    ) -> bytes | None:
        """PNG bytes of an overlay tile if it is in the tile cache (counted as served), else None.

        Like :meth:`cached_slide_tile`: never renders, a None is not counted as a miss.
        """
        data = self.cache.get(_overlay_key(slide_id, layer, level, col, row, cmap, vmin, vmax, scale, floor),
                              count_miss=False)
        if data is not None:
            self.tiles_served += 1
        return data

    def overlay_tile(
        self, slide_id: str, layer: str, level: int, col: int, row: int, cmap: str, vmin: float, vmax: float,
        scale: str = "value", floor: int = 0,
    ) -> bytes:
        """PNG (RGBA) bytes of an overlay tile, aligned with :meth:`slide_tile` of the same address.

        ``layer`` is a stored score layer of the slide's default grid, or :data:`MASK_LAYER`.
        ``scale`` ``"value"``: ``vmin``/``vmax`` (in the layer's units) map to the ends of colour map
        ``cmap``; ``"percentile"``: each cell is coloured by its percentile rank within the slide's
        layer and ``vmin``/``vmax`` are percentiles (0-100). Cells ranked below ``floor`` (0-99,
        0 = off) are transparent, in both scales
        (:func:`~pathviz.layers.overlay.display_values`).

        Raises:
            WorkspaceError: unknown slide or layer; ValueError: level or address outside the
            pyramid; PathVizError: unknown colour map, non-finite value range, unknown scale,
            percentile range outside 0-100, floor not an integer 0-99.
        """
        if not (np.isfinite(vmin) and np.isfinite(vmax)):
            raise PathVizError(f"Value range ({vmin}, {vmax}) is not finite.", "give numbers for vmin and vmax.")
        check_display(scale, floor)
        if scale == "percentile" and not (0 <= vmin <= 100 and 0 <= vmax <= 100):
            raise PathVizError(f"Percentile range ({vmin}, {vmax}) is outside 0-100.", "give percentiles 0-100.")
        key = _overlay_key(slide_id, layer, level, col, row, cmap, vmin, vmax, scale, floor)
        data = self.cache.get(key)
        if data is None:
            img = self._overlay(slide_id, layer).get_tile(level, (col, row), cmap, vmin, vmax, scale, floor)
            buf = io.BytesIO()
            img.save(buf, "PNG", compress_level=1)
            data = buf.getvalue()
            self.cache.put(key, data)
        self.tiles_served += 1
        return data

    def invalidate(self, slide_id: str | None = None) -> None:
        """Drop cached overlays and tiles (after a layer is recomputed)."""
        with self._lock:
            for key in [k for k in self._overlays if slide_id is None or k[0] == slide_id]:
                del self._overlays[key]
        self.cache.clear()
