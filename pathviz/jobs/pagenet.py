"""PAGE-Net end to end on a cohort with slides (the demo cohort): patches -> stain normalisation ->
pre-trained CNN -> feature store -> two-stage pooling -> integration with Cox-PASNet genome layers
and age -> prognostic index; comparators (Cox-PASNet on genes + age, image-only elastic-net Cox on
the pooled features); attributions (patch contributions, map importance, pathway and gene
rankings); survival-discriminative layers written for the viewer.

* Split: train / validation / test, stratified by event (60/20/20, seeded).
* Stain: each slide is Macenko-normalised (:mod:`pathviz.slide.stain`) before the CNN; the demo's
  centres differ in stain strength, and without it the CNN's best slide feature correlated 0.65
  with the planted dense fraction instead of 0.92 (seed 0, measured).
* CNN pre-training: patches of *uncensored training* patients only (48 random patches each), target
  the standardised log survival time (MSE; with raw time / mean the long-survival outliers dominate
  the loss: on seed 0 the best slide feature then correlated 0.47 with the dense fraction instead
  of 0.90), validated on uncensored
  validation patients. The CNN reads each 64 px tile at half resolution (32 px, 2 um/px, for CPU
  speed; full 64 px input made the whole pipeline take 176 s instead of ~70 s per split on 2 cores
  and did not locate dense tiles better on the one split measured).
* Pooling: K1 = 8 of the 4 x 4 = 16 map values per patch, K2 = 72 of the 144 patches per slide.
  The seed's K2/M is 0.1; top-K2 pooling saturates once a slide has more than K2 positive patches,
  and the demo plants up to 72 dense tiles (50%), so K2 covers that range.
* Integration: 5 bagged PAGE-Nets on train + validation patients (inner 80/20 splits), Cox layer
  started at 0 so training starts from the clinical (age) Cox model.
"""

from __future__ import annotations

import hashlib
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
K1, K2 = 8, 72
CNN_INPUT = 32  # px fed to the CNN (tiles are resized)
PRETRAIN_PATCHES_PER_PATIENT = 48
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
        params={"seed": seed, "epochs_cnn": epochs_cnn, "k1": K1, "k2": K2, "members": MEMBERS, "cnn_input_px": CNN_INPUT,
                "grid_lr": list(GRID_LR), "grid_l2": list(GRID_L2)},
        card={"intended_use": "research: slide + expression + age prognostic index and survival-discriminative slide maps; "
                              "not for clinical use",
              "data": f"{cohort_name}: {cohort.description}",
              "metrics": "held-out (test split) C-index with CI in metrics.held_out; comparators in metrics.test_c_index",
              "limits": "one split of one cohort; the maps show where the model looks, not why; "
                        "trust a ranking only where the held-out C-index beats chance and the clinical baseline"})


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


def train_pagenet_model(workspace: Workspace, out: str | Path, cohort_name: str = "demo", seed: int = 0,
                        epochs_cnn: int = 6, device: str | None = None, progress: Progress | None = None,
                        write_layers: bool = True) -> dict:
    """Run the whole PAGE-Net pipeline (module docstring); returns the metrics dict."""
    from pathviz.settings import torch_device

    device = device or torch_device("auto")
    report = progress or (lambda f, m: None)
    t_start = time.perf_counter()
    cohort = load_cohort(cohort_name)
    missing = cohort.missing_modalities()
    if missing:
        from pathviz.cohort import available_cohorts
        from pathviz.risk.stratify import cohort_has_slides_and_omics

        ok = [c for c in available_cohorts() if cohort_has_slides_and_omics(c)]
        raise PathVizError(f"Cohort {cohort_name!r} has no {' and no '.join(missing)}: PAGE-Net needs a slide and an "
                           "expression profile per patient.",
                           f"use a cohort with both ({', '.join(ok) or 'none here yet: build the demo cohort with `pathviz demo`'}).")
    cohort.check_features(PAGENET_CLINICAL, "PAGE-Net")
    cohort_dir = workspace.home / "cohorts" / cohort_name
    sids = slide_ids_for(workspace, cohort_dir, cohort.clinical["slide"])
    pids = list(cohort.clinical.index)
    t, e = cohort.time, cohort.event
    split = three_way_split(e, seed)
    # -- patches ------------------------------------------------------------------------------------
    report(0.02, "reading patches")
    patches, grids = {}, {}
    for i, pid in enumerate(pids):
        raw, grids[pid] = read_patches(workspace, sids[pid])
        patches[pid] = shrink(MacenkoNormaliser().fit(raw).transform(raw), CNN_INPUT)
    rng = np.random.default_rng(seed)
    sample = {p: rng.choice(len(patches[p]), min(PRETRAIN_PATCHES_PER_PATIENT, len(patches[p])), replace=False) for p in pids}
    # -- CNN pre-training on uncensored training patients only --------------------------------------
    log_t = np.log(np.maximum(np.asarray(t, float), 1e-3))
    fit_rows = (split == "train") & (e == 1)
    mu_t, sd_t = float(log_t[fit_rows].mean()), float(log_t[fit_rows].std() + 1e-6)
    target = dict(zip(pids, (log_t - mu_t) / sd_t))
    pre_tr = pretraining_patients(pids, split, e, "train")
    pre_va = pretraining_patients(pids, split, e, "validation")
    Xtr = np.concatenate([patches[p][sample[p]] for p in pre_tr])
    ytr = np.concatenate([np.full(len(sample[p]), target[p]) for p in pre_tr])
    Xva = np.concatenate([patches[p][sample[p]] for p in pre_va])
    yva = np.concatenate([np.full(len(sample[p]), target[p]) for p in pre_va])
    report(0.05, f"pre-training the patch CNN on {len(Xtr)} patches of {len(pre_tr)} uncensored training patients")
    cnn, cnn_info = pretrain_patch_cnn(Xtr, ytr.astype(np.float32), Xva, yva.astype(np.float32), epochs=epochs_cnn, seed=seed,
                                       device=device)
    version = hashlib.sha1(json.dumps({"seed": seed, "cohort": cohort_name, "pids": pre_tr, "epochs": epochs_cnn, "k1": K1,
                                       "input": CNN_INPUT, "stain": "macenko",
                                       "state": float(sum(p.sum().item() for p in cnn.parameters()))}).encode()).hexdigest()[:10]
    store = FeatureStore(workspace, version)
    # -- features (feature store) and two-stage pooling --------------------------------------------------
    report(0.45, "extracting survival-discriminative feature maps")
    slide_feat = np.zeros((len(pids), cnn.n_maps), np.float32)
    stored = {}  # each slide's feature-store arrays, read once
    for i, pid in enumerate(pids):
        sid = sids[pid]
        if not store.has(sid):
            with torch.no_grad():
                x = torch.as_tensor(patches[pid], device=device).permute(0, 3, 1, 2).float() / 255.0
                maps = cnn.feature_maps(x)
                scores = patch_scores(maps, K1)
            store.save(sid, grids[pid].coords, scores.cpu().numpy(), maps.cpu().numpy())
        stored[pid] = store.load(sid)
        maps = torch.as_tensor(stored[pid]["maps"].astype(np.float32))
        slide_feat[i] = two_stage_pool(maps, K1, K2).numpy()
    tr, va, te = (split == "train"), (split == "validation"), (split == "test")
    s_mean, s_sd = slide_feat[tr].mean(0), slide_feat[tr].std(0) + 1e-6
    S = (slide_feat - s_mean) / s_sd
    # -- genome and clinical --------------------------------------------------------------------
    lib = default_library("kegg").filter_size()
    mapping = pathway_mask(lib, list(cohort.omics.columns))
    scaler = ExpressionScaler().fit(cohort.omics.loc[np.array(pids)[tr], mapping.genes])
    genes = [g for g in mapping.genes if g in set(scaler.genes_)]
    mask = mapping.mask[[mapping.genes.index(g) for g in genes]]
    G = scaler.transform(cohort.omics.loc[pids, mapping.genes])[genes].to_numpy(np.float32)
    age = cohort.clinical[PAGENET_CLINICAL[0]].astype(float).to_numpy()
    C = ((age - age[tr].mean()) / age[tr].std()).reshape(-1, 1).astype(np.float32)
    from pathviz.risk.coxpasnet import CoxPASNetModel

    init_clin = CoxPASNetModel._clinical_cox(C[tr], t[tr], e[tr])
    report(0.6, "training the integrative network (grid over learning rate and L2)")
    trva = tr | va
    net, grid_rows = fit_pagenet_ensemble(mask, S[trva], G[trva], C[trva], t[trva], e[trva], GRID_LR, GRID_L2,
                                          n_members=MEMBERS, seed=seed, device=device, init_clinical=init_clin)
    best_rows = pd.DataFrame(grid_rows).sort_values("val_c_index", ascending=False).groupby("member").head(1)
    T = lambda a: torch.as_tensor(np.asarray(a, np.float32), device=device)  # noqa: E731
    with torch.no_grad():
        pi = net(T(S), T(G), T(C)).cpu().numpy()
    c_test = harrell_c(t[te], e[te], pi[te]).c_index
    # -- comparators ---------------------------------------------------------------------------------
    report(0.8, "comparators: Cox-PASNet (genes + age) and image-only elastic-net Cox")
    cpn = CoxPASNetModel(lib, PAGENET_CLINICAL, device=device, config=None, outcome_columns=cohort.outcome_columns,
                         allowed_covariates=cohort.allowed_covariates)
    cpn.config.seed = seed
    cpn.fit(cohort.clinical[trva], cohort.omics, t[trva], e[trva])
    c_cpn = harrell_c(t[te], e[te], cpn.predict_risk(cohort.clinical[te], cohort.omics)).c_index
    from pathviz.explain import pathway_ranking

    cpn_top = pathway_ranking(cpn, cohort.clinical[trva], cohort.omics).table["pathway"].tolist()
    feat_df = pd.DataFrame(slide_feat, index=pids, columns=[f"map{j}" for j in range(cnn.n_maps)])
    en = CoxnetRiskModel([], use_genes=True, max_genes=cnn.n_maps, seed=seed).fit(cohort.clinical[trva], feat_df, t[trva], e[trva])
    c_en = harrell_c(t[te], e[te], en.predict_risk(cohort.clinical[te], feat_df)).c_index
    # the no-learning baseline: clinical Cox (age) on the same train + validation patients
    c_clin = harrell_c(t[te], e[te], clinical_cox_risk(cohort.clinical, PAGENET_CLINICAL, trva, t, e)[te]).c_index
    held = held_out_c_index([(t[te], e[te], pi[te])])
    # -- per-patch contributions (Input x Gradient) and map importance ------------------------------------
    report(0.85, "attributing the prognostic index to patches and maps")
    contributions = {}
    map_attr = np.zeros((len(pids), cnn.n_maps))
    for i, pid in enumerate(pids):
        per_patch, per_map = patch_contributions(net, stored[pid]["scores"], s_mean, s_sd, G[i], C[i], K2)
        contributions[pid] = per_patch
        map_attr[i] = per_map.sum(axis=0)
    map_importance = np.abs(map_attr).mean(axis=0)
    top_maps = np.argsort(-map_importance)[:TOP_MAPS]
    map_sign = np.sign(map_attr.mean(axis=0))
    ranking = pagenet_pathway_ranking(net, S[trva], G[trva], C[trva], mask, list(mapping.pathways), genes,
                                      {gs.name: gs.description for gs in lib.sets})
    gene_table = pagenet_gene_ranking(net, S[trva], G[trva], C[trva], mask, genes)
    # viewer layers are named for this run (feature version + a random part), so a retrain, even
    # one with the same CNN, never overwrites the layers another registered version shows
    layer_tag = f"{version[:6]}{uuid.uuid4().hex[:8]}"
    metrics = {"cohort": cohort_name, "seed": seed, "version": version, "device": device,
               "n": {k: int((split == k).sum()) for k in ("train", "validation", "test")},
               "cnn": {k: v for k, v in cnn_info.items() if k != "history"}, "pretrain_patients": len(pre_tr),
               "pretrain_patches": int(len(Xtr)), "k1": K1, "k2": K2, "members": best_rows.to_dict("records"),
               "val_c_index": float(best_rows["val_c_index"].mean()),
               "test_c_index": {"pagenet": c_test, "coxpasnet": c_cpn, "image_cox_en": c_en, "clinical": c_clin},
               "held_out": held.to_dict(),
               "map_importance": map_importance.tolist(), "top_maps": top_maps.tolist(), "pathways": len(mapping.pathways),
               "pagenet_pathway_ranking": ranking.table["pathway"].tolist(), "coxpasnet_pathway_ranking": cpn_top,
               "layer_tag": layer_tag}
    # time-dependent AUC and calibration on the test patients only (training = train + validation; predicted
    # survival from the shared Breslow baseline of pi on those); each guarded, a failure is {"note": why}
    from pathviz.risk.breslow import fit_breslow
    from pathviz.survival.evaluation import held_out_evaluation

    pi_flat = np.asarray(pi, float).reshape(-1)
    metrics.update(held_out_evaluation(
        t[trva], e[trva], t[te], e[te], pi_flat[te],
        lambda tc: fit_breslow(pi_flat[trva], t[trva], e[trva]).survival_function(pi_flat[te], [tc])[:, 0]))
    if write_layers:
        report(0.9, "writing survival-discriminative layers")
        for pid in pids:
            write_survival_layers(workspace, sids[pid], stored[pid], grid_key=grids[pid].key,
                                  contributions=contributions[pid], top_maps=top_maps, map_sign=map_sign[top_maps],
                                  version=version, pi=float(pi[pids.index(pid)]), layer_tag=layer_tag)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(cnn.state_dict(), out / "cnn.pt")
    torch.save(net.state_dict(), out / "pagenet.pt")
    ranking.table.to_csv(out / "pathway_ranking.csv", index=False)
    gene_table.to_csv(out / "gene_ranking.csv", index=False)
    table = pd.DataFrame({"patient_id": pids, "split": split, "time": t, "event": e, "prognostic_index": pi,
                          "slide_id": [sids[p] for p in pids]})
    table.to_csv(out / "prognostic_index.csv", index=False)
    metrics["seconds"] = time.perf_counter() - t_start
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    (out / "MODEL_CARD.md").write_text(
        f"# PAGE-Net ({cohort_name})\n\n- split seed {seed}: train/validation/test {metrics['n']}\n"
        f"- CNN pre-trained on {len(Xtr)} patches of {len(pre_tr)} uncensored training patients; val MSE {cnn_info['val_mse']:.4f}\n"
        f"- K1={K1}, K2={K2}; {MEMBERS} bagged integration networks, mean inner validation C {metrics['val_c_index']:.3f}\n"
        f"- test C-index: PAGE-Net {held.headline()} ({held.method()}); Cox-PASNet {c_cpn:.3f}, "
        f"image-only Cox-EN {c_en:.3f}, clinical Cox (age) {c_clin:.3f}\n"
        + (f"- WARNING: {held.warning}\n" if held.warning else "")
        + f"- feature version {version}; device {device}\n")
    report(1.0, "done")
    return metrics


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
