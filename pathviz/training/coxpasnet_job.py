"""Train Cox-PASNet on a cohort and store everything the pathway page and CLI need.

A model folder holds ``weights.pt``, ``model.json``, ``MODEL_CARD.md`` (from
:meth:`~pathviz.nn.CoxPASNetModel.save`), ``metrics.json`` (held-out validation C-index, inner
validation C-index, timings, split seed), ``pathways.csv`` and ``genes.csv`` (rankings on all
patients) and, with ``repeats > 1``, ``stability.csv`` (how often each pathway is in the top 10
over models trained on repeated splits).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from pathviz.cohort import Cohort, load_cohort
from pathviz.errors import PathVizError
from pathviz.explain import gene_ranking, pathway_ranking, ranking_stability
from pathviz.genomics import GeneSetLibrary, default_library, read_gmt
from pathviz.nn import CoxPASNetModel, TrainConfig
from pathviz.risk import train_validation_split
from pathviz.survival import harrell_c

Progress = Callable[[float, str], None]


def load_library(spec: str, min_size: int = 15, max_size: int = 300) -> GeneSetLibrary:
    """``kegg`` / ``go_bp`` (shipped) or a GMT path, size-filtered."""
    lib = default_library(spec) if spec in ("kegg", "go_bp") else read_gmt(spec)
    return lib.filter_size(min_size, max_size)


def train_pathway_model(cohort: Cohort | str, library: GeneSetLibrary, out: str | Path, seed: int = 0,
                        clinical: list[str] | None = None, repeats: int = 1, validation_fraction: float = 0.3,
                        config: TrainConfig | None = None, min_coverage: float = 0.5, device: str | None = None,
                        progress: Progress | None = None) -> tuple[CoxPASNetModel, dict]:
    """Fit on a stratified training split (seeded), evaluate on the held-out validation split,
    rank pathways and genes, optionally repeat on ``repeats`` seeds for ranking stability.

    Returns ``(model, metrics)``; the folder ``out`` is written.
    """
    report = progress or (lambda f, m: None)
    cohort = load_cohort(cohort) if isinstance(cohort, str) else cohort
    if cohort.omics is None:
        raise PathVizError(f"Cohort {cohort.name!r} has no expression matrix.", "choose a cohort with omics.")
    clinical = clinical if clinical is not None else (["age"] if "age" in cohort.clinical.columns else [])
    rankings, first, metrics = [], None, None
    for r in range(max(1, repeats)):
        s = seed + r
        report(r / max(1, repeats), f"training split seed {s}")
        train, val = train_validation_split(cohort.event, validation_fraction, s)
        cfg = config or TrainConfig(seed=s)
        cfg = TrainConfig(**{**cfg.__dict__, "seed": s})
        t0 = time.perf_counter()
        model = CoxPASNetModel(library, clinical, config=cfg, min_coverage=min_coverage, device=device)
        model.fit(cohort.clinical[train], cohort.omics, cohort.time[train], cohort.event[train])
        secs = time.perf_counter() - t0
        risk_val = model.predict_risk(cohort.clinical[val], cohort.omics)
        c_val = harrell_c(cohort.time[val], cohort.event[val], risk_val).c_index
        ranking = pathway_ranking(model, cohort.clinical, cohort.omics).table
        rankings.append(ranking)
        if first is None:
            first = model
            metrics = {"cohort": cohort.name, "split_seed": s, "validation_c_index": c_val,
                       "inner_validation_c_index": model.val_c_index_, "n_training": int(train.sum()),
                       "n_validation": int(val.sum()), "train_seconds": secs, "device": model.device,
                       "pathways": len(model.pathways_), "genes": len(model.genes_), "clinical": clinical}
            genes = gene_ranking(model, cohort.clinical, cohort.omics)
        else:
            metrics.setdefault("repeat_validation_c_index", []).append(c_val)
    out = Path(out)
    first.save(out, cohort=cohort.name, extra={"card": f"Held-out validation C-index (seed {seed}): {metrics['validation_c_index']:.3f}"})
    cov = first.mapping_.coverage
    rankings[0]["set_size"] = [cov.get(p, (0, 0))[1] for p in rankings[0]["pathway"]]
    rankings[0]["coverage"] = [cov[p][0] / cov[p][1] if p in cov else np.nan for p in rankings[0]["pathway"]]
    rankings[0].to_csv(out / "pathways.csv", index=False)
    genes.to_csv(out / "genes.csv", index=False)
    if len(rankings) > 1:
        ranking_stability(rankings).to_csv(out / "stability.csv", index=False)
        metrics["repeat_validation_c_index"] = [metrics["validation_c_index"]] + metrics.get("repeat_validation_c_index", [])
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    report(1.0, "done")
    return first, metrics


def rank_model(folder: str | Path, top: int = 20) -> dict:
    """Stored rankings of a model folder (pathways with stability when available, genes)."""
    folder = Path(folder)
    try:
        pathways = pd.read_csv(folder / "pathways.csv", keep_default_na=False)
        genes = pd.read_csv(folder / "genes.csv")
        metrics = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError) as exc:
        raise PathVizError(f"{folder} has no stored rankings ({exc}).", "train it with `pathviz train coxpasnet`.", folder) from exc
    if (folder / "stability.csv").exists():
        stab = pd.read_csv(folder / "stability.csv")
        pathways = pathways.merge(stab[["pathway", "stability", "runs"]], on="pathway", how="left")
    return {"metrics": metrics, "pathways": pathways.head(top), "genes": genes.head(top)}


def model_folders(root: str | Path) -> list[Path]:
    """Cox-PASNet model folders under ``root`` (newest first)."""
    root = Path(root)
    found = [p.parent for p in root.rglob("model.json") if (p.parent / "metrics.json").exists()]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def default_model_dir(models_root: Path, cohort: str, library_name: str, seed: int) -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in Path(library_name).stem)
    return models_root / "coxpasnet" / f"{cohort}-{safe}-seed{seed}"
