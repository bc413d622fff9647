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
    filter), mean imputation of single missing values. Every column is then z-scored with the
    training mean and sd; constant training columns are dropped and reported in ``dropped_``.

    A patient with no expression profile at all (no row in ``omics``) is refused with
    ``missing_omics="exclude"`` (the default: a readable PathVizError with the count, never a
    silent score from training means); with ``missing_omics="impute"`` their genes become the
    training-row means and ``n_imputed_`` counts them (last :meth:`fit` / :meth:`transform`).
    """

    def __init__(self, clinical: list[str], genes: bool = True, max_genes: int = 500,
                 outcome_columns: Iterable[str] = (), allowed_covariates: Iterable[str] = (),
                 missing_omics: str = "exclude"):
        self.missing_omics = check_missing_omics(missing_omics)
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
            if not len(o):
                raise PathVizError(f"None of the {len(clinical)} training patients has an expression profile.",
                                   "fit on patients with expression (missing_omics='exclude' leaves the others out), "
                                   "or use clinical covariates only (use_genes=False).")
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
            absent = ~clinical.index.isin(omics.index)
            self.n_imputed_ = int(absent.sum())
            if self.n_imputed_ and self.missing_omics != "impute":
                raise PathVizError(
                    f"{self.n_imputed_} of {len(clinical)} patients have no expression profile; the model uses genes.",
                    "leave them out before fitting or scoring (missing_omics='exclude', e.g. "
                    "pathviz.risk.restrict_to_omics), or ask for training-mean imputation with missing_omics='impute'.")
            g = omics.reindex(index=clinical.index, columns=self.genes_).astype(float)
            parts.append(g.fillna(self.gene_means_))
        return pd.concat(parts, axis=1) if parts else pd.DataFrame(index=clinical.index)

    def transform(self, clinical: pd.DataFrame, omics: pd.DataFrame | None) -> pd.DataFrame:
        """The design matrix of ``clinical``'s patients with the training imputation, levels,
        genes and z-scoring: DataFrame ``float[n, len(columns_)]`` (index as ``clinical``).

        Raises:
            PathVizError: the model uses genes and ``omics`` is None, or a patient has no
                expression profile and ``missing_omics`` is ``"exclude"``.
        """
        raw = self._raw(clinical, omics).reindex(columns=self.columns_, fill_value=0.0)
        return (raw - self.mean_[self.columns_]) / self.sd_[self.columns_]


#: How a model treats patients without an expression profile: ``"exclude"`` (default: left out
#: before any split, counted) or ``"impute"`` (training-row means, only when asked).
MISSING_OMICS = ("exclude", "impute")


def check_missing_omics(missing_omics: str) -> str:
    """``missing_omics`` checked against :data:`MISSING_OMICS`.

    Raises:
        PathVizError: any other value.
    """
    if missing_omics not in MISSING_OMICS:
        raise PathVizError(f"missing_omics={missing_omics!r} is not a way to handle patients without expression.",
                           "use missing_omics='exclude' (leave them out, the default) or 'impute' (training-row means).")
    return missing_omics


def omics_coverage(clinical: pd.DataFrame, omics: pd.DataFrame | None, missing_omics: str = "exclude",
                   model: str = "the model", cohort: str = "") -> tuple[np.ndarray, dict]:
    """Which patients of ``clinical`` have an expression profile, and what a model does with the others.

    Called once per cohort, BEFORE any train/validation split: with ``"exclude"`` the model is
    fitted and evaluated on the patients with expression only; with ``"impute"`` every patient is
    kept and the missing profiles become training-row means (the model's own preprocessing).

    Args:
        clinical: the cohort's clinical table (index patient_id), ``n`` rows.
        omics: patients x genes (may cover only part of ``clinical``), or None.
        missing_omics: ``"exclude"`` or ``"impute"`` (:data:`MISSING_OMICS`).
        model: the model's name, for messages; cohort: the cohort's name, for messages.

    Returns:
        ``(keep, record)``: ``keep`` bool[n], the patients the model uses (those with expression
        for ``"exclude"``, all for ``"impute"``); ``record`` a JSON-ready dict with
        ``missing_omics``, ``n_patients``, ``n_with_omics``, ``n_no_omics``, ``n_excluded_no_omics``
        and ``n_imputed_no_omics`` (counts only, never patient ids), shown by
        :func:`omics_coverage_text`.

    Raises:
        PathVizError: ``missing_omics`` unknown, or no patient of ``clinical`` has expression (the
            message says what and how to fix it; it names no patient).
    """
    check_missing_omics(missing_omics)
    has = (clinical.index.isin(omics.index) if omics is not None else np.zeros(len(clinical), bool))
    has = np.asarray(has, bool)
    where = f"Cohort {cohort!r}" if cohort else "The cohort"
    if not has.any():
        raise PathVizError(
            f"{where}: none of its {len(clinical)} patients has an expression (RNA) profile, which {model} needs.",
            "add an expression matrix (patients x genes, indexed by the clinical patient ids) covering at least "
            "part of the cohort, or choose a cohort with expression.")
    n_no = int((~has).sum())
    keep = has.copy() if missing_omics == "exclude" else np.ones(len(clinical), bool)
    record = {"missing_omics": missing_omics, "n_patients": int(len(clinical)), "n_with_omics": int(has.sum()),
              "n_no_omics": n_no, "n_excluded_no_omics": n_no if missing_omics == "exclude" else 0,
              "n_imputed_no_omics": n_no if missing_omics == "impute" else 0}
    return keep, record


def omics_coverage_text(record: dict | None) -> str:
    """One line for the CLI and figures from an :func:`omics_coverage` record, e.g.
    ``333 of 480 patients have no RNA and were left out (missing_omics=exclude)``; "" when every
    patient has expression or ``record`` is None/empty."""
    if not record or not record.get("n_no_omics"):
        return ""
    n, of = record["n_no_omics"], record["n_patients"]
    if record.get("missing_omics") == "impute":
        return (f"{n} of {of} patients have no RNA; their expression was imputed with training-row means "
                "(missing_omics=impute)")
    return f"{n} of {of} patients have no RNA and were left out (missing_omics=exclude)"


def restrict_to_omics(cohort, missing_omics: str = "exclude", model: str = "the model"):
    """The cohort a model with expression inputs is fitted and evaluated on, decided before any split.

    Args:
        cohort: a :class:`~pathviz.cohort.Cohort` (its ``omics`` may cover only part of the patients).
        missing_omics: ``"exclude"`` (default): a new Cohort with the same declarations restricted
            to the patients with an expression profile; ``"impute"``: the cohort unchanged (the
            model imputes training-row means).
        model: the model's name, for messages.

    Returns:
        ``(cohort, record)``: ``record`` as :func:`omics_coverage` (counts only).

    Raises:
        PathVizError: as :func:`omics_coverage` (no patient with expression, unknown option).
    """
    import dataclasses

    keep, record = omics_coverage(cohort.clinical, cohort.omics, missing_omics, model, cohort.name)
    if keep.all():
        return cohort, record
    return dataclasses.replace(cohort, clinical=cohort.clinical[keep], omics=cohort.omics), record
