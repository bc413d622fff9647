"""The risk-model interface every PathViz survival model implements, and the feature preprocessing
fitted on training data only.

Interface (scikit-learn style: hyper-parameters in ``__init__``, data in ``fit``, learned state
ends in ``_``); ``clinical`` is indexed by patient_id, ``omics`` is patients x genes (or None)::

    model.fit(clinical, omics, time, event)                  -> self
    model.predict_risk(clinical, omics)                      -> float[n]   higher = worse prognosis
    model.predict_survival_function(clinical, omics, times)  -> float[n, len(times)]  S(t) per patient

Implementations: :class:`~pathviz.risk.coxnet.CoxnetRiskModel` (elastic-net Cox),
:class:`~pathviz.risk.stored.StoredRiskModel` (a trained model's stored index, e.g. PAGE-Net) and
:class:`~pathviz.risk.coxpasnet.CoxPASNetModel` (Cox-PASNet). All of them derive their survival
functions from the shared Breslow baseline (:mod:`pathviz.risk.breslow`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterable

import numpy as np
import pandas as pd

from pathviz.cohort.endpoints import check_no_outcome_features
from pathviz.errors import PathVizError


class RiskModel(ABC):
    """Abstract base class of PathViz survival models (see module docstring).

    Subclasses implement the three methods with these signatures; the patient page, the
    stratification (:mod:`pathviz.risk.stratify`) and the CLI use only them (plus ``cv_c_index_``,
    the model's own cross-/inner-validation C-index where it has one).
    """

    @abstractmethod
    def fit(self, clinical: pd.DataFrame, omics: pd.DataFrame | None, time, event) -> "RiskModel":
        """Fit on training patients.

        Args:
            clinical: training patients' clinical table (index patient_id).
            omics: expression matrix (patients x genes; may hold more patients) or None.
            time: ``float[n]`` follow-up in months; event: ``int[n]`` 1 = event, 0 = censored.

        Returns:
            ``self``.
        """

    @abstractmethod
    def predict_risk(self, clinical: pd.DataFrame, omics: pd.DataFrame | None = None) -> np.ndarray:
        """Prognostic index (log relative hazard) of ``clinical``'s patients: ``float[n]``,
        higher = worse prognosis."""

    @abstractmethod
    def predict_survival_function(self, clinical: pd.DataFrame, omics: pd.DataFrame | None, times) -> np.ndarray:
        """Predicted survival ``S(t | patient)`` at ``times`` (months): ``float[n, len(times)]``,
        values in [0, 1], non-increasing along ascending ``times``."""


class TabularPreprocessor:
    """Clinical + omics features -> a standardised numeric matrix, fitted on training rows only.

    Numeric clinical columns: median imputation; categorical ones: one-hot (levels seen in
    training; missing -> all zeros); genes: the ``max_genes`` most variable in training (unsupervised
    filter), mean imputation. Every column is then z-scored with the training mean and sd; constant
    training columns are dropped and reported in ``dropped_``.
    """

    def __init__(self, clinical: list[str], genes: bool = True, max_genes: int = 500,
                 outcome_columns: Iterable[str] = (), allowed_covariates: Iterable[str] = ()):
        self.clinical = clinical
        self.genes = genes
        self.max_genes = max_genes
        self.outcome_columns = tuple(outcome_columns)
        self.allowed_covariates = tuple(allowed_covariates)

    def fit(self, clinical: pd.DataFrame, omics: pd.DataFrame | None) -> "TabularPreprocessor":
        """Learn imputation, levels, gene filter and scaling on training rows.

        Raises:
            OutcomeLeakageError: a requested clinical covariate is an outcome column (``time``,
                ``event``, a declared endpoint or derived outcome, or a name that reads like one);
                the guard of :mod:`pathviz.cohort.endpoints`, applied where the design matrix is built.
            PathVizError: no usable (non-constant) feature.
        """
        check_no_outcome_features(self.clinical, self.outcome_columns, where="the risk model's design matrix",
                                  allowed=self.allowed_covariates)
        if omics is not None and self.genes:
            leaked = sorted({"time", "event", *self.outcome_columns} & set(map(str, omics.columns)))
            if leaked:
                check_no_outcome_features(leaked, self.outcome_columns, where="the risk model's omics features")
        self.numeric_ = [c for c in self.clinical if pd.api.types.is_numeric_dtype(clinical[c])]
        self.categorical_ = {
            c: sorted(map(str, clinical[c].dropna().unique())) for c in self.clinical if c not in self.numeric_
        }
        self.medians_ = clinical[self.numeric_].median() if self.numeric_ else pd.Series(dtype=float)
        self.genes_: list[str] = []
        if self.genes and omics is not None:
            o = omics.loc[omics.index.intersection(clinical.index)]
            var = o.var(axis=0, skipna=True).sort_values(ascending=False)
            self.genes_ = list(var.index[: self.max_genes][var.iloc[: self.max_genes] > 0])
            self.gene_means_ = o[self.genes_].mean()
        raw = self._raw(clinical, omics)
        self.mean_ = raw.mean()
        self.sd_ = raw.std(ddof=0)
        self.dropped_ = list(self.sd_.index[~(self.sd_ > 0)])
        self.columns_ = [c for c in raw.columns if c not in self.dropped_]
        if not self.columns_:
            raise PathVizError("No usable feature: every candidate column is constant on the training data.",
                               "add covariates or genes.")
        return self

    def _raw(self, clinical: pd.DataFrame, omics: pd.DataFrame | None) -> pd.DataFrame:
        parts = []
        if self.numeric_:
            parts.append(clinical[self.numeric_].astype(float).fillna(self.medians_))
        for c, levels in self.categorical_.items():
            s = clinical[c].astype("object").map(lambda v: None if pd.isna(v) else str(v))
            parts.append(pd.DataFrame({f"{c}={lev}": (s == lev).astype(float) for lev in levels[1:]}, index=clinical.index))
        if self.genes_:
            if omics is None:
                raise PathVizError("The model uses genes but no expression matrix was given.", "pass the cohort's omics.")
            g = omics.reindex(index=clinical.index, columns=self.genes_).astype(float)
            parts.append(g.fillna(self.gene_means_))
        return pd.concat(parts, axis=1) if parts else pd.DataFrame(index=clinical.index)

    def transform(self, clinical: pd.DataFrame, omics: pd.DataFrame | None) -> pd.DataFrame:
        """The design matrix of ``clinical``'s patients with the training imputation, levels,
        genes and z-scoring: DataFrame ``float[n, len(columns_)]`` (index as ``clinical``).

        Raises:
            PathVizError: the model uses genes and ``omics`` is None.
        """
        raw = self._raw(clinical, omics).reindex(columns=self.columns_, fill_value=0.0)
        return (raw - self.mean_[self.columns_]) / self.sd_[self.columns_]
