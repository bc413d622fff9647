"""Risk scores computed once by a trained model and read back per patient: PAGE-Net's prognostic
index (``prognostic_index.csv`` of ``pathviz train pagenet``). The patient page uses it like any
risk model (predict_risk / predict_survival_function), so its strata, KM, marker and treatment
panels run on PAGE-Net's groups.

Split convention: the model's ``train`` and ``validation`` patients are the ones it was fitted on
(the page's "training"); its ``test`` patients are held out (the page's "validation").
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from pathviz.errors import PathVizError
from pathviz.risk.base import RiskModel
from pathviz.risk.breslow import BreslowBaseline, fit_breslow


class StoredRiskModel(RiskModel):
    """A risk model whose scores were computed by a trained model (see module docstring).

    Attributes: ``table`` (index patient_id: ``prognostic_index``, ``split``, ``time``, ``event``),
    ``label`` and ``description`` (shown by the page), ``cv_c_index_`` (the model's validation
    C-index while fitting), ``metrics`` (the model's metrics.json), ``baseline_``
    (:class:`~pathviz.risk.breslow.BreslowBaseline` on the fitted patients).
    """

    REQUIRED = ("prognostic_index", "split", "time", "event")

    def __init__(self, table: pd.DataFrame, label: str, description: str, cv_c_index: float, metrics: dict | None = None):
        """Raises:
            PathVizError: missing columns, a non-numeric or missing prognostic index, unknown split
            labels, or no fitted (train / validation) patients.
        """
        missing = [c for c in self.REQUIRED if c not in table.columns]
        if missing:
            raise PathVizError(f"The stored scores of {label} misses columns {', '.join(missing)}.",
                               "retrain the model; its prognostic_index.csv is incomplete.")
        pi = pd.to_numeric(table["prognostic_index"], errors="coerce")
        if pi.isna().any():
            bad = table.index[pi.isna()][:5].tolist()
            raise PathVizError(f"{label} has a missing or non-numeric prognostic index for {', '.join(map(str, bad))}.",
                               "retrain the model.")
        unknown = set(table["split"]) - {"train", "validation", "test"}
        if unknown or not table["split"].isin(["train", "validation"]).any():
            raise PathVizError(f"{label}'s split labels {sorted(map(str, unknown)) or '(no fitted patients)'} are not "
                               "train / validation / test.", "retrain the model.")
        self.table = table.assign(prognostic_index=pi)
        self.label, self.description = label, description
        self.cv_c_index_ = float(cv_c_index)
        self.metrics = metrics or {}
        fitted = self.table[self.table["split"].isin(["train", "validation"])]
        self.fit(fitted, None, fitted["time"], fitted["event"])

    def fit(self, clinical: pd.DataFrame, omics: pd.DataFrame | None, time, event) -> "StoredRiskModel":
        """Fit the Breslow baseline (:func:`~pathviz.risk.breslow.fit_breslow`) of the stored index
        on ``clinical``'s patients (index patient_id) with their ``time`` (months) and ``event``
        (0/1). The index itself was fitted by the trained model and is not changed. The
        constructor calls it on the model's fitted (train + validation) patients.

        Raises:
            PathVizError: a patient the model did not score.
        """
        self.baseline_: BreslowBaseline = fit_breslow(self.predict_risk(clinical), time, event)
        return self

    @classmethod
    def from_pagenet(cls, folder: str | Path) -> "StoredRiskModel":
        """Read a folder written by ``pathviz train pagenet``.

        Raises:
            PathVizError: the folder has no ``prognostic_index.csv`` / ``metrics.json``.
        """
        folder = Path(folder)
        if not (folder / "prognostic_index.csv").exists() or not (folder / "metrics.json").exists():
            raise PathVizError(f"No trained PAGE-Net model in {folder}.", "train one with `pathviz train pagenet --cohort demo`.",
                               folder)
        table = pd.read_csv(folder / "prognostic_index.csv").set_index("patient_id")
        m = json.loads((folder / "metrics.json").read_text())
        c = m.get("test_c_index", {})
        desc = (f"PAGE-Net (slides + gene expression + age), feature version {m.get('version')}, split seed {m.get('seed')}; "
                f"held-out test C-index {c.get('pagenet', float('nan')):.3f} (Cox-PASNet {c.get('coxpasnet', float('nan')):.3f}, "
                f"image-only Cox-EN {c.get('image_cox_en', float('nan')):.3f}).")
        return cls(table, "PAGE-Net", desc, m.get("val_c_index", float("nan")), m)

    def held_out(self):
        """Held-out (test) C-index with its 95% bootstrap CI and chance verdict
        (:func:`pathviz.survival.chance.held_out_c_index`, fixed resamples and seed).

        Raises:
            PathVizError: the stored table has no test patients.
        """
        from pathviz.survival.chance import held_out_c_index

        test = self.table[self.table["split"] == "test"]
        if test.empty:
            raise PathVizError(f"{self.label} has no held-out test patients.", "retrain it with a test split.")
        return held_out_c_index([(test["time"].to_numpy(float), test["event"].to_numpy(int),
                                  test["prognostic_index"].to_numpy(float))])

    def page_split(self) -> pd.Series:
        """The page's split labels: ``training`` (model train + validation) or ``validation`` (test)."""
        return self.table["split"].map({"train": "training", "validation": "training", "test": "validation"})

    def predict_risk(self, clinical: pd.DataFrame, omics: pd.DataFrame | None = None) -> np.ndarray:
        """The stored prognostic index of ``clinical``'s patients (index patient_id).

        Raises:
            PathVizError: a patient the model did not score.
        """
        missing = [p for p in clinical.index if p not in self.table.index]
        if missing:
            raise PathVizError(f"{self.label} has no score for {len(missing)} patient(s): {', '.join(map(str, missing[:5]))}.",
                               "retrain the model on this cohort.")
        return self.table.loc[clinical.index, "prognostic_index"].to_numpy(float)

    def predict_survival_function(self, clinical: pd.DataFrame, omics: pd.DataFrame | None, times) -> np.ndarray:
        """S(t) per patient at ``times`` (months), Breslow baseline on the fitted patients:
        ``float[n, len(times)]`` in [0, 1], non-increasing along ascending ``times``.

        Raises:
            PathVizError: a patient the model did not score.
        """
        return self.baseline_.survival_function(self.predict_risk(clinical), times)
