"""PAGE-Net end to end on a cohort with slides (the demo / benchmark cohorts): patches -> stain
normalisation -> pre-trained CNN -> feature store -> two-stage pooling -> integration with Cox-PASNet
genome layers and age -> prognostic index; comparators (Cox-PASNet on genes + age, image-only
elastic-net Cox on the pooled features); attributions (patch contributions, map importance, pathway
and gene rankings); survival-discriminative layers written for the viewer.

Settings (frozen in code; issue 13: chosen on the benchmark cohort v2 of cohort seed 0 only, before
any evaluation cohort was measured, and recorded here with the reason):

* Split: a cohort with a generator ``split`` column (benchmark v2 and later, whose test slides come from a
  tile pool no training slide uses) keeps its test patients; the other patients are split 75/25
  into train / validation (stratified by event, seeded by the split seed). Other cohorts: 60/20/20
  stratified by event.
* Resolution: the CNN reads each grid patch box-averaged to ``CNN_MPP`` = 2 um/px (a 256 px patch
  at 0.5 um/px becomes 64 px; nuclei stay 3-5 px wide), the resolution demo v1 used.
* Stain: each slide is Macenko-normalised (:mod:`pathviz.slide.stain`; stains estimated at full
  resolution, applied to the averaged patches: :func:`cnn_patches`) before the CNN (real cohorts
  differ in stain by centre).
* CNN pre-training: ``PRETRAIN_PATCHES_PER_PATIENT`` random patches of each *uncensored training*
  patient, target the standardised log survival time (MSE; seed 000, section 3), validated on
  uncensored validation patients.
* Pooling: K1 = half of each patch's map values; K2 = ``K2_FRACTION`` = half of each slide's
  patches (seed 000 pools the top 10 % of 1000 patches; a planted tissue covering 5-70 % of the
  tissue needs a K2 that keeps its amount: on seed 0's training patients the best pooled map
  correlated 0.34 / 0.47 / 0.54 / 0.57 with the dense fraction at K2 = 10 / 25 / 50 / 100 %).

Measured on seed 0 (bench/planted_signal.py --cohort-seed 0): the pre-trained CNN's best maps
separate planted from other patches on *training-pool* slides (patch AUC 0.76-0.80) but not on
validation- or test-pool slides (0.38-0.66): with 80 training source tiles, the survival-supervised
CNN learns those tiles rather than the morphology, and the disjoint pools expose it. Left as the
seed specifies; the figures are reported, not tuned away.
* Integration: 5 bagged PAGE-Nets on train + validation patients (inner 80/20 splits), Cox layer
  started at 0 so training starts from the clinical (age) Cox model.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from pathviz.cohort import load_cohort
from pathviz.errors import PathVizError
from pathviz.explain.pagenet import pagenet_gene_ranking, pagenet_pathway_ranking, patch_contributions
from pathviz.genomics import ExpressionScaler, default_library, pathway_mask
from pathviz.layers.score import ScoreLayer
from pathviz.nn.pagenet import L2_GRID, LR_GRID, fit_pagenet_ensemble, patch_scores, pretrain_patch_cnn, two_stage_pool
from pathviz.store.npzio import load_npz, save_npz
from pathviz.risk import CoxnetRiskModel
from pathviz.slide.stain import MacenkoNormaliser
from pathviz.survival import harrell_c
from pathviz.survival.chance import held_out_c_index
from pathviz.store.features import FeatureStore
from pathviz.store.workspace import Workspace, model_layer_name
from pathviz.jobs.coxpasnet import clinical_cox_risk

Progress = Callable[[float, str], None]
#: Microns per pixel of the CNN's input (each grid patch is box-averaged to this resolution).
CNN_MPP = 2.0
#: Stage-1 pooling keeps this share of each patch's map values (v1: 8 of 4 x 4).
K1_FRACTION = 0.5
#: Stage-2 pooling keeps this share of each slide's patches (at least one).
K2_FRACTION = 0.5
PRETRAIN_PATCHES_PER_PATIENT = 16
GRID_LR, GRID_L2 = LR_GRID, L2_GRID
MEMBERS = 5  # bagged integration networks (as Cox-PASNet), each with its own inner validation split
TOP_MAPS = 5
#: Clinical covariates of the integration network's clinical layer (seed 000: age only).
PAGENET_CLINICAL = ["age"]


def train_registered_pagenet(workspace: Workspace, cohort_name: str = "demo", seed: int = 0, epochs_cnn: int = 6,
                            device: str | None = None, progress: Progress | None = None):
    """Train PAGE-Net (:func:`train_pagenet_model`) into a new immutable registry version
    ``pagenet/<cohort>@vNNNN`` with its manifest (cohort, data digest, seed, params, held-out
    metrics, model card). Its viewer layers are written under the model's feature version
    (``metrics["layer_tag"]``), so other versions' layers stay as they were.

    Returns:
        The new version's :class:`~pathviz.store.registry.Manifest`.

    Raises:
        PathVizError: as :func:`train_pagenet_model` (nothing is registered then).
    """
    from pathviz.cohort import cohort_digest
    from pathviz.store.registry import ModelRegistry

    cohort = load_cohort(cohort_name)

    def write(folder: Path) -> dict:
        return train_pagenet_model(workspace, folder, cohort_name, seed=seed, epochs_cnn=epochs_cnn, device=device,
                                   progress=progress)

    return ModelRegistry(workspace.models_dir).create_version(
        "pagenet", cohort_name, write, cohort=cohort_name, data_digest=cohort_digest(cohort), split_seed=seed,
        params={"seed": seed, "epochs_cnn": epochs_cnn, "k1_fraction": K1_FRACTION, "k2_fraction": K2_FRACTION, "members": MEMBERS,
                "cnn_mpp": CNN_MPP, "pretrain_patches_per_patient": PRETRAIN_PATCHES_PER_PATIENT,
                "grid_lr": list(GRID_LR), "grid_l2": list(GRID_L2)},
        card={"intended_use": "research: slide + expression + age prognostic index and survival-discriminative slide maps; "
                              "not for clinical use",
              "data": f"{cohort_name}: {cohort.description}",
              "metrics": "held-out (test split) C-index with CI in metrics.held_out; comparators in metrics.test_c_index",
              "limits": "one split of one cohort; the maps show where the model looks, not why; "
                        "trust a ranking only where the held-out C-index beats chance and the clinical baseline"})


def k2_for(n_patches: int) -> int:
    """Stage-2 K2 of a slide with ``n_patches`` patches: ``K2_FRACTION`` of them, at least 1."""
    return max(1, int(round(K2_FRACTION * n_patches)))


def cnn_input_px(patch_size: int, mpp: float) -> int:
    """Side in px of the CNN input for grid patches of ``patch_size`` px at ``mpp`` um/px: the patch
    box-averaged to :data:`CNN_MPP` (e.g. 256 px at 0.5 um/px -> 64 px).

    Raises:
        PathVizError: the patch cannot be box-averaged to that resolution (its side is not a
            multiple of the input side, or the grid is coarser than ``CNN_MPP``)."""
    px = int(round(patch_size * mpp / CNN_MPP))
    if px < 8 or patch_size % px:
        raise PathVizError(f"PAGE-Net reads patches at {CNN_MPP} um/px; a {patch_size} px patch at {mpp} um/px "
                           f"cannot be box-averaged to that ({patch_size * mpp / CNN_MPP:.1f} px).",
                           "analyse the slides on a grid whose patch side is a multiple of "
                           f"{CNN_MPP:g}/mpp, e.g. 256 px at 0.5 um/px.")
    return px


def patient_split(event: np.ndarray, seed: int, fixed: np.ndarray | None = None) -> np.ndarray:
    """``object[n]`` of ``train``/``validation``/``test`` for the split seed ``seed``.

    With ``fixed`` (a cohort's own split column, e.g. the benchmark generator's, whose test slides
    come from a tile pool no other slide uses), its test patients stay the test patients and the
    others are split 75/25 into train / validation, stratified by event. Without it,
    :func:`three_way_split` (60/20/20)."""
    if fixed is None:
        return three_way_split(event, seed)
    fixed = np.asarray(fixed, dtype=object)
    out = np.where(fixed == "test", "test", "train").astype(object)
    rng = np.random.default_rng(seed)
    for status in (0, 1):
        idx = rng.permutation(np.flatnonzero((np.asarray(event) == status) & (fixed != "test")))
        out[idx[: int(round(0.25 * len(idx)))]] = "validation"
    return out


def three_way_split(event: np.ndarray, seed: int) -> np.ndarray:
    """``object[n]`` of ``train``/``validation``/``test`` (60/20/20), stratified by event."""
    rng = np.random.default_rng(seed)
    out = np.empty(len(event), dtype=object)
    for status in (0, 1):
        idx = rng.permutation(np.flatnonzero(np.asarray(event) == status))
        n_te, n_va = int(round(0.2 * len(idx))), int(round(0.2 * len(idx)))
        out[idx[:n_te]] = "test"
        out[idx[n_te : n_te + n_va]] = "validation"
        out[idx[n_te + n_va :]] = "train"
    return out


def pretraining_patients(pids: list[str], split: np.ndarray, event: np.ndarray, part: str) -> list[str]:
    """Patients whose patches pre-train the CNN: uncensored (event = 1) patients of one split
    part. Censored patients have no survival time to regress on (seed 000, section 3)."""
    return [p for p, s, ev in zip(pids, split, event) if s == part and int(ev) == 1]


def shrink(patches: np.ndarray, size: int) -> np.ndarray:
    """Box-resize ``uint8[n, P, P, 3]`` patches to ``size`` px (P divisible by size)."""
    n, P = patches.shape[0], patches.shape[1]
    if P == size:
        return patches
    f = P // size
    return patches.reshape(n, size, f, size, f, 3).mean(axis=(2, 4)).round().astype(np.uint8)


def slide_ids_for(workspace: Workspace, cohort_dir: Path, slides: pd.Series) -> dict[str, str]:
    by_path = {r.path: r.slide_id for r in workspace.slides()}
    out = {}
    for pid, rel in slides.items():
        path = str((cohort_dir / rel).resolve())
        if path not in by_path:
            raise PathVizError(f"Slide of {pid} ({path}) is not registered.", "rebuild the demo with `pathviz demo`.")
        out[pid] = by_path[path]
    return out


def read_patches(workspace: Workspace, slide_id: str) -> tuple[np.ndarray, object]:
    """All grid patches of a slide as ``uint8[n, P, P, 3]`` (one region read for small slides)."""
    grid = workspace.grid(slide_id)
    with workspace.open(slide_id) as slide:
        w, h = slide.dimensions
        if w * h <= 4096 * 4096 and abs(grid.tile_size_x - grid.patch_size) < 1e-6:
            img = np.asarray(slide.read_region((0, 0), 0, (w, h)))
            P = grid.patch_size
            xy = grid.coords
            patches = np.stack([img[y : y + P, x : x + P] for x, y in xy])
        else:
            patches = np.stack([np.asarray(slide.read_patch(int(x), int(y), grid.tile_size_x, grid.patch_size))
                                for x, y in grid.coords])
    return patches, grid


@dataclass
class _PageNetRun:
    """State of one :func:`train_pagenet_model` run, filled stage by stage (top to bottom).

    Per-patient arrays are in the order of ``pids`` (the cohort's clinical index); ``n`` = patients.
    """

    # -- arguments (set by train_pagenet_model) -------------------------------------------------------
    workspace: Workspace
    cohort_name: str
    seed: int
    epochs_cnn: int
    device: str
    report: Progress
    t_start: float
    patch_cache: dict | None = None  # (slide id, grid key) -> cnn_patches(...), shared across runs (bench)
    # -- _stage_inputs ----------------------------------------------------------------------------------
    cohort: object = None  # pathviz.cohort.Cohort, restricted to the patients with expression
    coverage: dict = None  # patients without expression left out (pathviz.risk.omics_coverage record)
    sids: dict = None  # patient id -> registered slide id
    pids: list = None  # patient ids, n
    t: np.ndarray = None  # survival time, float[n] (cohort units)
    e: np.ndarray = None  # event indicator, int[n] (1 = event, 0 = censored)
    split: np.ndarray = None  # object[n]: "train" / "validation" / "test"
    # -- _stage_patches ---------------------------------------------------------------------------------
    patches: dict = None  # pid -> uint8[n_patches, cnn_px, cnn_px, 3], stain-normalised
    cnn_px: int = None  # side of the CNN input (cnn_input_px)
    k1: int = None  # stage-1 K1 (K1_FRACTION of a patch's map values), set with the CNN
    grids: dict = None  # pid -> the slide's patch grid
    sample: dict = None  # pid -> int[<= PRETRAIN_PATCHES_PER_PATIENT] pre-training patch indices
    # -- _stage_pretrain_cnn ----------------------------------------------------------------------------
    pre_tr: list = None  # uncensored training patients whose patches pre-train the CNN
    n_pretrain_patches: int = 0
    cnn: object = None  # the pre-trained patch CNN (n_maps feature maps)
    cnn_info: dict = None  # pretrain_patch_cnn's info (val_mse, history, ...)
    version: str = None  # feature version: sha1 of the CNN's settings and weights, 10 hex
    store: FeatureStore = None  # the FeatureStore of that version
    # -- _stage_features --------------------------------------------------------------------------------
    stored: dict = None  # pid -> the slide's feature-store arrays (scores, maps float[n_patches, n_maps, h, w])
    slide_feat: np.ndarray = None  # two-stage pooled slide features, float32[n, n_maps]
    tr: np.ndarray = None  # bool[n] masks of the split parts; trva = train | validation
    va: np.ndarray = None
    te: np.ndarray = None
    trva: np.ndarray = None
    s_mean: np.ndarray = None  # float32[n_maps], training mean / sd of slide_feat
    s_sd: np.ndarray = None
    S: np.ndarray = None  # standardised slide features, float32[n, n_maps]
    # -- _stage_genome ----------------------------------------------------------------------------------
    lib: object = None  # KEGG gene-set library (size-filtered)
    mapping: object = None  # pathway mask of the cohort's genes
    genes: list = None  # genes kept by the scaler, n_genes
    mask: np.ndarray = None  # gene x pathway mask, [n_genes, n_pathways]
    G: np.ndarray = None  # scaled expression, float32[n, n_genes]
    C: np.ndarray = None  # standardised clinical covariates (age), float32[n, 1]
    init_clin: object = None  # clinical Cox coefficients that start the Cox layer
    # -- _stage_integrate -------------------------------------------------------------------------------
    net: object = None  # bagged PAGE-Net ensemble (MEMBERS networks)
    best_rows: pd.DataFrame = None  # best grid row (lr, l2, val_c_index) per member
    pi: np.ndarray = None  # prognostic index, float32[n] (higher = higher risk)
    c_test: float = None  # PAGE-Net test C-index
    # -- _stage_comparators -----------------------------------------------------------------------------
    c_cpn: float = None  # test C-index of Cox-PASNet (genes + age)
    cpn_top: list = None  # Cox-PASNet's pathway ranking
    c_en: float = None  # test C-index of the image-only elastic-net Cox
    c_clin: float = None  # test C-index of the clinical Cox (age)
    # -- _stage_held_out --------------------------------------------------------------------------------
    held: object = None  # HeldOutCIndex: PAGE-Net test C-index with bootstrap CI
    evaluation: dict = None  # time-dependent AUC and calibration on the test patients
    # -- _stage_attributions ----------------------------------------------------------------------------
    contributions: dict = None  # pid -> float[n_patches] patch contributions to the PI
    map_importance: np.ndarray = None  # float[n_maps], mean |contribution| per map
    top_maps: np.ndarray = None  # int[TOP_MAPS], most important maps first
    map_sign: np.ndarray = None  # float[n_maps], +1 where a map raises risk on average
    ranking: object = None  # pathway ranking (``.table``)
    gene_table: pd.DataFrame = None  # gene ranking
    # -- _stage_metrics ---------------------------------------------------------------------------------
    layer_tag: str = None  # feature version + random part, names this run's viewer layers
    metrics: dict = None  # the returned metrics (also metrics.json)


def _stage_inputs(run: _PageNetRun) -> None:
    """Load the cohort and check it (slides + expression, the clinical covariates); map each patient to
    its registered slide. Patients without an expression profile are left out BEFORE the split
    (PAGE-Net needs both modalities; ``coverage`` counts them, :func:`pathviz.risk.restrict_to_omics`).
    Adds ``cohort``, ``coverage``, ``sids``, ``pids``, ``t``, ``e`` and the seeded 60/20/20 ``split``
    (stratified by event).

    Raises:
        PathVizError: the cohort lacks slides or expression (or no patient has a profile), a
            covariate, or a slide is not registered.
    """
    cohort = load_cohort(run.cohort_name)
    missing = cohort.missing_modalities()
    if missing:
        from pathviz.cohort import available_cohorts
        from pathviz.risk.stratify import cohort_has_slides_and_omics

        ok = [c for c in available_cohorts() if cohort_has_slides_and_omics(c)]
        raise PathVizError(f"Cohort {run.cohort_name!r} has no {' and no '.join(missing)}: PAGE-Net needs a slide and an "
                           "expression profile per patient.",
                           f"use a cohort with both ({', '.join(ok) or 'none here yet: build the demo cohort with `pathviz demo`'}).")
    from pathviz.risk import restrict_to_omics

    cohort, run.coverage = restrict_to_omics(cohort, "exclude", "PAGE-Net")
    cohort.check_features(PAGENET_CLINICAL, "PAGE-Net")
    cohort_dir = run.workspace.home / "cohorts" / run.cohort_name
    run.cohort = cohort
    run.sids = slide_ids_for(run.workspace, cohort_dir, cohort.clinical["slide"])
    run.pids = list(cohort.clinical.index)
    run.t, run.e = cohort.time, cohort.event
    fixed = cohort.clinical["split"].to_numpy() if "split" in cohort.id_columns else None
    run.split = patient_split(run.e, run.seed, fixed)


def cnn_patches(workspace: Workspace, slide_id: str, size=None, stain_normalise: bool = True) -> tuple[np.ndarray, object]:
    """A slide's grid patches as the CNN reads them: ``uint8[n_patches, px, px, 3]`` box-averaged to
    :data:`CNN_MPP` (:func:`cnn_input_px`), then Macenko-normalised with the stains estimated on the
    slide's full-resolution pixels (averaging the light first is what a scan at 2 um/px records,
    and normalising 16x fewer pixels is 16x cheaper); and the slide's grid.

    Args:
        size: ``size(grid) -> px`` for another read resolution (the patch encoders':
            :func:`pathviz.jobs.features.read_px`); default :func:`cnn_input_px` at ``CNN_MPP``.
        stain_normalise: False keeps the averaged patches' own colours.

    Raises:
        PathVizError: the grid's patches cannot be box-averaged to the read resolution."""
    raw, grid = read_patches(workspace, slide_id)
    small = shrink(raw, size(grid) if size else cnn_input_px(grid.patch_size, grid.mpp))
    return (MacenkoNormaliser().fit(raw).transform(small) if stain_normalise else small), grid


def _stage_patches(run: _PageNetRun) -> None:
    """Read each patient's slide as the CNN sees it (:func:`cnn_patches`; reused from ``patch_cache``
    when given, keyed by slide and grid). Adds ``patches`` (pid -> uint8[n_patches, px, px, 3]),
    ``cnn_px``, ``grids`` and ``sample``
    (pid -> up to ``PRETRAIN_PATCHES_PER_PATIENT`` patch indices, drawn without replacement from
    ``default_rng(seed)``, patients in ``pids`` order).
    """
    run.report(0.02, "reading patches")
    run.patches, run.grids = {}, {}
    cache = run.patch_cache if run.patch_cache is not None else {}
    for i, pid in enumerate(run.pids):
        sid = run.sids[pid]
        key = (sid, run.workspace.default_grid_key(sid))
        if key not in cache:
            cache[key] = cnn_patches(run.workspace, sid)
        run.patches[pid], run.grids[pid] = cache[key]
        px = run.patches[pid].shape[1]
        if run.cnn_px not in (None, px):
            raise PathVizError(f"The slides of {run.cohort_name!r} are analysed on different grids ({run.cnn_px} and {px} "
                               "px CNN inputs).", "analyse every slide of the cohort with the same mpp and patch size.")
        run.cnn_px = px
        if i % 50 == 49:
            run.report(0.02 + 0.03 * i / len(run.pids), f"reading patches: slide {i + 1}/{len(run.pids)}")
    rng = np.random.default_rng(run.seed)
    run.sample = {p: rng.choice(len(run.patches[p]), min(PRETRAIN_PATCHES_PER_PATIENT, len(run.patches[p])), replace=False)
                  for p in run.pids}


def _stage_pretrain_cnn(run: _PageNetRun) -> None:
    """Pre-train the patch CNN on the sampled patches of *uncensored training* patients (validated on
    uncensored validation patients); target: log survival time standardised on those training
    patients (MSE). Adds ``pre_tr``, ``n_pretrain_patches``, ``cnn``, ``cnn_info``, the feature
    ``version`` (hash of the settings and the trained weights) and its ``store``.
    """
    pids, split, e = run.pids, run.split, run.e
    log_t = np.log(np.maximum(np.asarray(run.t, float), 1e-3))
    fit_rows = (split == "train") & (e == 1)
    mu_t, sd_t = float(log_t[fit_rows].mean()), float(log_t[fit_rows].std() + 1e-6)
    target = dict(zip(pids, (log_t - mu_t) / sd_t))
    pre_tr = pretraining_patients(pids, split, e, "train")
    pre_va = pretraining_patients(pids, split, e, "validation")
    patches, sample = run.patches, run.sample
    Xtr = np.concatenate([patches[p][sample[p]] for p in pre_tr])
    ytr = np.concatenate([np.full(len(sample[p]), target[p]) for p in pre_tr])
    Xva = np.concatenate([patches[p][sample[p]] for p in pre_va])
    yva = np.concatenate([np.full(len(sample[p]), target[p]) for p in pre_va])
    run.report(0.05, f"pre-training the patch CNN on {len(Xtr)} patches of {len(pre_tr)} uncensored training patients")
    cnn, cnn_info = pretrain_patch_cnn(Xtr, ytr.astype(np.float32), Xva, yva.astype(np.float32), epochs=run.epochs_cnn,
                                       seed=run.seed, device=run.device)
    version = hashlib.sha1(json.dumps({"seed": run.seed, "cohort": run.cohort_name, "pids": pre_tr, "epochs": run.epochs_cnn,
                                       "k1": K1_FRACTION, "input": run.cnn_px, "stain": "macenko",
                                       "state": float(sum(p.sum().item() for p in cnn.parameters()))}).encode()).hexdigest()[:10]
    run.pre_tr, run.n_pretrain_patches = pre_tr, int(len(Xtr))
    run.cnn, run.cnn_info, run.version = cnn, cnn_info, version
    side = run.cnn_px // 8  # the CNN's last maps are 1/8 of its input
    run.k1 = max(1, int(round(K1_FRACTION * side * side)))
    run.store = FeatureStore(run.workspace, version)


def _stage_features(run: _PageNetRun) -> None:
    """Extract each slide's feature maps with the CNN into the FeatureStore (skipped where this
    version already has them), then two-stage pool them (top K1 of each patch's map values, top K2 (:func:`k2_for`)
    patches). Adds ``stored`` (pid -> the slide's stored arrays), ``slide_feat`` float32[n, n_maps],
    the split masks ``tr``/``va``/``te``/``trva`` and ``S`` = ``slide_feat`` standardised with the
    training mean ``s_mean`` and sd ``s_sd``.
    """
    run.report(0.45, "extracting survival-discriminative feature maps")
    cnn, store, device = run.cnn, run.store, run.device
    slide_feat = np.zeros((len(run.pids), cnn.n_maps), np.float32)
    stored = {}  # each slide's feature-store arrays, read once
    for i, pid in enumerate(run.pids):
        sid = run.sids[pid]
        if not store.has(sid):
            with torch.no_grad():
                x = torch.as_tensor(run.patches[pid], device=device).permute(0, 3, 1, 2).float() / 255.0
                maps = cnn.feature_maps(x)
                scores = patch_scores(maps, run.k1)
            store.save(sid, run.grids[pid].coords, scores.cpu().numpy(), maps.cpu().numpy())
        stored[pid] = store.load(sid)
        maps = torch.as_tensor(stored[pid]["maps"].astype(np.float32))
        slide_feat[i] = two_stage_pool(maps, run.k1, k2_for(len(maps))).numpy()
    split = run.split
    run.tr, run.va, run.te = (split == "train"), (split == "validation"), (split == "test")
    run.trva = run.tr | run.va
    run.s_mean, run.s_sd = slide_feat[run.tr].mean(0), slide_feat[run.tr].std(0) + 1e-6
    run.S = (slide_feat - run.s_mean) / run.s_sd
    run.stored, run.slide_feat = stored, slide_feat


def _stage_genome(run: _PageNetRun) -> None:
    """Genome and clinical inputs of the integration network: KEGG pathway mask over the cohort's
    genes, expression scaled on the training patients, age standardised on them, and the clinical
    Cox fit (training patients) that starts the Cox layer. Adds ``lib``, ``mapping``, ``genes``,
    ``mask`` [n_genes, n_pathways], ``G`` float32[n, n_genes], ``C`` float32[n, 1], ``init_clin``.
    """
    from pathviz.risk.coxpasnet import CoxPASNetModel

    cohort, pids, tr = run.cohort, run.pids, run.tr
    lib = default_library("kegg").filter_size()
    mapping = pathway_mask(lib, list(cohort.omics.columns))
    scaler = ExpressionScaler().fit(cohort.omics.loc[np.array(pids)[tr], mapping.genes])
    genes = [g for g in mapping.genes if g in set(scaler.genes_)]
    run.mask = mapping.mask[[mapping.genes.index(g) for g in genes]]
    run.G = scaler.transform(cohort.omics.loc[pids, mapping.genes])[genes].to_numpy(np.float32)
    age = cohort.clinical[PAGENET_CLINICAL[0]].astype(float).to_numpy()
    run.C = ((age - age[tr].mean()) / age[tr].std()).reshape(-1, 1).astype(np.float32)
    run.lib, run.mapping, run.genes = lib, mapping, genes
    run.init_clin = CoxPASNetModel._clinical_cox(run.C[tr], run.t[tr], run.e[tr])


def _stage_integrate(run: _PageNetRun) -> None:
    """Fit the ``MEMBERS`` bagged integration networks (slide features + pathways + age -> Cox) on
    train + validation patients, each over the learning-rate x L2 grid with its own inner split.
    Adds ``net``, ``best_rows`` (best grid row per member), the prognostic index ``pi`` float32[n]
    of every patient and the PAGE-Net test C-index ``c_test``.
    """
    run.report(0.6, "training the integrative network (grid over learning rate and L2)")
    trva, S, G, C, t, e, device = run.trva, run.S, run.G, run.C, run.t, run.e, run.device
    net, grid_rows = fit_pagenet_ensemble(run.mask, S[trva], G[trva], C[trva], t[trva], e[trva], GRID_LR, GRID_L2,
                                          n_members=MEMBERS, seed=run.seed, device=device, init_clinical=run.init_clin)
    run.best_rows = pd.DataFrame(grid_rows).sort_values("val_c_index", ascending=False).groupby("member").head(1)
    T = lambda a: torch.as_tensor(np.asarray(a, np.float32), device=device)  # noqa: E731
    with torch.no_grad():
        run.pi = net(T(S), T(G), T(C)).cpu().numpy()
    run.net = net
    run.c_test = harrell_c(t[run.te], e[run.te], run.pi[run.te]).c_index


def _stage_comparators(run: _PageNetRun) -> None:
    """Comparators fitted on train + validation, scored on the test patients (Harrell's C): Cox-PASNet
    on genes + age (``c_cpn``, its pathway ranking ``cpn_top``), image-only elastic-net Cox on the
    pooled slide features (``c_en``) and the no-learning baseline, clinical Cox on age (``c_clin``).
    """
    from pathviz.explain import pathway_ranking
    from pathviz.risk.coxpasnet import CoxPASNetModel

    run.report(0.8, "comparators: Cox-PASNet (genes + age) and image-only elastic-net Cox")
    cohort, trva, te, t, e = run.cohort, run.trva, run.te, run.t, run.e
    cpn = CoxPASNetModel(run.lib, PAGENET_CLINICAL, device=run.device, config=None, outcome_columns=cohort.outcome_columns,
                         allowed_covariates=cohort.allowed_covariates)
    cpn.config.seed = run.seed
    cpn.fit(cohort.clinical[trva], cohort.omics, t[trva], e[trva])
    run.c_cpn = harrell_c(t[te], e[te], cpn.predict_risk(cohort.clinical[te], cohort.omics)).c_index
    run.cpn_top = pathway_ranking(cpn, cohort.clinical[trva], cohort.omics).table["pathway"].tolist()
    feat_df = pd.DataFrame(run.slide_feat, index=run.pids, columns=[f"map{j}" for j in range(run.cnn.n_maps)])
    en = CoxnetRiskModel([], use_genes=True, max_genes=run.cnn.n_maps, seed=run.seed).fit(
        cohort.clinical[trva], feat_df, t[trva], e[trva])
    run.c_en = harrell_c(t[te], e[te], en.predict_risk(cohort.clinical[te], feat_df)).c_index
    # the no-learning baseline: clinical Cox (age) on the same train + validation patients
    run.c_clin = harrell_c(t[te], e[te], clinical_cox_risk(cohort.clinical, PAGENET_CLINICAL, trva, t, e)[te]).c_index


def _stage_held_out(run: _PageNetRun) -> None:
    """Held-out evaluation of ``pi`` on the test patients only: ``held`` (C-index with its percentile
    bootstrap CI; own fixed seed) and ``evaluation`` (time-dependent AUC and calibration by risk group;
    predicted survival from the Breslow baseline of ``pi`` on train + validation; each part guarded,
    a failure is ``{"note": why}``).
    """
    from pathviz.risk.breslow import fit_breslow
    from pathviz.survival.evaluation import held_out_evaluation

    trva, te, t, e = run.trva, run.te, run.t, run.e
    run.held = held_out_c_index([(t[te], e[te], run.pi[te])])
    pi_flat = np.asarray(run.pi, float).reshape(-1)
    run.evaluation = held_out_evaluation(
        t[trva], e[trva], t[te], e[te], pi_flat[te],
        lambda tc: fit_breslow(pi_flat[trva], t[trva], e[trva]).survival_function(pi_flat[te], [tc])[:, 0])


def _stage_attributions(run: _PageNetRun) -> None:
    """Attribute the prognostic index: per-patch contributions (Input x Gradient through the pooling and
    the network) per patient, map importance (mean |contribution| per map, ``top_maps`` the
    ``TOP_MAPS`` largest, ``map_sign`` the sign of each map's mean effect), and pathway and gene
    rankings on train + validation. Adds ``contributions``, ``map_importance``, ``top_maps``,
    ``map_sign``, ``ranking``, ``gene_table``.
    """
    run.report(0.85, "attributing the prognostic index to patches and maps")
    net, trva, S, G, C = run.net, run.trva, run.S, run.G, run.C
    run.contributions = {}
    map_attr = np.zeros((len(run.pids), run.cnn.n_maps))
    for i, pid in enumerate(run.pids):
        scores = run.stored[pid]["scores"]
        per_patch, per_map = patch_contributions(net, scores, run.s_mean, run.s_sd, G[i], C[i], k2_for(len(scores)))
        run.contributions[pid] = per_patch
        map_attr[i] = per_map.sum(axis=0)
    run.map_importance = np.abs(map_attr).mean(axis=0)
    run.top_maps = np.argsort(-run.map_importance)[:TOP_MAPS]
    run.map_sign = np.sign(map_attr.mean(axis=0))
    run.ranking = pagenet_pathway_ranking(net, S[trva], G[trva], C[trva], run.mask, list(run.mapping.pathways), run.genes,
                                          {gs.name: gs.description for gs in run.lib.sets})
    run.gene_table = pagenet_gene_ranking(net, S[trva], G[trva], C[trva], run.mask, run.genes)


def _stage_metrics(run: _PageNetRun) -> None:
    """Assemble ``metrics`` (split sizes, CNN info, ensemble members, test C-indices of PAGE-Net and the
    comparators, held-out CI, td-AUC and calibration, map importance, rankings) and the run's
    ``layer_tag``: viewer layers are named for this run (feature version + a random part), so a
    retrain, even one with the same CNN, never overwrites the layers another registered version shows.
    """
    run.layer_tag = f"{run.version[:6]}{uuid.uuid4().hex[:8]}"
    run.metrics = {
        "cohort": run.cohort_name, "seed": run.seed, "version": run.version, "device": run.device,
        "n": {k: int((run.split == k).sum()) for k in ("train", "validation", "test")},
        "cnn": {k: v for k, v in run.cnn_info.items() if k != "history"}, "pretrain_patients": len(run.pre_tr),
        "pretrain_patches": run.n_pretrain_patches, "k1": run.k1, "k2_fraction": K2_FRACTION, "cnn_px": run.cnn_px,
        "members": run.best_rows.to_dict("records"),
        "val_c_index": float(run.best_rows["val_c_index"].mean()),
        "test_c_index": {"pagenet": run.c_test, "coxpasnet": run.c_cpn, "image_cox_en": run.c_en, "clinical": run.c_clin},
        "held_out": run.held.to_dict(),
        "map_importance": run.map_importance.tolist(), "top_maps": run.top_maps.tolist(),
        "pathways": len(run.mapping.pathways),
        "pagenet_pathway_ranking": run.ranking.table["pathway"].tolist(), "coxpasnet_pathway_ranking": run.cpn_top,
        "layer_tag": run.layer_tag}
    from pathviz.risk import omics_coverage_text
    from pathviz.settings import torch_threads

    run.metrics.update(run.coverage or {}, omics_note=omics_coverage_text(run.coverage), threads=torch_threads())
    run.metrics.update(run.evaluation)


def _stage_layers(run: _PageNetRun) -> None:
    """Write each slide's two survival-discriminative viewer layers (:func:`write_survival_layers`),
    named with ``layer_tag``."""
    run.report(0.9, "writing survival-discriminative layers")
    for pid in run.pids:
        write_survival_layers(run.workspace, run.sids[pid], run.stored[pid], grid_key=run.grids[pid].key,
                              contributions=run.contributions[pid], top_maps=run.top_maps,
                              map_sign=run.map_sign[run.top_maps], version=run.version,
                              pi=float(run.pi[run.pids.index(pid)]), layer_tag=run.layer_tag)


def _stage_write(run: _PageNetRun, out: Path) -> None:
    """Write the artifacts to ``out``: ``cnn.pt``, ``pagenet.pt`` (state dicts), ``pathway_ranking.csv``,
    ``gene_ranking.csv``, ``prognostic_index.csv`` (patient_id, split, time, event, prognostic_index,
    slide_id), ``metrics.json`` (with ``seconds``, the wall time since the start, added to ``metrics``)
    and ``MODEL_CARD.md``."""
    m, held = run.metrics, run.held
    out.mkdir(parents=True, exist_ok=True)
    torch.save(run.cnn.state_dict(), out / "cnn.pt")
    torch.save(run.net.state_dict(), out / "pagenet.pt")
    run.ranking.table.to_csv(out / "pathway_ranking.csv", index=False)
    run.gene_table.to_csv(out / "gene_ranking.csv", index=False)
    table = pd.DataFrame({"patient_id": run.pids, "split": run.split, "time": run.t, "event": run.e,
                          "prognostic_index": run.pi, "slide_id": [run.sids[p] for p in run.pids]})
    table.to_csv(out / "prognostic_index.csv", index=False)
    m["seconds"] = time.perf_counter() - run.t_start
    (out / "metrics.json").write_text(json.dumps(m, indent=1))
    (out / "MODEL_CARD.md").write_text(
        f"# PAGE-Net ({run.cohort_name})\n\n- split seed {run.seed}: train/validation/test {m['n']}\n"
        f"- CNN pre-trained on {run.n_pretrain_patches} patches of {len(run.pre_tr)} uncensored training patients; "
        f"val MSE {run.cnn_info['val_mse']:.4f}\n"
        f"- CNN input {run.cnn_px} px ({CNN_MPP} um/px); K1={run.k1}, K2={K2_FRACTION:.0%} of each slide's patches; "
        f"{MEMBERS} bagged integration networks, mean inner validation C {m['val_c_index']:.3f}\n"
        f"- test C-index: PAGE-Net {held.headline()} ({held.method()}); Cox-PASNet {run.c_cpn:.3f}, "
        f"image-only Cox-EN {run.c_en:.3f}, clinical Cox (age) {run.c_clin:.3f}\n"
        + (f"- WARNING: {held.warning}\n" if held.warning else "")
        + f"- feature version {run.version}; device {run.device}\n")


def train_pagenet_model(workspace: Workspace, out: str | Path, cohort_name: str = "demo", seed: int = 0,
                        epochs_cnn: int = 6, device: str | None = None, progress: Progress | None = None,
                        write_layers: bool = True, patch_cache: dict | None = None) -> dict:
    """Run the whole PAGE-Net pipeline (module docstring) as its stages, in order; returns the metrics dict.

    Every random draw is seeded from ``seed`` (split, pre-training patch sample, CNN, ensemble,
    comparators), so a rerun is identical except for ``metrics["seconds"]`` and the random part of
    ``metrics["layer_tag"]``. ``patch_cache`` (a dict the caller keeps) lets several runs on one
    cohort read and normalise each slide once (:func:`cnn_patches`).

    Raises:
        PathVizError: the cohort lacks slides or expression or a covariate, or a slide is not registered.
    """
    from pathviz.settings import torch_device, torch_threads

    device = device or torch_device("auto")
    torch.set_num_threads(torch_threads())  # recorded as metrics["threads"]
    run = _PageNetRun(workspace=workspace, cohort_name=cohort_name, seed=seed, epochs_cnn=epochs_cnn, device=device,
                      report=progress or (lambda f, m: None), t_start=time.perf_counter(), patch_cache=patch_cache)
    _stage_inputs(run)  # cohort, checks, patients -> slides, split
    _stage_patches(run)  # 0.02: stain-normalised patches, pre-training sample
    _stage_pretrain_cnn(run)  # 0.05: patch CNN on uncensored training patients, feature version
    _stage_features(run)  # 0.45: feature store, two-stage pooling -> S
    _stage_genome(run)  # pathway mask, G, C
    _stage_integrate(run)  # 0.6: bagged integration network -> prognostic index
    _stage_comparators(run)  # 0.8: Cox-PASNet, image-only Cox-EN, clinical Cox
    _stage_held_out(run)  # C-index CI, td-AUC, calibration on the test patients
    _stage_attributions(run)  # 0.85: patch contributions, map importance, rankings
    _stage_metrics(run)  # metrics dict, layer tag
    if write_layers:
        _stage_layers(run)  # 0.9: viewer layers
    _stage_write(run, Path(out))  # artifacts
    run.report(1.0, "done")
    return run.metrics


def write_survival_layers(workspace: Workspace, slide_id: str, arrays: dict, grid_key: str, contributions: np.ndarray,
                          top_maps: np.ndarray, map_sign: np.ndarray, version: str, pi: float,
                          layer_tag: str | None = None) -> None:
    """Two viewer layers per slide, named for the model that wrote them
    (:func:`pathviz.store.workspace.model_layer_name`: ``survival_score-m<version>``), so a retrained
    model never overwrites another version's layers: ``survival_score`` (per patch: its contribution to the patient's
    prognostic index, Input x Gradient through PAGE-Net; :func:`pathviz.explain.pagenet.patch_contributions`)
    and ``survival_maps`` (sub-patch: the activations of the most important maps inside each patch,
    signed by the direction of each map's effect on risk and averaged).

    Args:
        arrays: the feature-store arrays of the slide (``maps`` float[n, N, h, w]).
        contributions: ``float[n_patches]``; top_maps: ``int[k]``; map_sign: ``float[k]`` (+1/-1).
        version: the feature version (the viewer reads the patch maps of this FeatureStore version).
        layer_tag: the run's tag in the layer names (default: ``version``).
    """
    maps = arrays["maps"].astype(np.float32)
    top = maps[:, top_maps] / (maps[:, top_maps].reshape(len(maps), len(top_maps), -1).max(axis=(0, 2))[None, :, None, None] + 1e-6)
    sub = np.tensordot(top, np.asarray(map_sign, np.float32), axes=([1], [0])) / len(top_maps)  # [n, h, w]
    meta = {"model_version": version, "prognostic_index": pi, "top_maps": [int(m) for m in top_maps]}
    workspace.save_layer(slide_id, ScoreLayer(
        name=model_layer_name("survival_score", layer_tag or version), title="PAGE-Net patch contribution to risk", grid_key=grid_key,
        scores=np.asarray(contributions, np.float32), units="PI contribution", meta=meta,
        description="Per patch: its contribution to the patient's PAGE-Net prognostic index (Input x Gradient "
                    "through the two-stage pooling and the integration network); higher = pushes risk up."))
    workspace.save_layer(slide_id, ScoreLayer(
        name=model_layer_name("survival_maps", layer_tag or version), title="PAGE-Net top survival-discriminative maps", grid_key=grid_key, scores=sub,
        units="signed activation", meta=meta,
        description=f"Inside each patch: mean activation of the {len(top_maps)} maps that move the prognostic index "
                    "most (each scaled to its maximum, signed + when the map raises risk), as the seed's Fig. 4."))
