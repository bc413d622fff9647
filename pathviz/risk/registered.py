"""Risk models read from the model registry for a cohort's patients, as the patient page and the
pathway page use them: the chosen version (``production`` alias, else the newest) of each kind
trained on the cohort, or an explicit version.

Both kinds come back as a :class:`~pathviz.risk.stored.StoredRiskModel` (one risk-model
interface): PAGE-Net's prognostic index was computed by its training job for every patient;
Cox-PASNet's is computed here by the registered network for every patient of the cohort. Split
labels follow the stored-model convention (``train``/``validation`` fitted, ``test`` held out):
for Cox-PASNet the held-out patients are the validation patients of the version's first split.
Files are verified against the manifest's SHA-256 before they are read.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from pathviz.cohort import Cohort
from pathviz.errors import PathVizError
from pathviz.risk.stored import StoredRiskModel
from pathviz.store.registry import Manifest, ModelRegistry, RegistryError

#: Registry kinds that give a per-patient risk score, in the order the patient page offers them.
RISK_KINDS = ("pagenet", "coxpasnet")


def chosen_risk_versions(registry: ModelRegistry, cohort: str) -> dict[str, Manifest]:
    """``{kind: Manifest}`` of the version each risk kind uses for ``cohort`` (models are named
    by their cohort, ``<cohort>.<endpoint>`` for a non-primary endpoint:
    :func:`~pathviz.cohort.endpoint_model_name`), for the kinds that have one."""
    out = {}
    for kind in RISK_KINDS:
        try:
            out[kind] = registry.get(f"{kind}/{cohort}")
        except RegistryError:
            continue
    return out


def version_label(registry: ModelRegistry, man: Manifest) -> str:
    """``coxpasnet/gse1992@v0002 (production)`` or ``... (newest; no production alias)``."""
    prod = registry.aliases(man.kind, man.name).get("production")
    why = "production" if prod == man.version else ("newest; no production alias" if prod is None else "explicit version")
    return f"{man.ref} ({why})"


def load_registered_risk(registry: ModelRegistry, ref: str, cohort: Cohort) -> StoredRiskModel:
    """The risk model of a registry version for ``cohort``'s patients.

    Args:
        ref: ``pagenet/NAME[@VERSION|@ALIAS]`` or ``coxpasnet/NAME[@...]``.
        cohort: the cohort whose patients are scored (must be the one the version was trained on
            for its split labels to hold).

    Raises:
        RegistryError: unknown version, tampered or missing file.
        PathVizError: a kind that gives no risk score, or a cohort the version was not trained on.
    """
    man = registry.get(ref)
    folder = registry.path(man.ref)  # verified
    if man.cohort and man.cohort != cohort.name:
        raise PathVizError(f"{man.ref} was trained on {man.cohort!r}, not {cohort.name!r}.",
                           f"choose a {man.kind} version trained on {cohort.name}.")
    if man.data_digest:
        from pathviz.cohort import cohort_digest

        if cohort_digest(cohort) != man.data_digest:
            raise PathVizError(f"{man.ref} was trained on other data than today's {cohort.name!r} (digest {man.data_digest} "
                               f"vs {cohort_digest(cohort)}): its held-out patients no longer match.",
                               f"train a new {man.kind} version on {cohort.name} (admin page).")
    label = version_label(registry, man)
    if man.kind == "pagenet":
        model = StoredRiskModel.from_pagenet(folder)
        model.label, model.description = f"PAGE-Net {man.version}", f"{label}. {model.description}"
        return model
    if man.kind == "coxpasnet":
        from pathviz.risk.coxpasnet import CoxPASNetModel

        from pathviz.risk.base import restrict_to_omics

        net = CoxPASNetModel.load(folder)
        # the patients the version could use: those with expression, unless it was trained with imputation
        cohort, _ = restrict_to_omics(cohort, net.missing_omics, "Cox-PASNet")
        pi = net.predict_risk(cohort.clinical, cohort.omics)
        preds = pd.read_csv(folder / "validation_predictions.csv")
        first = preds[preds["split_seed"] == preds["split_seed"].iloc[0]]
        held = set(first["patient_id"].astype(str))
        ids = cohort.clinical.index.astype(str)
        table = pd.DataFrame({"prognostic_index": pi, "split": np.where(ids.isin(held), "test", "train"),
                              "time": cohort.time, "event": cohort.event}, index=cohort.clinical.index)
        metrics = json.loads((folder / "metrics.json").read_text())
        h = metrics.get("held_out") or {}
        desc = (f"{label}: Cox-PASNet (genes -> pathways -> Cox, {man.params.get('genesets', '?')} gene sets), split seed "
                f"{man.split_seed}; held-out C-index {h.get('c_index', float('nan')):.3f} over {len(h.get('splits') or [0])} split(s).")
        return StoredRiskModel(table, f"Cox-PASNet {man.version}", desc, metrics.get("inner_validation_c_index", float("nan")),
                               metrics)
    raise PathVizError(f"{man.kind} models give no per-patient risk score.", f"choose one of {', '.join(RISK_KINDS)}.")
