"""Write ``assets/benchmark/tissue_tiles.geojson``: the tissue class of every 128 px tile of the
benchmark's real H&E sources, fixed once and checked in (issue 13).

Run once by a developer (``python scripts/annotate_benchmark_tiles.py``); the cohort generator
only reads the file it writes, so the planted tissue classes never depend on a PathViz layer or
model. Method (recorded in the file's ``provenance``):

* tissue fraction of a tile = share of pixels whose optical density summed over RGB exceeds 0.25
  (white glass is below);
* nuclei = local maxima of the haematoxylin channel (scikit-image ``rgb2hed``, Gaussian sigma 2 px)
  at least 5 px (2.5 um) apart and above the 85th percentile of haematoxylin over the image's
  tissue: a nucleus count, not a mean colour;
* classes among tiles with at least 75 % tissue: ``dense_cellular`` (nuclei per tile at or above
  the 65th percentile of the image's tissue tiles: epidermis, tumour sheets), ``stroma`` (at or
  below the 35th percentile: dermal collagen, fibrous stroma), ``mixed`` in between (not used);
  tiles under 75 % tissue are ``edge`` (under 20 %: ``background``).
* one exception, by eye: tiatoolbox's target image is a single carcinoma field (tumour epithelium
  throughout, at a higher magnification than its declared 0.5 um/px), so all of its tissue tiles
  are ``dense_cellular``: a nucleus-count quantile inside one tumour field would only split large
  from small tumour nuclei;
* pools: each source is cut into regions of 4 x 4 tiles (512 px); regions (never single tiles) go
  to the train / validation / test pools, greedily, largest first (ties by SHA-256 of the region id), to
  the pool furthest below its share (60 / 20 / 20 %) of each class's tiles; stored per tile as
  ``pool`` and ``region``;
* the result was overlaid on the sources and reviewed by eye (``docs/benchmark_tiles.png`` is not
  kept: run with ``--overlay FILE`` to draw it again).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TILE = 128
REGION = 4  # tiles per side of a pool region
SHARES = {"train": 0.6, "validation": 0.2, "test": 0.2}
SIGMA, MIN_DISTANCE, PEAK_QUANTILE = 2.0, 5, 0.85
TISSUE_OD, FULL_TISSUE, EMPTY = 0.25, 0.75, 0.2
DENSE_Q, STROMA_Q = 0.65, 0.35


#: sources whose tissue is one class throughout (checked by eye), by package name
ALL_DENSE = ("tiatoolbox",)


def classify(rgb: np.ndarray, all_dense: bool = False) -> list[dict]:
    from skimage.color import rgb2hed
    from skimage.feature import peak_local_max
    from skimage.filters import gaussian

    od = -np.log(np.clip(rgb.astype(np.float64), 1, 255) / 255.0).sum(axis=2)
    tissue = od > TISSUE_OD
    h = gaussian(rgb2hed(rgb)[..., 0], sigma=SIGMA)
    peaks = peak_local_max(h, min_distance=MIN_DISTANCE, threshold_abs=float(np.quantile(h[tissue], PEAK_QUANTILE)))
    counts = np.zeros((rgb.shape[0] // TILE, rgb.shape[1] // TILE), int)
    for y, x in peaks:
        if y // TILE < counts.shape[0] and x // TILE < counts.shape[1]:
            counts[y // TILE, x // TILE] += 1
    tiles = []
    for r in range(counts.shape[0]):
        for c in range(counts.shape[1]):
            frac = float(tissue[r * TILE:(r + 1) * TILE, c * TILE:(c + 1) * TILE].mean())
            tiles.append({"row": r, "col": c, "tissue": frac, "nuclei": int(counts[r, c])})
    full = [t["nuclei"] for t in tiles if t["tissue"] >= FULL_TISSUE]
    hi, lo = np.quantile(full, DENSE_Q), np.quantile(full, STROMA_Q)
    for t in tiles:
        if t["tissue"] < EMPTY:
            t["class"] = "background"
        elif t["tissue"] < FULL_TISSUE:
            t["class"] = "edge"
        elif all_dense:
            t["class"] = "dense_cellular"
        else:
            t["class"] = "dense_cellular" if t["nuclei"] >= hi else "stroma" if t["nuclei"] <= lo else "mixed"
    return tiles


def main(argv=None) -> int:
    from pathviz.jobs.demo import DEMO_FILES, fetch_demo_file
    from pathviz.settings import Settings

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "assets" / "benchmark" / "tissue_tiles.geojson"))
    ap.add_argument("--overlay", help="also draw the classes over the sources into this PNG")
    args = ap.parse_args(argv)
    from pathviz.cohort.tissue import read_source, source_key

    cache = Settings.from_env().cache_dir
    features, sources = [], {}
    for item in DEMO_FILES:
        path = fetch_demo_file(item, cache)
        rgb = read_source(path)
        key = source_key(item)
        sources[key] = {"sha256": item.sha256, "width": int(rgb.shape[1]), "height": int(rgb.shape[0])}
        for t in classify(rgb, all_dense=item.package in ALL_DENSE):
            x, y = t["col"] * TILE, t["row"] * TILE
            features.append({"type": "Feature",
                             "geometry": {"type": "Polygon", "coordinates": [[[x, y], [x + TILE, y], [x + TILE, y + TILE],
                                                                             [x, y + TILE], [x, y]]]},
                             "properties": {"source": key, "class": t["class"], "nuclei": t["nuclei"],
                                            "tissue_fraction": round(t["tissue"], 3)}})
        if args.overlay:
            _overlay(rgb, [f for f in features if f["properties"]["source"] == key], Path(args.overlay).with_suffix(
                f".{item.package}.png"))
    assign_pools(features)
    doc = {"type": "FeatureCollection", "properties": {
        "provenance": {
            "script": "scripts/annotate_benchmark_tiles.py", "tile_px": TILE, "mpp": 0.5,
            "tissue": f"optical density summed over RGB > {TISSUE_OD}",
            "nuclei": f"local maxima of rgb2hed haematoxylin, Gaussian sigma {SIGMA} px, min distance {MIN_DISTANCE} px, "
                      f"above the {PEAK_QUANTILE:.0%} quantile over tissue",
            "classes": f"tissue >= {FULL_TISSUE:.0%}: dense_cellular if nuclei >= {DENSE_Q:.0%} quantile of the image's "
                       f"full-tissue tiles, stroma if <= {STROMA_Q:.0%} quantile, else mixed; edge under {FULL_TISSUE:.0%} "
                       f"tissue, background under {EMPTY:.0%}; sources {', '.join(ALL_DENSE)}: every tissue tile "
                       "dense_cellular (one carcinoma field, checked by eye)",
            "pools": f"regions of {REGION}x{REGION} tiles assigned greedily (largest first, ties by SHA-256) to the pool furthest "
                     f"below its share of each class: {SHARES}",
            "review": "overlaid on the sources and checked by eye once; frozen: the generator reads only this file",
            "sources": sources},
        "sha256_of_features": hashlib.sha256(json.dumps(features, sort_keys=True).encode()).hexdigest()},
        "features": features}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=0, sort_keys=True) + "\n")
    counts = {}
    for f in features:
        k = (f["properties"]["source"].split("==")[0], f["properties"]["class"])
        counts[k] = counts.get(k, 0) + 1
    for f in features:
        if f["properties"]["class"] in ("dense_cellular", "stroma"):
            k = ("pool " + f["properties"]["pool"], f["properties"]["class"])
            counts[k] = counts.get(k, 0) + 1
    for k, v in sorted(counts.items()):
        print(f"{k[0]:<16}{k[1]:<16}{v:>5}")
    return 0


def assign_pools(features: list[dict]) -> None:
    """Set ``region`` and ``pool`` on every feature (see the module docstring)."""
    classes = ("dense_cellular", "stroma")
    regions: dict[str, list[dict]] = {}
    for f in features:
        x, y = f["geometry"]["coordinates"][0][0]
        rid = f"{f['properties']['source']}#r{y // (TILE * REGION)}c{x // (TILE * REGION)}"
        f["properties"]["region"] = rid
        regions.setdefault(rid, []).append(f)
    totals = {c: sum(f["properties"]["class"] == c for f in features) for c in classes}
    have = {p: {c: 0 for c in classes} for p in SHARES}
    # largest regions first (ties in a fixed SHA-256 order), so the small ones can even the shares out
    for rid in sorted(regions, key=lambda r: (-sum(f["properties"]["class"] in classes for f in regions[r]),
                                              hashlib.sha256(r.encode()).hexdigest())):
        n = {c: sum(f["properties"]["class"] == c for f in regions[rid]) for c in classes}
        if sum(n.values()):
            pool = max(SHARES, key=lambda p: sum(n[c] * (SHARES[p] * totals[c] - have[p][c]) / totals[c] for c in classes))
            for c in classes:
                have[pool][c] += n[c]
        else:
            pool = "none"  # no usable tile
        for f in regions[rid]:
            f["properties"]["pool"] = pool


def _overlay(rgb: np.ndarray, feats: list[dict], out: Path) -> None:
    from PIL import Image, ImageDraw

    colours = {"dense_cellular": (0, 200, 0, 110), "stroma": (255, 200, 0, 90), "mixed": (0, 120, 255, 60),
               "edge": (255, 0, 0, 40), "background": (0, 0, 0, 0)}
    im = Image.fromarray(rgb).convert("RGBA")
    ov = Image.new("RGBA", im.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(ov)
    for f in feats:
        (x0, y0), _, (x1, y1) = f["geometry"]["coordinates"][0][:3]
        d.rectangle([x0, y0, x1 - 1, y1 - 1], fill=colours[f["properties"]["class"]], outline=(0, 0, 0, 80))
    Image.alpha_composite(im, ov).convert("RGB").resize((rgb.shape[1] // 2, rgb.shape[0] // 2)).save(out)


if __name__ == "__main__":
    raise SystemExit(main())
