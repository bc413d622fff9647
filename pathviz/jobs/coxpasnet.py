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

from pathviz.cohort import Cohort, cohort_digest, load_cohort
from pathviz.errors import PathVizError
from pathviz.explain import gene_ranking, pathway_ranking, ranking_stability
from pathviz.genomics import MAX_SIZE, MIN_SIZE, GeneSetLibrary, default_library, read_gmt, read_gmt_text, readable_descriptions
from pathviz.risk.coxpasnet import CoxPASNetModel, TrainConfig
from pathviz.risk import omics_coverage_text, restrict_to_omics, train_validation_split
from pathviz.survival import harrell_c
from pathviz.survival.chance import HeldOutC, held_out_c_index

Progress = Callable[[float, str], None]
#: Largest GMT file a user may add (MSigDB's full collection of all sets is ~10 MB).
MAX_GMT_BYTES = 20 * 10**6


def coxpasnet_covariates(cohort: Cohort) -> list[str]:
    """Clinical covariates of Cox-PASNet's Cox layer (seed 000: age), when the cohort has them."""
    return [c for c in ("age",) if c in cohort.clinical_covariates()]


def load_library(spec: str, min_size: int = MIN_SIZE, max_size: int = MAX_SIZE) -> GeneSetLibrary:
    """``kegg`` / ``go_bp`` (shipped) or a GMT path, size-filtered."""
    lib = default_library(spec) if spec in ("kegg", "go_bp") else read_gmt(spec)
    return lib.filter_size(min_size, max_size)


def train_pathway_model(cohort: Cohort | str, library: GeneSetLibrary, out: str | Path, seed: int = 0,
                        clinical: list[str] | None = None, repeats: int = 1, validation_fraction: float = 0.3,
                        config: TrainConfig | None = None, min_coverage: float = 0.5, device: str | None = None,
                        progress: Progress | None = None, missing_omics: str = "exclude") -> tuple[CoxPASNetModel, dict]:
    """Fit on a stratified training split (seeded), evaluate on the held-out validation split,
    rank pathways and genes, optionally repeat on ``repeats`` seeds for ranking stability.

    Patients without an expression profile are handled BEFORE any split
    (:func:`~pathviz.risk.base.restrict_to_omics`): ``missing_omics="exclude"`` (default) trains,
    evaluates and ranks on the patients with expression only; ``"impute"`` keeps everyone, with
    training-row gene means for the others. ``metrics`` records ``missing_omics``, ``n_patients``,
    ``n_no_omics``, ``n_excluded_no_omics``, ``n_imputed_no_omics`` (counts, never ids),
    ``omics_note`` (the sentence the CLI prints) and ``threads`` (torch CPU threads,
    :func:`pathviz.settings.torch_threads`).

    ``metrics["held_out"]`` is the held-out C-index over the repeats (mean, sd, 95% bootstrap CI
    of the mean, chance verdict: :func:`pathviz.survival.chance.held_out_c_index`);
    ``validation_predictions.csv`` keeps every split's held-out risks so the CI can be recomputed.

    Returns ``(model, metrics)``; the folder ``out`` is written.

    Raises:
        OutcomeLeakageError: an outcome column among ``clinical``.
        PathVizError: the cohort has no expression matrix, or none of its patients has a profile.
    """
    import torch

    from pathviz.settings import torch_threads

    report = progress or (lambda f, m: None)
    cohort = load_cohort(cohort) if isinstance(cohort, str) else cohort
    if cohort.omics is None:
        raise PathVizError(f"Cohort {cohort.name!r} has no expression matrix, which Cox-PASNet needs.",
                           f"choose a cohort with expression: {', '.join(cohorts_with_omics())}.")
    cohort, coverage = restrict_to_omics(cohort, missing_omics, "Cox-PASNet")
    threads = torch_threads()
    torch.set_num_threads(threads)
    clinical = clinical if clinical is not None else coxpasnet_covariates(cohort)
    cohort.check_features(clinical, "Cox-PASNet")
    rankings, first, metrics, held_out_sets, baseline_sets, predictions = [], None, None, [], [], []
    for r in range(max(1, repeats)):
        s = seed + r
        report(r / max(1, repeats), f"training split seed {s}")
        train, val = train_validation_split(cohort.event, validation_fraction, s)
        cfg = config or TrainConfig(seed=s)
        cfg = TrainConfig(**{**cfg.__dict__, "seed": s})
        t0 = time.perf_counter()
        model = CoxPASNetModel(library, clinical, config=cfg, min_coverage=min_coverage, device=device,
                               missing_omics=missing_omics,
                               outcome_columns=cohort.outcome_columns, allowed_covariates=cohort.allowed_covariates,
                               progress=lambda f, m, r=r, s=s: report((r + 0.9 * f) / max(1, repeats), f"split seed {s}: {m}"))
        model.fit(cohort.clinical[train], cohort.omics, cohort.time[train], cohort.event[train])
        secs = time.perf_counter() - t0
        risk_val = model.predict_risk(cohort.clinical[val], cohort.omics)
        c_val = harrell_c(cohort.time[val], cohort.event[val], risk_val).c_index
        held_out_sets.append((cohort.time[val], cohort.event[val], risk_val))
        baseline_sets.append((cohort.time[val], cohort.event[val],
                              clinical_cox_risk(cohort.clinical, clinical, train, cohort.time, cohort.event)[val]))
        predictions.append(pd.DataFrame({"split_seed": s, "patient_id": cohort.clinical.index[val], "time": cohort.time[val],
                                         "event": cohort.event[val], "risk": risk_val}))
        ranking = pathway_ranking(model, cohort.clinical, cohort.omics).table
        rankings.append(ranking)
        if first is None:
            first = model
            metrics = {"cohort": cohort.name, "split_seed": s, "validation_c_index": c_val,
                       "inner_validation_c_index": model.val_c_index_, "n_training": int(train.sum()),
                       "n_validation": int(val.sum()), "train_seconds": secs, "device": model.device,
                       "pathways": len(model.pathways_), "genes": len(model.genes_), "clinical": clinical,
                       "threads": threads, **coverage, "omics_note": omics_coverage_text(coverage)}
            # time-dependent AUC and calibration of the saved model, on its validation patients only
            # (each guarded: a failure is recorded as {"note": why}, never fails the training)
            from pathviz.survival.evaluation import held_out_evaluation

            metrics.update(held_out_evaluation(
                cohort.time[train], cohort.event[train], cohort.time[val], cohort.event[val], risk_val,
                lambda tc, m=model, v=val: m.predict_survival_function(cohort.clinical[v], cohort.omics, [tc])[:, 0]))
            genes = gene_ranking(model, cohort.clinical, cohort.omics)
        else:
            metrics.setdefault("repeat_validation_c_index", []).append(c_val)
    held = held_out_c_index(held_out_sets)
    metrics["held_out"] = held.to_dict()
    metrics["clinical_baseline"] = (held_out_c_index(baseline_sets).to_dict() if clinical else None)
    metrics["validation_c_index_mean"], metrics["validation_c_index_sd"] = held.c_index, held.sd
    report(0.98, "saving")
    out = Path(out)
    note = omics_coverage_text(coverage)
    first.save(out, cohort=cohort.name, extra={"card": f"Held-out validation C-index: {held.headline()}; {held.method()}"
                                               + (f". {held.warning}" if held.warning else "")
                                               + (f"\n\nPatients: {note}." if note else "")})
    pd.concat(predictions).to_csv(out / "validation_predictions.csv", index=False)
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
    if "description" in pathways.columns:
        pathways["description"] = readable_descriptions(pathways["pathway"], pathways["description"])
    if (folder / "stability.csv").exists():
        stab = pd.read_csv(folder / "stability.csv")
        pathways = pathways.merge(stab[["pathway", "stability", "runs"]], on="pathway", how="left")
    base = metrics.get("clinical_baseline")
    return {"metrics": metrics, "pathways": pathways.head(top), "genes": genes.head(top),
            "held_out": stored_held_out(folder, metrics), "baseline": HeldOutC.from_dict(base) if base else None}


def clinical_cox_risk(clinical: pd.DataFrame, covariates: list[str], train: np.ndarray, time, event) -> np.ndarray:
    """The no-learning baseline beside every genomic model: a Cox model on the clinical
    covariates alone (numeric, training-median imputed, standardised on training rows), fitted on
    ``train`` and scored for every patient. Zeros (C = 0.5) when there is no covariate.

    Returns:
        float[n] linear predictor, higher = worse.
    """
    from pathviz.risk.coxpasnet import CoxPASNetModel

    if not covariates:
        return np.zeros(len(clinical))
    X = clinical[covariates].apply(pd.to_numeric, errors="coerce").astype(float)
    X = X.fillna(X[train].median())
    sd = X[train].std(ddof=0).replace(0, 1.0)
    Z = ((X - X[train].mean()) / sd).to_numpy(np.float32)
    beta = CoxPASNetModel._clinical_cox(Z[train], np.asarray(time, float)[train], np.asarray(event, int)[train])
    return Z @ beta if beta is not None else np.zeros(len(clinical))


def cohorts_with_omics() -> list[str]:
    """Cohorts available here that have an expression matrix (Cox-PASNet's input)."""
    from pathviz.cohort import available_cohorts

    out = []
    for name in available_cohorts():
        try:
            if load_cohort(name).omics is not None:
                out.append(name)
        except PathVizError:
            continue
    return out


def user_gmt_files(workspace) -> list[Path]:
    """GMT files a user added to the workspace (``$PATHVIZ_HOME/genesets/*.gmt``), by name."""
    folder = Path(workspace.home) / "genesets"
    return sorted(folder.glob("*.gmt")) if folder.exists() else []


def add_user_gmt(workspace, data: bytes | None, name_or_path: str, *, actor=None) -> Path:
    """Check a user's GMT (uploaded bytes, or a path on the server when ``data`` is None) and keep
    a copy in ``$PATHVIZ_HOME/genesets/`` (parsed first, then written to a temporary name and renamed into
    place), so the pathway page and ``--genesets FILE`` can use it.

    Args:
        actor: who adds it. Reading a path on the server (``data`` None) needs ``slides.manage``
            (admins, the CLI operator; None counts as the operator, for the CLI and jobs): a
            researcher's page offers uploads only, so the page is no way to read server files.

    Returns:
        The stored file's path.

    Raises:
        PermissionDeniedError: a server path from an actor who may not read server files.
        GeneSetError: not a GMT (binary, malformed line, duplicate names, empty sets; the message
            names the line); PathVizError: unreadable path, or no set of 15-300 genes.
    """
    import os
    import re
    import tempfile

    if data is None:
        from pathviz.auth.policy import operator, require

        require(actor or operator(), "slides.manage", "read gene-set files from paths on the server")
        src = Path(name_or_path).expanduser()
        try:
            if not src.is_file():  # no devices, FIFOs or folders
                raise PathVizError(f"Cannot read {src} (not a regular file).", "give the path of a readable .gmt file.", src)
            if src.stat().st_size > MAX_GMT_BYTES:
                raise PathVizError(f"{src} is {src.stat().st_size / 1e6:.0f} MB; gene-set files are limited to "
                                   f"{MAX_GMT_BYTES // 10**6} MB.", "split the file or keep only the collections you need.")
            data = src.read_bytes()
        except OSError as exc:
            raise PathVizError(f"Cannot read {src} ({exc.strerror or exc}).", "give the path of a readable .gmt file.", src) from exc
    if len(data) > MAX_GMT_BYTES:
        raise PathVizError(f"{name_or_path} is {len(data) / 1e6:.0f} MB; gene-set files are limited to "
                           f"{MAX_GMT_BYTES // 10**6} MB.", "split the file or keep only the collections you need.")
    lib = read_gmt_text(data, name_or_path)  # errors name the user's file and line, not a temporary copy
    if not lib.filter_size(MIN_SIZE, MAX_SIZE).sets:
        raise PathVizError(f"{name_or_path}: no gene set has {MIN_SIZE}-{MAX_SIZE} genes ({len(lib.sets)} sets read).",
                           "use a GMT of pathways (e.g. MSigDB Hallmark or Reactome).")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name_or_path).stem).strip("._") or "genesets"
    folder = Path(workspace.home) / "genesets"
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".gmt")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        final = folder / f"{stem}.gmt"
        os.replace(tmp, final)
        return final
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def stored_held_out(folder: str | Path, metrics: dict) -> HeldOutC | None:
    """The held-out C-index of a stored model (:class:`~pathviz.survival.chance.HeldOutC`):
    from ``metrics.json``, else recomputed from ``validation_predictions.csv``; None for a model
    folder written before either existed (retrain it)."""
    if "held_out" in metrics:
        return HeldOutC.from_dict(metrics["held_out"])
    path = Path(folder) / "validation_predictions.csv"
    if not path.exists():
        return None
    pred = pd.read_csv(path)
    return held_out_c_index([(g["time"].to_numpy(), g["event"].to_numpy(), g["risk"].to_numpy())
                             for _, g in pred.groupby("split_seed", sort=True)])


def model_folders(root: str | Path) -> list[Path]:
    """Cox-PASNet model folders under ``root`` (newest first)."""
    root = Path(root)
    found = [p.parent for p in root.rglob("model.json") if (p.parent / "metrics.json").exists()]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def library_label(library_name: str, home: str | Path | None = None) -> str:
    """How a registry version names its gene-set library: ``kegg`` / ``go_bp`` as given, a GMT
    file inside the workspace relative to it (``genesets/h_all.gmt``), any other file by its name
    only: never an absolute path of this machine (manifests and model cards travel)."""
    text = str(library_name)
    if text in ("kegg", "go_bp") or ("/" not in text and "\\" not in text):
        return text
    path = Path(text).expanduser()
    if home is not None:
        try:
            return path.resolve().relative_to(Path(home).resolve()).as_posix()
        except ValueError:
            pass
    return path.name


def library_digest(library_name: str) -> str:
    """SHA-256 (first 16 hex) of a GMT file's bytes ("" for a shipped library or an unreadable file),
    recorded beside :func:`library_label` so a version still names exactly which sets it used."""
    if str(library_name) in ("kegg", "go_bp"):
        return ""
    import hashlib

    try:
        return hashlib.sha256(Path(library_name).expanduser().read_bytes()).hexdigest()[:16]
    except OSError:
        return ""


def coxpasnet_model_name(cohort: str, library_name: str, seed: int) -> str:
    """Registry name of a cohort's Cox-PASNet with a gene-set library and split seed
    (``gse1992-kegg-seed0``); its versions are ``coxpasnet/<name>@vNNNN``."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in Path(library_name).stem)
    return f"{cohort}-{safe}-seed{seed}"


def default_model_dir(models_root: Path, cohort: str, library_name: str, seed: int) -> Path:
    """The model folder written before the registry (read as a fallback when no version exists)."""
    return Path(models_root) / "coxpasnet" / coxpasnet_model_name(cohort, library_name, seed)


def train_registered_coxpasnet(models_root: Path, cohort_name: str, library_name: str, seed: int = 0, repeats: int = 1,
                               min_size: int = MIN_SIZE, max_size: int = MAX_SIZE, min_coverage: float = 0.5,
                               progress: Progress | None = None, missing_omics: str = "exclude", endpoint: str = ""):
    """Train Cox-PASNet (:func:`train_pathway_model`) into a new immutable registry version
    ``coxpasnet/<cohort>@vNNNN`` (one model per cohort, so its ``production`` alias is the
    cohort's; the gene-set library and seed are parameters of the version) with its manifest (cohort, data digest, seed,
    params, held-out metrics, model card). Patients without expression: ``missing_omics``
    (:func:`train_pathway_model`; the counts are in the manifest's metrics, the option in its params).
    ``endpoint``: the survival endpoint trained on (a key of the cohort's endpoints; empty = its
    primary one); a non-primary endpoint's model is named ``<cohort>.<endpoint>``
    (:func:`~pathviz.cohort.endpoint_model_name`) and patients lacking it are left out.

    Returns:
        ``(manifest, model, metrics)``.

    Raises:
        PathVizError: as :func:`train_pathway_model` (nothing is registered then).
    """
    from pathviz.store.registry import ModelRegistry

    from pathviz.cohort import endpoint_model_name, load_cohort_endpoint

    cohort = load_cohort_endpoint(cohort_name, endpoint)
    lib = load_library(library_name, min_size, max_size)
    trained = {}

    def write(folder: Path) -> dict:
        trained["model"], trained["metrics"] = train_pathway_model(cohort, lib, folder, seed=seed, repeats=repeats,
                                                                   min_coverage=min_coverage, progress=progress,
                                                                   missing_omics=missing_omics)
        return trained["metrics"]

    held_note = "held-out C-index and chance verdict in metrics.held_out"
    label, digest = library_label(library_name, Path(models_root).parent), library_digest(library_name)
    man = ModelRegistry(models_root).create_version(
        "coxpasnet", endpoint_model_name(cohort_name, endpoint), write, cohort=cohort.name,
        data_digest=cohort_digest(cohort), split_seed=seed,
        params={"genesets": label, "seed": seed, "repeats": repeats, "min_size": min_size, "max_size": max_size,
                "min_coverage": min_coverage, "missing_omics": missing_omics, "endpoint": cohort.endpoints[0].key},
        card={"intended_use": "research: rank pathways and genes by their contribution to risk; not for clinical use",
              "data": f"{cohort.name} ({cohort.endpoint}): {cohort.description}", "metrics": held_note,
              "gene_sets": label + (f" (sha256 {digest})" if digest else " (shipped)"),
              "limits": "trained on one cohort; rankings are only meaningful where the held-out C-index beats chance"})
    return man, trained["model"], trained["metrics"]
