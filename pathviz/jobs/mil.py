"""Attention MIL and RNA-to-patch cross-attention end to end on a cohort with slides (issue 14).

One run (:func:`train_mil_model`): patients with a slide (and, for ``crossattn``, an expression
profile) -> split (as PAGE-Net: :func:`pathviz.jobs.pagenet.patient_split`, a generator's test
patients kept) -> patch features of every slide from the feature store v2
(:func:`pathviz.jobs.features.extract_features`; extracted once per encoder version, resumable) ->
the bag model (:mod:`pathviz.nn.mil`) trained with the Cox partial likelihood over the whole
training risk set -> held-out C-index with bootstrap CI on the test patients, beside the
comparators fitted on the same train + validation patients: mean-pooling (``attention_mil``) or
averaging fusion (``crossattn``, seed 003's baseline) and the clinical-only Cox model (the
no-learning baseline) -> attention layers for the viewer.

The RNA query of ``crossattn`` is the patient's KEGG pathway scores: genes z-scored on the training
patients (:class:`pathviz.genomics.ExpressionScaler`), averaged per pathway (sets of 15-300 genes,
at least 5 measured), the scores z-scored on the training patients again.

Each slide's patient is one case: with one slide per patient (the cohorts PathViz reads),
WSI-level and case-level C-index are the same number, reported once and said so.

Settings (frozen in code; chosen on cohort seed 0 of the benchmark generator only): patches read
at :data:`READ_MPP` (1 um/px: 256 px patches at 0.5 um/px become 128 px), Macenko-normalised per
slide, encoded by a ResNet-18 fed 128 px inputs (randomly initialised unless weights are given);
bags sampled to :data:`BAG_SIZE` patches per training step; :data:`TRAIN` for the optimiser.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from pathviz.cohort import load_cohort
from pathviz.errors import PathVizError
from pathviz.layers.score import ScoreLayer
from pathviz.store.workspace import Workspace, model_layer_name

Progress = Callable[[float, str], None]

KINDS = ("attention_mil", "crossattn")
READ_MPP = 1.0
ENCODER = "resnet18"
ENCODER_INPUT_PX = 128
BAG_SIZE = 32
TRAIN = {"epochs": 200, "lr": 1e-3, "weight_decay": 1e-2, "patience": 40}
HIDDEN = 64
#: The viewer shows attention by percentile rank within the slide, the lower half transparent.
ATTENTION_DISPLAY = {"scale": "percentile", "floor": 50}
#: Clinical covariates of the no-learning baseline, where the cohort has them.
BASELINE_CLINICAL = ("age", "centre", "ca19_9", "treatment")


def rna_pathway_scores(omics: pd.DataFrame, train_rows: np.ndarray, min_genes: int = 5) -> tuple[np.ndarray, list[str], dict]:
    """The RNA query: ``float32[n, n_pathways]`` KEGG pathway scores (module docstring), the
    pathway names, and the fitted state (``genes``, gene means / sds, score means / sds) that
    reproduces them for a new profile.

    Raises:
        PathVizError: fewer than 2 pathways have ``min_genes`` measured genes.
    """
    from pathviz.genomics import default_library

    X = omics.astype(float)
    mu, sd = X[train_rows].mean(), X[train_rows].std(ddof=0).replace(0, 1.0)
    Z = (X - mu) / sd
    names, cols = [], []
    for gs in default_library("kegg").filter_size(15, 300).sets:
        genes = [g for g in gs.genes if g in Z.columns]
        if len(genes) >= min_genes:
            names.append(gs.name)
            cols.append(Z[genes].mean(axis=1).to_numpy())
    if len(names) < 2:
        raise PathVizError(f"Only {len(names)} KEGG pathways have {min_genes} measured genes in this cohort.",
                           "use a cohort whose expression matrix has gene symbols as columns.")
    S = np.stack(cols, axis=1)
    s_mu, s_sd = S[train_rows].mean(0), S[train_rows].std(0)
    s_sd[s_sd == 0] = 1.0
    return ((S - s_mu) / s_sd).astype(np.float32), names, {"score_mean": s_mu.tolist(), "score_sd": s_sd.tolist()}


def _baseline_risk(cohort, trva: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Clinical-only Cox risk (one-hot centre, log CA19-9) fitted on ``trva``; the covariates used."""
    from pathviz.jobs.coxpasnet import clinical_cox_risk

    cols = [c for c in BASELINE_CLINICAL if c in cohort.clinical.columns]
    cohort.check_features(cols, "the clinical-only baseline")  # never an outcome column
    clin = cohort.clinical[cols].copy()
    if "ca19_9" in clin:
        clin["ca19_9"] = np.log1p(pd.to_numeric(clin["ca19_9"], errors="coerce"))
    if "centre" in clin:
        clin = pd.get_dummies(clin, columns=["centre"], drop_first=True, dtype=float)
    return clinical_cox_risk(clin, list(clin.columns), trva, cohort.time, cohort.event), cols


def train_mil_model(workspace: Workspace, out: str | Path, cohort_name: str = "demo", kind: str = "attention_mil",
                    seed: int = 0, encoder: str = ENCODER, weights: str | None = None, bag_size: int = BAG_SIZE,
                    device: str | None = None, progress: Progress | None = None, write_layers: bool = True,
                    keep: dict | None = None) -> dict:
    """Train an attention MIL (``kind="attention_mil"``) or cross-attention (``"crossattn"``) model.

    Writes to ``out``: ``model.pt`` (state dict), ``model.json`` (architecture, encoder, feature
    version, RNA pathways), ``prognostic_index.csv`` (patient_id, split, time, event,
    prognostic_index, slide_id), ``metrics.json`` and ``MODEL_CARD.md``; with ``write_layers``,
    per slide the viewer layers ``attention-m<tag>`` and ``patch_risk-m<tag>`` (each patch's score on
    the risk scale, :func:`pathviz.nn.mil.predict_patch_scores`), crossattn also
    ``attention_median_rna-m<tag>`` (the same model queried with the cohort's median RNA profile,
    the counterfactual).

    Args:
        keep: when given, filled with the run's internals for benches (``model``, ``X``, ``M``,
            ``rna``, ``rna_names``, ``pids``, ``sids``, ``split``, ``coords``, ``device``).

    Returns:
        The metrics: split sizes, ``test_c_index`` (model, comparator, clinical), ``held_out`` (C
        with bootstrap CI, chance warning), training info, encoder record, ``layer_tag``, seconds.

    Raises:
        PathVizError: unknown kind; a cohort without slides (or without expression for crossattn);
            unregistered or unanalysed slides; bad weights (:func:`pathviz.nn.encoders.build_encoder`).
    """
    from pathviz.jobs.features import extract_features
    from pathviz.jobs.pagenet import patient_split, slide_ids_for
    from pathviz.nn.encoders import build_encoder
    from pathviz.nn.mil import (BagTrainConfig, CrossAttentionFusion, GatedAttentionMIL, MeanFusion, pad_bags, predict,
                                predict_patch_scores, train_bag_model)
    from pathviz.settings import torch_device, torch_threads
    from pathviz.survival import harrell_c
    from pathviz.survival.chance import held_out_c_index

    if kind not in KINDS:
        raise PathVizError(f"Unknown bag model kind {kind!r}.", f"use one of {', '.join(KINDS)}.")
    t_start = time.perf_counter()
    report = progress or (lambda f, m: None)
    torch.set_num_threads(torch_threads())
    dev = device or torch_device()
    cohort = load_cohort(cohort_name)
    need = ["slides"] + (["expression"] if kind == "crossattn" else [])
    missing = [m for m in cohort.missing_modalities() if m in need]
    if missing:
        raise PathVizError(f"Cohort {cohort_name!r} has no {' and no '.join(missing)}: {kind} needs a slide "
                           + ("and an expression profile " if kind == "crossattn" else "") + "per patient.",
                           "use a cohort with slides (the demo cohort: `pathviz demo`).")
    coverage = None
    if kind == "crossattn":
        from pathviz.risk import restrict_to_omics

        cohort, coverage = restrict_to_omics(cohort, "exclude", "cross-attention")
    pids = list(cohort.clinical.index)
    sids = slide_ids_for(workspace, workspace.home / "cohorts" / cohort_name, cohort.clinical["slide"])
    t, e = cohort.time, cohort.event
    fixed = cohort.clinical["split"].to_numpy() if "split" in cohort.id_columns else None
    split = patient_split(e, seed, fixed)
    tr, va, te = split == "train", split == "validation", split == "test"
    trva = tr | va

    report(0.02, f"encoder {encoder}")
    enc = build_encoder(encoder, weights, device=dev, seed=0,
                        input_px=ENCODER_INPUT_PX if encoder.startswith("resnet") else None)
    version, feats = extract_features(workspace, [sids[p] for p in pids], enc, READ_MPP, True,
                                      lambda f, m: report(0.02 + 0.6 * f, m))
    X, M = pad_bags([feats[sids[p]]["features"] for p in pids])
    x_mean = X[M & trva[:, None]].mean(0)
    x_sd = X[M & trva[:, None]].std(0) + 1e-6
    X = np.where(M[:, :, None], (X - x_mean) / x_sd, 0.0).astype(np.float32)  # patch features standardised on train + val

    rna, rna_names, rna_state = (None, [], {})
    if kind == "crossattn":
        rna, rna_names, rna_state = rna_pathway_scores(cohort.omics.loc[pids], trva)
    dim = X.shape[2]
    torch.manual_seed(seed)
    if kind == "attention_mil":
        model, comparator = GatedAttentionMIL(dim, hidden=HIDDEN, attn=HIDDEN // 2), MeanFusion(dim, 0, HIDDEN)
        comp_name = "mean_pooling"
    else:
        model = CrossAttentionFusion(dim, rna.shape[1], d_model=HIDDEN)
        comparator, comp_name = MeanFusion(dim, rna.shape[1], HIDDEN), "averaging_fusion"
    cfg = dict(TRAIN, bag_size=bag_size, seed=seed, device=dev)
    report(0.65, f"training {kind} ({int(tr.sum())} training patients, whole-risk-set Cox loss)")
    model, info = train_bag_model(model, X, M, rna, t, e, tr, va, BagTrainConfig(**cfg))
    report(0.8, f"training the comparator ({comp_name})")
    comparator, comp_info = train_bag_model(comparator, X, M, rna, t, e, tr, va, BagTrainConfig(**cfg))
    pi, att = predict(model, X, M, rna, dev)
    scores = predict_patch_scores(model, X, M, dev)
    pi_comp, _ = predict(comparator, X, M, rna, dev)
    clin_risk, clin_cols = _baseline_risk(cohort, trva)
    c = {kind: harrell_c(t[te], e[te], pi[te]).c_index, comp_name: harrell_c(t[te], e[te], pi_comp[te]).c_index,
         "clinical": harrell_c(t[te], e[te], clin_risk[te]).c_index}
    held = held_out_c_index([(t[te], e[te], pi[te])])
    held_comp = held_out_c_index([(t[te], e[te], pi_comp[te])])

    att_cf = None
    if kind == "crossattn":  # the counterfactual query: every patient asks with the cohort's median RNA profile
        median = np.repeat(np.median(rna[trva], axis=0, keepdims=True), len(pids), axis=0).astype(np.float32)
        _, att_cf = predict(model, X, M, median, dev)

    if keep is not None:
        keep.update(model=model, X=X, M=M, rna=rna, rna_names=rna_names, pids=pids, sids=sids, split=split, device=dev,
                    coords={s: feats[s]["coords"] for s in feats}, attention=att,
                    patch_scores=scores)
    layer_tag = f"{version[:6]}{uuid.uuid4().hex[:8]}"
    if write_layers:
        report(0.9, "writing attention layers")
        for i, pid in enumerate(pids):
            sid = sids[pid]
            n = int(M[i].sum())
            write_attention_layer(workspace, sid, feats[sid]["grid_key"], att[i, :n], "attention", layer_tag, kind,
                                  float(pi[i]), "the patient's own RNA profile" if kind == "crossattn" else None)
            write_attention_layer(workspace, sid, feats[sid]["grid_key"], scores[i, :n], "patch_risk", layer_tag, kind,
                                  float(pi[i]), attention=att[i, :n])
            if att_cf is not None:
                write_attention_layer(workspace, sid, feats[sid]["grid_key"], att_cf[i, :n], "attention_median_rna",
                                      layer_tag, kind, float(pi[i]), "the cohort's median RNA profile (counterfactual)")

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / "model.pt")
    (out / "model.json").write_text(json.dumps({
        "kind": kind, "dim": dim, "hidden": HIDDEN, "rna_pathways": rna_names, "rna_state": rna_state,
        "feature_version": version, "read_mpp": READ_MPP, "encoder": enc.describe(), "bag_size": bag_size,
        "x_mean": x_mean.tolist(), "x_sd": x_sd.tolist()}, indent=0))
    pd.DataFrame({"patient_id": pids, "split": split, "time": t, "event": e, "prognostic_index": pi,
                  "slide_id": [sids[p] for p in pids]}).to_csv(out / "prognostic_index.csv", index=False)
    metrics = {
        "kind": kind, "cohort": cohort_name, "seed": seed, "device": dev, "threads": torch_threads(),
        "n": {k: int((split == k).sum()) for k in ("train", "validation", "test")},
        "test_c_index": c, "held_out": held.to_dict(), "comparator": comp_name, "comparator_held_out": held_comp.to_dict(),
        "baseline_clinical": clin_cols, "case_level_note": "one slide per patient: WSI-level C-index = case-level C-index",
        "train": {k: v for k, v in info.items() if k != "history"},
        "comparator_train": {k: v for k, v in comp_info.items() if k != "history"},
        "encoder": enc.describe(), "feature_version": version, "read_mpp": READ_MPP, "bag_size": bag_size,
        "slides_extracted_now": int(sum(f["extracted"] for f in feats.values())), "layer_tag": layer_tag,
        "rna_pathways": len(rna_names)}
    if coverage:
        metrics.update(coverage)
    metrics["seconds"] = time.perf_counter() - t_start
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    label = "Gated attention MIL" if kind == "attention_mil" else "RNA-to-patch cross-attention (seed 003)"
    (out / "MODEL_CARD.md").write_text(
        f"# {label} ({cohort_name})\n\n- split seed {seed}: train/validation/test {metrics['n']}\n"
        f"- encoder: {enc.notice}\n- features: version {version}, read at {READ_MPP} um/px, Macenko-normalised\n"
        f"- test C-index: {held.headline()} ({held.method()}); {comp_name} {c[comp_name]:.3f}; clinical only "
        f"({', '.join(clin_cols) or 'none'}) {c['clinical']:.3f}\n"
        + (f"- WARNING: {held.warning}\n" if held.warning else "")
        + "- attention shows where the model pooled from, not why; trust a map only where the held-out C-index "
          "beats chance and the clinical baseline\n")
    report(1.0, "done")
    return metrics


def write_attention_layer(workspace: Workspace, slide_id: str, grid_key: str, values: np.ndarray, base: str,
                          layer_tag: str, kind: str, pi: float, query: str | None = None,
                          attention: np.ndarray | None = None) -> Path:
    """Store one slide's per-patch values (``float[n_patches]``) as the viewer layer
    ``<base>-m<layer_tag>``, shown by percentile rank within the slide with the lower half
    transparent (:data:`ATTENTION_DISPLAY`).

    ``base`` is ``attention`` / ``attention_median_rna`` (attention weights, summing to 1 over the
    slide; ``query`` names the RNA query of cross-attention) or ``patch_risk`` (each patch's score
    on the risk scale, :func:`pathviz.nn.mil.predict_patch_scores`; ``attention`` then gives the
    weights, so the layer records that the slide's prognostic index is their weighted mean)."""
    if base == "patch_risk":
        title = ("Attention MIL" if kind == "attention_mil" else "Cross-attention") + ": patch risk score"
        desc = ("Per patch: the model's Cox head applied to this patch alone (log relative hazard; Javed et al. 2022, "
                "Additive MIL). The slide's prognostic index is the attention-weighted mean of these scores"
                + (" plus the RNA term" if kind == "crossattn" else "") + ": high = the patch pushes the risk up.")
        units, extra = "log relative hazard", {}
        if attention is not None:
            extra = {"attention_weighted_mean": float(np.dot(attention, values))}
    else:
        title = ("Attention MIL: attention weight" if kind == "attention_mil" else
                 f"Cross-attention weight ({'median RNA query' if base != 'attention' else 'own RNA query'})")
        desc = ("Per patch: the attention weight the model gave it when pooling the slide (weights sum to 1 over the "
                "slide; the display ranks them within the slide)." + (f" Query: {query}." if query else ""))
        units, extra = "attention weight", {"attention_sum": float(np.sum(values))}
    return workspace.save_layer(slide_id, ScoreLayer(
        name=model_layer_name(base, layer_tag), title=title, grid_key=grid_key,
        scores=np.asarray(values, np.float32), units=units, description=desc,
        meta={"display": dict(ATTENTION_DISPLAY), "model_kind": kind, "prognostic_index": pi, "query": query, **extra}))


def train_registered_mil(workspace: Workspace, cohort_name: str, kind: str = "attention_mil", seed: int = 0,
                         encoder: str = ENCODER, weights: str | None = None, bag_size: int = BAG_SIZE,
                         progress: Progress | None = None):
    """Train (:func:`train_mil_model`) into a new immutable registry version ``<kind>/<cohort>@vNNNN``.

    Returns:
        The new version's :class:`~pathviz.store.registry.Manifest`.

    Raises:
        PathVizError: as :func:`train_mil_model` (nothing is registered then).
    """
    from pathviz.cohort import cohort_digest
    from pathviz.store.registry import ModelRegistry

    cohort = load_cohort(cohort_name)

    def write(folder: Path) -> dict:
        return train_mil_model(workspace, folder, cohort_name, kind, seed=seed, encoder=encoder, weights=weights,
                               bag_size=bag_size, progress=progress)

    label = "gated attention MIL" if kind == "attention_mil" else "RNA-to-patch cross-attention"
    return ModelRegistry(workspace.models_dir).create_version(
        kind, cohort_name, write, cohort=cohort_name, data_digest=cohort_digest(cohort), split_seed=seed,
        params={"seed": seed, "encoder": encoder, "weights": Path(weights).name if weights else "", "bag_size": bag_size,
                "read_mpp": READ_MPP, **TRAIN},
        card={"intended_use": f"research: {label} prognostic index and attention maps; not for clinical use",
              "data": f"{cohort_name}: {cohort.description}",
              "metrics": "held-out (test split) C-index with CI in metrics.held_out; comparator and clinical-only "
                         "baseline in metrics.test_c_index",
              "limits": "one split of one cohort; attention shows where the model pooled from, not why"})
