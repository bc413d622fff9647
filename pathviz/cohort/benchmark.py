"""The planted-truth benchmark cohort, generator v3 (issue 13): real tissue, real expression,
simulated outcomes, and no colour shortcut.

Everything a model reads is real tissue or real expression except the outcomes and the planted
couplings, which follow :data:`SETTINGS` (frozen in code; tuning used cohort seed 0 only; the one
change made after an evaluation seed was seen is recorded in :class:`Settings`). ``ground_truth.json``
records all of it; no model reads it.

Tissue (:mod:`pathviz.cohort.tissue`)
    128 px tiles (64 um at 0.5 um/px) of the real H&E sources, classed once by a nucleus count in
    ``assets/benchmark/tissue_tiles.geojson`` (``dense_cellular``: epidermis and carcinoma sheets;
    ``stroma``: dermal collagen), each in the train / validation / test pool of its 512 px source
    region. Each patient belongs to one split and its slide draws only from that split's pool.
    Every tile is colour-matched exactly (made of the same multiset of RGB colours as every other
    tile, assigned by luminance rank), then stain-jittered at random (independently of its
    class), rotated, flipped and elastically deformed (nearest-neighbour resampling, so no new
    colours): the two classes have the same colours, so they differ in morphology only. Each
    slide then gets its centre's staining (haematoxylin and eosin amounts scaled per centre, with
    slide-to-slide spread: a per-pixel colour map, so both classes change alike); since centre is
    tied to hazard, stain intensity is a centre shortcut a model should not take (v3; v2 had
    neither the elastic jitter nor the centre stains).
Slides
    2048 x 2048 px at 0.5 um/px (8 x 8 patches of 256 px), a 16 x 16 mosaic of tiles: a tissue
    region (a smoothed random field, 55-80 % of the tiles) on white glass, and inside it
    contiguous blobs of ``dense_cellular`` tissue (another smoothed field, thresholded at the
    patient's dense fraction), the rest ``stroma``. Pyramidal TIFF (JPEG in RGB 4:4:4, quality 95:
    see :class:`Settings`) with mpp metadata.
Expression
    A real breast-cancer profile per patient: GSE1992, GSE4335 and GSE3143 (SurvSet) on their
    common genes, each gene z-scored within its source study; patient ``i`` takes profile
    ``order[i mod 397]`` of a seeded permutation, and a profile used a second or third time gets
    independent N(0, 0.3^2) noise per gene. Planted on top: the epithelial genes of
    :data:`SETTINGS` rise and the stromal genes fall with the patient's dense fraction (so
    morphology predicts them: seed 002's task); control genes are left as they are.
Outcomes (recurrence-free survival, months; overall survival adds a post-recurrence interval)
    A Cox model, log-hazard per SD: dense fraction +0.5, its interaction with an immune RNA
    program (KEGG antigen processing: dense tissue matters more in program-high tumours, +0.4
    times the program's sign: seed 003's task), dense tissue at the tissue edge +0.3 (spatial
    term), the planted KEGG pathway (cell cycle) +0.5, age +0.3, centre (+0 / +0.3 / +0.6; centres
    also differ in dense fraction, so centre truly confounds). True risk groups split the main
    effects at the median; CA19-9 above 37 U/mL adds a log-HR in the low group only, adjuvant
    treatment (random) removes one in the high group only (sizes in :data:`SETTINGS`, chosen on
    seed 0 so the interactions are detectable with the true groups at a design power >= 0.8:
    :func:`interaction_power`). Exponential baseline (median 30 months), censoring 24-84 months
    plus random loss.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from pathviz.cohort.endpoints import Endpoint
from pathviz.cohort.schema import Cohort
from pathviz.cohort.tissue import (OTHER, PLANTED, POOLS, TILE, TilePools, match_colour, read_annotation,
                                   reference_colours, tile_pools)
from pathviz.errors import PathVizError

Progress = Callable[[float, str], None]
GENERATOR_VERSION = 3
#: Generator versions whose cohorts this PathViz still reads (v3 = v2 + elastic jitter and centre stains;
#: same files and columns).
READABLE_VERSIONS = (2, 3)
LABEL = ("planted-truth benchmark cohort v3: real H&E tissue (colour-matched) and real expression profiles, "
         "simulated outcomes")
MPP = 0.5
GRID = 16  # tiles per side: 16 x 128 px = 2048 px
PATCH = 256  # px: the analysis grid's patch, 2 x 2 tiles
BACKGROUND, STROMA, DENSE = 0, 1, 2
EXPRESSION_SOURCES = ("gse1992", "gse4335", "gse3143")


@dataclass(frozen=True)
class Settings:
    """Every number of the generator (frozen before any evaluation seed; see the module docstring).

    Attributes:
        patients: cohort size.
        tissue_share: (low, high) of a slide's tiles that are tissue (uniform).
        dense_beta: per centre, Beta(a, b) of the dense fraction of the tissue (then clipped to
            ``dense_clip``); centres differ, so the dense fraction is confounded by centre.
        coef: log-hazard coefficients (per SD for continuous terms). The two interaction sizes
            were set on cohort seed 0 by the design's power (:func:`interaction_power` with
            ``redraw_assignment``: 0.975 for CA19-9, 0.885 for treatment at -0.8). A first choice,
            -0.6 from seed 0's conditional power (0.94), gave 0.55 on seed 1 and a design power of
            0.64: frozen again after that, evaluated on seeds never generated before (2, 3).
        coupling: z-units per SD of dense fraction added to the epithelial genes (and removed
            from the stromal genes).
        reuse_noise: sd (z-units) of the noise added to a profile's second and later uses.
        split_shares: train / validation / test shares of the patients (each split its own pool).
        stain_jitter: +- range of the per-tile, per-channel optical-density factors applied
            after colour matching (random, independent of the class).
        elastic_px: sd (px) of the elastic jitter's displacements (:func:`elastic_jitter`; 4 x 4
            lattice per 128 px tile, nearest-neighbour resampling).
        centre_stain: per centre, the (haematoxylin, eosin) factors of its staining
            (:func:`apply_stain`, one per slide): centres stain differently, as real
            laboratories do, and since centre is tied to hazard a model that reads stain intensity
            learns the centre, not the tissue (a stain-normalising model should not).
        centre_stain_sd: sd of the log factors between slides of one centre.
        compression, jpeg_quality, jpeg_rgb: how slides are written. JPEG in RGB 4:4:4 at quality
            95: YCbCr 4:2:0 (scanners' usual JPEG) averages chroma over 2 x 2 pixels, which made
            colour depend on texture again (a logistic regression on patch mean colour told the
            classes apart with AUROC 0.97 at quality 90 on seed 0; 0.50 with RGB 4:4:4 at 95;
            a logistic regression on colour histograms 0.62). About 8 MB per slide.
    """

    patients: int = 500
    tissue_share: tuple[float, float] = (0.55, 0.8)
    dense_beta: dict = field(default_factory=lambda: {"A": (2.0, 3.0), "B": (2.5, 2.5), "C": (3.0, 2.0)})
    dense_clip: tuple[float, float] = (0.05, 0.7)
    coef: dict = field(default_factory=lambda: {
        "dense_fraction": 0.5, "dense_x_program": 0.4, "dense_at_edge": 0.3, "pathway": 0.5, "age": 0.3,
        "centre": {"A": 0.0, "B": 0.3, "C": 0.6},
        "ca19_9_high_in_low_risk": 1.0, "treatment_in_high_risk": -0.8})
    baseline_median_months: float = 30.0
    censor_months: tuple[float, float] = (24.0, 84.0)
    loss_mean_months: float = 150.0
    post_recurrence_mean_months: float = 20.0
    coupling: float = 0.8
    reuse_noise: float = 0.3
    split_shares: tuple[float, float, float] = (0.6, 0.2, 0.2)
    stain_jitter: float = 0.1
    elastic_px: float = 3.0
    centre_stain: dict = field(default_factory=lambda: {"A": (1.0, 1.0), "B": (1.15, 0.9), "C": (0.88, 1.12)})
    centre_stain_sd: float = 0.05
    compression: str = "jpeg"
    jpeg_quality: int = 95
    jpeg_rgb: bool = True
    planted_pathway: str = "KEGG_hsa04110"  # cell cycle
    program_pathway: str = "KEGG_hsa04612"  # antigen processing and presentation
    epithelial_genes: tuple[str, ...] = ("KRT14", "KRT17", "KRT6A", "KRT16", "SFN", "DSP", "PKP1", "JUP", "CDH1",
                                         "KRT8", "KRT18", "KRT19")
    stromal_genes: tuple[str, ...] = ("COL1A1", "COL1A2", "COL3A1", "LUM", "FN1", "SPARC")
    control_genes: tuple[str, ...] = ("GAPDH", "ACTB", "PTPRC", "CD3E", "MS4A1", "PECAM1", "VWF", "VIM")


SETTINGS = Settings()


# -- expression --------------------------------------------------------------------------------------
def benchmark_expression() -> tuple[pd.DataFrame, dict]:
    """The real profiles: SurvSet GSE1992, GSE4335, GSE3143 on their common genes, each gene
    z-scored within its study (rows ``"<study>:<patient>"``). Returns ``(profiles, provenance)``."""
    from pathviz.cohort.loaders import load_survset

    studies = {name: load_survset(name).omics for name in EXPRESSION_SOURCES}
    common = sorted(set.intersection(*(set(m.columns) for m in studies.values())))
    parts = []
    for name, m in studies.items():
        x = m[common].astype(float)
        x = (x - x.mean()) / x.std(ddof=0).replace(0, 1.0)
        x.index = [f"{name}:{p}" for p in x.index]
        parts.append(x.fillna(0.0))
    profiles = pd.concat(parts)
    return profiles, {s: int(len(m)) for s, m in studies.items()} | {"genes": len(common)}


def zscore(x: np.ndarray) -> np.ndarray:
    """``(x - mean) / sd`` over the cohort (sd 0 leaves the centred values)."""
    sd = x.std()
    return (x - x.mean()) / (sd if sd > 0 else 1.0)


# -- slide layout --------------------------------------------------------------------------------------
def layout(rng: np.random.Generator, tissue_share: float, dense_fraction: float, grid: int = GRID) -> np.ndarray:
    """``int8[grid, grid]`` tile classes (0 background, 1 stroma, 2 dense_cellular): a smoothed
    random field (plus a pull towards the centre) thresholded to ``tissue_share`` of the tiles is
    the tissue; inside it, a second smoothed field's top ``dense_fraction`` of the tissue tiles
    are dense. Both form contiguous regions, not salt-and-pepper tiles."""
    from scipy.ndimage import gaussian_filter

    yy, xx = np.mgrid[0:grid, 0:grid]
    r = np.hypot(yy - (grid - 1) / 2, xx - (grid - 1) / 2) / grid
    f1 = gaussian_filter(rng.normal(size=(grid, grid)), 2.5, mode="reflect")
    f1 = f1 / (f1.std() or 1.0) - 3.0 * r
    n_tissue = max(4, int(round(tissue_share * grid * grid)))
    tissue = np.zeros(grid * grid, bool)
    tissue[np.argsort(-f1.ravel(), kind="stable")[:n_tissue]] = True
    f2 = gaussian_filter(rng.normal(size=(grid, grid)), 1.5, mode="reflect").ravel()
    n_dense = int(round(dense_fraction * n_tissue))
    idx = np.flatnonzero(tissue)
    dense = idx[np.argsort(-f2[idx], kind="stable")[:n_dense]]
    out = np.where(tissue, STROMA, BACKGROUND).astype(np.int8)
    out[dense] = DENSE
    return out.reshape(grid, grid)


def dense_at_edge(classes: np.ndarray) -> float:
    """Share of a slide's dense tiles that touch background (4-neighbourhood): dense tissue at the
    tissue's edge (the spatial term of the outcome model); 0 without dense tiles."""
    dense = classes == DENSE
    if not dense.any():
        return 0.0
    bg = np.pad(classes == BACKGROUND, 1, constant_values=False)
    touch = bg[:-2, 1:-1] | bg[2:, 1:-1] | bg[1:-1, :-2] | bg[1:-1, 2:]
    return float((dense & touch).sum() / dense.sum())


def patch_classes(classes: np.ndarray, cls: int = DENSE) -> np.ndarray:
    """``int[8, 8]``: tiles of class ``cls`` per 256 px patch (0-4) of a 16 x 16 tile layout;
    ``cls=None`` counts tissue tiles (any class but background)."""
    g = classes.shape[0] // 2
    hit = classes != BACKGROUND if cls is None else classes == cls
    return hit.reshape(g, 2, g, 2).sum(axis=(1, 3))


def parse_layout(codes: str, grid: int = GRID) -> np.ndarray:
    """A ground-truth ``tile_classes`` string back to ``int8[grid, grid]``."""
    return np.frombuffer(codes.encode(), np.uint8).astype(np.int8).reshape(grid, grid) - ord("0")


# -- tiles --------------------------------------------------------------------------------------------------
def _stain_jitter(tile: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """Scale each RGB channel's optical density by its own factor in ``1 +- amount`` (a
    per-channel lookup table: tiles with the same values per channel, as matched tiles have, stay
    alike whatever their class, so the jitter adds colour variation that says nothing about it)."""
    v = np.arange(256, dtype=np.float64)
    od = -np.log(np.maximum(v, 1.0) / 255.0)
    out = np.empty_like(tile)
    for c in range(3):
        lut = np.clip(np.round(255.0 * np.exp(-od * (1.0 + rng.uniform(-amount, amount)))), 0, 255).astype(np.uint8)
        out[..., c] = lut[tile[..., c]]
    return out


def reference_image(pools: TilePools) -> np.ndarray:
    """The common colour reference: every training-pool tile side by side (both classes)."""
    idx = np.flatnonzero(pools.pools == "train")
    return np.concatenate([pools.tiles[i] for i in idx], axis=1)


def matched_tiles(pools: TilePools, progress: Progress | None = None, settings: Settings = SETTINGS) -> np.ndarray:
    """``uint8[n_tiles, 128, 128, 3]``: each source tile colour-matched exactly to
    :func:`reference_image` (:func:`~pathviz.cohort.tissue.match_colour`); :func:`render` adds a
    fresh random stain jitter to every placed tile."""
    colours = reference_colours(reference_image(pools))
    out = np.empty_like(pools.tiles)
    for i, tile in enumerate(pools.tiles):
        out[i] = match_colour(tile, colours)
        if progress and i % 20 == 0:
            progress(i / len(pools.tiles), f"colour-matching source tiles {i}/{len(pools.tiles)}")
    return out


def _background(rng: np.random.Generator) -> np.ndarray:
    return np.clip(rng.normal(243, 2.0, (TILE, TILE, 3)), 0, 255).astype(np.uint8)


@lru_cache(maxsize=4)
def _elastic_lattice(h: int, w: int, knots: int) -> tuple[np.ndarray, ...]:
    """Bilinear weights ``[h, knots]`` and ``[w, knots]`` from a knot lattice to pixel rows and
    columns, and the pixel grid."""
    def spread(n: int) -> np.ndarray:
        pos = np.linspace(0, knots - 1, n)
        lo = np.minimum(np.floor(pos).astype(int), knots - 2)
        frac = pos - lo
        m = np.zeros((n, knots))
        m[np.arange(n), lo] = 1 - frac
        m[np.arange(n), lo + 1] = frac
        return m

    yy, xx = np.mgrid[0:h, 0:w]
    return spread(h), spread(w), yy, xx


def elastic_jitter(tile: np.ndarray, rng: np.random.Generator, amplitude_px: float, knots: int = 4) -> np.ndarray:
    """A smooth random deformation of a ``uint8[h, w, 3]`` tile: displacements drawn N(0,
    ``amplitude_px``^2) per axis on a ``knots`` x ``knots`` lattice, interpolated bilinearly to every
    pixel, and the tile resampled by nearest neighbour (edges clamped). Nearest neighbour keeps
    the tile's own colours (no interpolated mixtures, which would be more frequent in textured
    dense tissue and bring colour back as a class cue), so colour-matched tiles stay alike.
    The elastic augmentation of Simard, Steinkraus & Platt (ICDAR 2003), on a coarse lattice
    instead of a Gaussian-smoothed field."""
    h, w = tile.shape[:2]
    if amplitude_px <= 0:
        return tile
    ry, rx, yy, xx = _elastic_lattice(h, w, knots)
    dy = ry @ rng.normal(0.0, amplitude_px, (knots, knots)) @ rx.T
    dx = ry @ rng.normal(0.0, amplitude_px, (knots, knots)) @ rx.T
    rows = np.clip(np.rint(yy + dy), 0, h - 1).astype(np.intp)
    cols = np.clip(np.rint(xx + dx), 0, w - 1).astype(np.intp)
    return tile[rows, cols]


def centre_stain(rng: np.random.Generator, centre: str, settings: Settings = SETTINGS) -> tuple[float, float]:
    """A slide's (haematoxylin, eosin) stain factors: its centre's factors of
    ``settings.centre_stain`` times ``exp(N(0, centre_stain_sd^2))`` each (slide-to-slide spread
    within a centre)."""
    h, e = settings.centre_stain[centre]
    return (float(h * np.exp(rng.normal(0.0, settings.centre_stain_sd))),
            float(e * np.exp(rng.normal(0.0, settings.centre_stain_sd))))


def apply_stain(img: np.ndarray, factors: tuple[float, float]) -> np.ndarray:
    """Scale the haematoxylin and eosin amounts of every pixel of ``uint8[h, w, 3]`` by
    ``factors``: optical density unmixed with Ruifrok & Johnston's H-E-DAB stain matrix
    (Anal Quant Cytol Histol 2001; ``skimage.color.hed_from_rgb``), the H and E concentrations
    scaled, and mixed back (the HED augmentation of Tellez et al., Med Image Anal 2019, with one
    factor per slide). A per-pixel colour map: applied to a whole slide, it changes both classes'
    colours alike."""
    from skimage.color import hed_from_rgb, rgb_from_hed

    if factors == (1.0, 1.0):
        return img
    od_lut = -np.log(np.maximum(np.arange(256, dtype=np.float32), 1.0) / 255.0)
    od = od_lut[img.reshape(-1, 3)]
    mix = (hed_from_rgb @ np.diag([factors[0], factors[1], 1.0]) @ rgb_from_hed).astype(np.float32)
    out = np.exp(-np.maximum(od @ mix, 0.0)) * 255.0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8).reshape(img.shape)


def render(classes: np.ndarray, split: str, pools: TilePools, matched: np.ndarray, rng: np.random.Generator,
           settings: Settings = SETTINGS, stain: tuple[float, float] = (1.0, 1.0)) -> tuple[np.ndarray, list[str]]:
    """The slide image ``uint8[2048, 2048, 3]`` of a layout, tiles drawn from ``split``'s pool
    (random tile, per-tile stain jitter, rotation, flip and elastic jitter), then the slide's
    centre ``stain`` factors (:func:`apply_stain`); also each tissue tile's source name."""
    grid = classes.shape[0]
    img = np.empty((grid * TILE, grid * TILE, 3), np.uint8)
    choices = {DENSE: pools.index(split, PLANTED), STROMA: pools.index(split, OTHER)}
    used = []
    for r in range(grid):
        for c in range(grid):
            k = int(classes[r, c])
            if k == BACKGROUND:
                tile = _background(rng)
            else:
                src = int(rng.choice(choices[k]))
                tile = np.rot90(_stain_jitter(matched[src], rng, settings.stain_jitter), k=int(rng.integers(4)))
                if rng.random() < 0.5:
                    tile = tile[:, ::-1]
                tile = elastic_jitter(tile, rng, settings.elastic_px)
                used.append(str(pools.names[src]))
            img[r * TILE:(r + 1) * TILE, c * TILE:(c + 1) * TILE] = tile
    return apply_stain(img, stain), used


# -- the cohort ---------------------------------------------------------------------------------------------
def _pathway_genes(name: str, measured: set[str]) -> list[str]:
    from pathviz.genomics import default_library

    lib = default_library("kegg")
    if name not in lib.names():
        raise PathVizError(f"KEGG pathway {name} is not in the shipped library.", "reinstall PathViz.")
    genes = [g for g in lib.get(name).genes if g in measured]
    if len(genes) < 10:
        raise PathVizError(f"Pathway {name} has only {len(genes)} measured genes.", "choose another pathway.")
    return genes


def simulate_outcomes(lp: np.ndarray, rng: np.random.Generator, settings: Settings = SETTINGS) -> dict:
    """Recurrence-free and overall survival (months) from a log-hazard ``lp`` (exponential
    baseline, administrative censoring plus random loss)."""
    n = len(lp)
    lam = np.log(2) / settings.baseline_median_months
    t_event = rng.exponential(1.0 / (lam * np.exp(lp)))
    censor = np.minimum(rng.uniform(*settings.censor_months, n), rng.exponential(settings.loss_mean_months, n))
    death = t_event + rng.exponential(settings.post_recurrence_mean_months, n)
    return {"time": np.minimum(t_event, censor), "event": (t_event <= censor).astype(int),
            "os_time": np.minimum(death, censor), "os_event": (death <= censor).astype(int)}


def outcome_model(cov: dict, settings: Settings = SETTINGS) -> dict:
    """The log-hazard of :data:`SETTINGS` from the covariates (arrays): ``dense_fraction``,
    ``program``, ``edge``, ``pathway``, ``age``, ``centre``, ``ca19_9``, ``treated``. Returns
    ``lp_main`` (main effects, the prognostic truth), ``true_high`` (its median split) and ``lp``
    (with the CA19-9 and treatment interactions)."""
    c = settings.coef
    zf = zscore(cov["dense_fraction"])
    sign = np.where(cov["program"] > np.median(cov["program"]), 1.0, -1.0)
    lp_main = (c["dense_fraction"] * zf + c["dense_x_program"] * zf * sign + c["dense_at_edge"] * zscore(cov["edge"])
               + c["pathway"] * zscore(cov["pathway"]) + c["age"] * zscore(cov["age"])
               + np.array([c["centre"][k] for k in cov["centre"]]))
    high = lp_main > np.median(lp_main)
    lp = (lp_main + c["ca19_9_high_in_low_risk"] * ((cov["ca19_9"] > 37) & ~high)
          + c["treatment_in_high_risk"] * (cov["treated"] & high))
    return {"lp_main": lp_main, "true_high": high, "lp": lp}


def simulate_cohort(seed: int = 0, patients: int | None = None, settings: Settings = SETTINGS) -> dict:
    """Everything of a benchmark cohort except its slide images: ids, splits, centres, tile
    layouts, dense fractions, expression (with the planted couplings), covariates, the outcome
    model's log-hazards and simulated outcomes. Deterministic per ``seed``.

    Raises:
        PathVizError: a planted gene or pathway is not measured in the expression sources.
    """
    n = int(patients or settings.patients)
    rng = np.random.default_rng([seed, 1])
    profiles, provenance = benchmark_expression()
    measured = set(profiles.columns)
    missing = [g for g in (*settings.epithelial_genes, *settings.stromal_genes, *settings.control_genes) if g not in measured]
    if missing:
        raise PathVizError(f"Planted genes not measured in the expression sources: {', '.join(missing)}.", "fix SETTINGS.")
    ids = [f"BM{seed}-{i + 1:04d}" for i in range(n)]
    order = rng.permutation(len(profiles))
    src_rows = [int(order[i % len(order)]) for i in range(n)]
    uses = np.array([i // len(order) for i in range(n)])
    expr = profiles.iloc[src_rows].to_numpy(np.float64)
    expr[uses > 0] += rng.normal(0.0, settings.reuse_noise, (int((uses > 0).sum()), expr.shape[1]))
    centres = rng.choice(sorted(settings.dense_beta), n)
    frac_target = np.clip(np.array([rng.beta(*settings.dense_beta[c]) for c in centres]), *settings.dense_clip)
    tissue_share = rng.uniform(*settings.tissue_share, n)
    split = rng.choice(POOLS, n, p=list(settings.split_shares))
    ages = np.clip(np.round(rng.normal(62.0, 11.0, n), 0), 30, 90)
    ca19_9 = np.round(rng.lognormal(np.log(30.0), 1.0, n), 1)
    treated = rng.random(n) < 0.5
    seeds = np.random.SeedSequence([seed, 2]).spawn(n)
    layouts = [layout(np.random.default_rng(s), tissue_share[i], frac_target[i]) for i, s in enumerate(seeds)]
    frac = np.array([(g == DENSE).sum() / (g != BACKGROUND).sum() for g in layouts])
    edge = np.array([dense_at_edge(g) for g in layouts])
    genes = list(profiles.columns)
    col = {g: j for j, g in enumerate(genes)}
    zf = zscore(frac)
    for g in settings.epithelial_genes:
        expr[:, col[g]] += settings.coupling * zf
    for g in settings.stromal_genes:
        expr[:, col[g]] -= settings.coupling * zf
    planted = _pathway_genes(settings.planted_pathway, measured)
    program = _pathway_genes(settings.program_pathway, measured)
    cov = {"dense_fraction": frac, "program": expr[:, [col[g] for g in program]].mean(axis=1), "edge": edge,
           "pathway": expr[:, [col[g] for g in planted]].mean(axis=1), "age": ages, "centre": centres,
           "ca19_9": ca19_9, "treated": treated}
    model = outcome_model(cov, settings)
    return {"seed": seed, "n": n, "ids": ids, "split": split, "centres": centres, "layouts": layouts,
            "render_seeds": [sq.spawn(1)[0] for sq in seeds], "covariates": cov, "model": model,
            "outcomes": simulate_outcomes(model["lp"], rng, settings), "expression": expr, "genes": genes,
            "expression_rows": [str(profiles.index[r]) for r in src_rows], "expression_uses": uses,
            "expression_provenance": provenance, "planted_genes": planted, "program_genes": program}


def interaction_power(sim: dict, n_sim: int = 200, seed: int = 0, alpha: float = 0.05,
                      settings: Settings = SETTINGS, redraw_assignment: bool = False) -> dict:
    """Power of the CA19-9 x risk-group and treatment x risk-group interaction tests with the
    TRUE risk groups: outcomes are redrawn ``n_sim`` times from the cohort's log-hazard (fresh
    event and censoring times, same patients) and tested with the patient page's statistics
    (:func:`pathviz.survival.marker_by_stratum` / :func:`~pathviz.survival.treatment_by_stratum`,
    Cox Wald tests of the interaction). With ``redraw_assignment`` the treatment assignment and
    the CA19-9 values are redrawn too (the design's power rather than this cohort's: seed 0's
    conditional power was 0.94 for treatment, seed 1's 0.55, with the same settings).

    Returns:
        ``{"ca19_9": power, "treatment": power, "both": share of draws where both are
        significant, "n_sim", "alpha", "patients", "redraw_assignment"}``.
    """
    from pathviz.survival import marker_by_stratum, treatment_by_stratum

    rng = np.random.default_rng([seed, 99])
    groups = np.where(sim["model"]["true_high"], "high", "low")
    hits = np.zeros((n_sim, 2), bool)
    n = sim["n"]
    for k in range(n_sim):
        cov, lp = sim["covariates"], sim["model"]["lp"]
        if redraw_assignment:
            cov = {**cov, "ca19_9": np.round(rng.lognormal(np.log(30.0), 1.0, n), 1), "treated": rng.random(n) < 0.5}
            lp = outcome_model(cov, settings)["lp"]
        out = simulate_outcomes(lp, rng, settings)
        ca = marker_by_stratum(out["time"], out["event"], groups, cov["ca19_9"], 37.0, "CA19-9").interaction_p
        tr = treatment_by_stratum(out["time"], out["event"], groups, cov["treated"].astype(int)).interaction_p
        hits[k] = (ca is not None and ca < alpha, tr is not None and tr < alpha)
    return {"ca19_9": float(hits[:, 0].mean()), "treatment": float(hits[:, 1].mean()), "both": float(hits.all(axis=1).mean()),
            "n_sim": n_sim, "alpha": alpha, "patients": n, "redraw_assignment": redraw_assignment}


def generate(out: str | Path, sources: dict[str, np.ndarray], seed: int = 0, patients: int | None = None,
             settings: Settings = SETTINGS, progress: Progress | None = None) -> dict:
    """Write a benchmark cohort into ``out``: ``slides/<id>.tif``, ``clinical.csv``,
    ``omics.npz``, ``ground_truth.json`` (everything derives from ``seed``: the same seed gives
    byte-identical files; :func:`file_digest`).

    Args:
        sources: ``{annotation source key: uint8[h, w, 3]}`` (:func:`pathviz.cohort.tissue.read_source`).
        seed: the cohort seed (0 = development; other seeds are evaluation cohorts).
        patients: cohort size (default ``settings.patients``).

    Returns:
        The ground truth (also in ``ground_truth.json``).

    Raises:
        PathVizError: a source or the annotation is missing, or a planted gene set is not measured.
    """
    from pathviz.slide.writer import write_pyramidal_tiff

    report = progress or (lambda f, m: None)
    out = Path(out)
    (out / "slides").mkdir(parents=True, exist_ok=True)
    annotation = read_annotation()
    pools = tile_pools(sources, annotation)
    report(0.0, "colour-matching the source tiles")
    matched = matched_tiles(pools, lambda f, m: report(0.05 * f, m), settings)
    sim = simulate_cohort(seed, patients, settings)
    cov, model, surv = sim["covariates"], sim["model"], sim["outcomes"]
    truth = {"label": LABEL, "generator_version": GENERATOR_VERSION, "seed": seed, "patients_n": sim["n"],
             "settings": asdict(settings), "mpp": MPP, "tile_px": TILE, "grid": GRID, "patch_px": PATCH,
             "tile_codes": {"0": "background", "1": OTHER, "2": PLANTED},
             "annotation_sha256": annotation["properties"]["sha256_of_features"],
             "expression_sources": sim["expression_provenance"], "planted_pathway": settings.planted_pathway,
             "planted_pathway_genes": sim["planted_genes"], "program_pathway": settings.program_pathway,
             "program_genes": sim["program_genes"],
             "tissue_coupled_genes": {"epithelial_up": list(settings.epithelial_genes),
                                      "stromal_down": list(settings.stromal_genes)},
             "control_genes": list(settings.control_genes), "patients": {}}
    program_high = cov["program"] > np.median(cov["program"])
    for i, pid in enumerate(sim["ids"]):
        rng = np.random.default_rng(sim["render_seeds"][i])
        stain = centre_stain(rng, str(sim["centres"][i]), settings)
        img, used = render(sim["layouts"][i], str(sim["split"][i]), pools, matched, rng, settings, stain)
        write_pyramidal_tiff(out / "slides" / f"{pid}.tif", img, MPP, tile=256, min_size=256,
                             compression=settings.compression, quality=settings.jpeg_quality, jpeg_rgb=settings.jpeg_rgb)
        truth["patients"][pid] = {
            "split": str(sim["split"][i]), "centre": str(sim["centres"][i]),
            "tile_classes": "".join(map(str, sim["layouts"][i].ravel())),
            "dense_fraction": float(cov["dense_fraction"][i]), "dense_at_edge": float(cov["edge"][i]),
            "program_score": float(cov["program"][i]), "program_high": bool(program_high[i]),
            "pathway_score": float(cov["pathway"][i]), "lp": float(model["lp"][i]), "lp_main": float(model["lp_main"][i]),
            "true_group": "high" if model["true_high"][i] else "low", "stain_factors": list(stain),
            "expression_source": sim["expression_rows"][i], "expression_use": int(sim["expression_uses"][i]),
            "source_tiles": sorted(set(used))}
        if i % 10 == 0 or i == sim["n"] - 1:
            report(0.05 + 0.95 * (i + 1) / sim["n"], f"slide {i + 1}/{sim['n']}")
    clinical = pd.DataFrame({
        "patient_id": sim["ids"], "time": np.round(surv["time"], 2), "event": surv["event"],
        "os_time": np.round(surv["os_time"], 2), "os_event": surv["os_event"], "age": cov["age"], "ca19_9": cov["ca19_9"],
        "treatment": cov["treated"].astype(int), "centre": sim["centres"], "slide": [f"slides/{p}.tif" for p in sim["ids"]],
        "split": sim["split"]})
    clinical.to_csv(out / "clinical.csv", index=False)
    np.savez_compressed(out / "omics.npz", values=sim["expression"].astype(np.float32),
                        genes=np.array(sim["genes"], dtype=str), patients=np.array(sim["ids"], dtype=str))
    (out / "ground_truth.json").write_text(json.dumps(truth, indent=0, sort_keys=True))
    return truth


def load_generated_cohort(folder: str | Path, name: str, description: str, id_columns: list[str], fix: str) -> Cohort:
    """A cohort written by a PathViz generator (``clinical.csv`` + ``omics.npz``; the demo v1 and
    the benchmark v2 and v3 share the layout): RFS primary, OS second, CA19-9 as marker,
    ``semi_synthetic=True``; ``id_columns`` are identifiers, never covariates.

    Raises:
        PathVizError: no cohort in ``folder`` (``fix`` says how to build one).
    """
    folder = Path(folder)
    if not (folder / "clinical.csv").exists():
        raise PathVizError(f"No generated cohort at {folder}.", fix, folder)
    clinical = pd.read_csv(folder / "clinical.csv")
    with np.load(folder / "omics.npz", allow_pickle=False) as z:
        omics = pd.DataFrame(z["values"], index=z["patients"], columns=z["genes"])
    return Cohort(name=name, clinical=clinical, omics=omics, markers=["ca19_9"], treatment="treatment", centre="centre",
                  description=description, endpoint="recurrence-free survival",
                  time_unit_note="months (simulated)", semi_synthetic=True,
                  endpoints=[Endpoint("rfs", "recurrence-free survival", "time", "event"),
                             Endpoint("os", "overall survival", "os_time", "os_event")],
                  id_columns=id_columns)


def load_benchmark_cohort(folder: str | Path, name: str = "benchmark") -> Cohort:
    """A generated benchmark cohort (:func:`load_generated_cohort`; ``slide`` and ``split`` are
    identifiers).

    Raises:
        PathVizError: no cohort in ``folder``.
    """
    return load_generated_cohort(folder, name, f"PathViz {LABEL}", ["slide", "split"],
                                 "build it with bench/benchmark_cohort.py --cohort-seed N.")


def file_digest(folder: str | Path) -> dict[str, str]:
    """SHA-256 of every file of a generated cohort (relative path -> hex), for determinism checks."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}
