"""Penalised Cox regression (elastic net; Simon et al., J Stat Softw 2011, "Regularization paths
for Cox's proportional hazards model via coordinate descent") via scikit-survival's
``CoxnetSurvivalAnalysis``. The penalty strength is chosen by K-fold cross-validated Harrell's C
on the training data only; the final model is refitted on all training rows at that alpha. Survival
functions use the shared Breslow baseline (:mod:`pathviz.risk.breslow`) of the training rows'
prognostic index.

The split helpers :func:`stratified_folds` and :func:`train_validation_split` live in
:mod:`pathviz.survival.splits` and are re-exported here for existing callers.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from pathviz.cohort.schema import Cohort
from pathviz.errors import PathVizError
from pathviz.risk.base import RiskModel, TabularPreprocessor, check_missing_omics, restrict_to_omics
from pathviz.risk.breslow import BreslowBaseline, fit_breslow
from pathviz.survival.concordance import harrell_c
from pathviz.survival.splits import stratified_folds, train_validation_split

__all__ = ["CoxnetRiskModel", "default_covariates", "fit_cohort_risk", "stratified_folds", "train_validation_split"]


class CoxnetRiskModel(RiskModel):
    """Elastic-net Cox on clinical covariates + expression.

    Args:
        clinical: clinical covariate columns to use (empty = genes only).
        use_genes: include the expression matrix (the ``max_genes`` most variable genes).
        l1_ratio: elastic-net mixing (1 = lasso, near 0 = ridge).
        n_folds: CV folds for choosing alpha (training data only).
        clinical_penalty: penalty factor of clinical covariates relative to genes (glmnet's
            ``penalty.factor``); small, so a few known prognostic factors are not out-shrunk by
            hundreds of genes.
        max_genes: unsupervised variance pre-filter on training data.
        seed: CV fold seed (recorded).
        outcome_columns: the cohort's outcome columns (:attr:`Cohort.outcome_columns`); requesting
            one of them (or a column whose name reads like an outcome) as a covariate raises
            :class:`~pathviz.cohort.OutcomeLeakageError` at fit time.
        allowed_covariates: columns cleared by the cohort despite outcome-like names.
        missing_omics: patients with no expression profile (with ``use_genes``): ``"exclude"``
            (default: fit/predict refuse them with a readable PathVizError; leave them out first,
            :func:`~pathviz.risk.base.restrict_to_omics`) or ``"impute"`` (training-row gene means;
            ``n_imputed_`` counts the imputed patients of the last fit/predict).

    Attributes (after fit): ``alpha_``, ``cv_c_index_`` (mean CV C at alpha_), ``coef_``
    (Series, standardised features), ``preprocessor_``, ``baseline_`` (Breslow baseline of the
    training rows, :class:`~pathviz.risk.breslow.BreslowBaseline`).
    """

    def __init__(self, clinical: list[str] | None = None, use_genes: bool = True, l1_ratio: float = 0.5,
                 n_folds: int = 5, max_genes: int = 500, clinical_penalty: float = 0.1, seed: int = 0,
                 outcome_columns=(), allowed_covariates=(), missing_omics: str = "exclude"):
        self.missing_omics = check_missing_omics(missing_omics)
        self.outcome_columns = tuple(outcome_columns)
        self.allowed_covariates = tuple(allowed_covariates)
        self.clinical_penalty = clinical_penalty
        self.clinical = list(clinical or [])
        self.use_genes = use_genes
        self.l1_ratio = l1_ratio
        self.n_folds = n_folds
        self.max_genes = max_genes
        self.seed = seed

    @staticmethod
    def _y(time, event):
        from sksurv.util import Surv

        return Surv.from_arrays(event=np.asarray(event).astype(bool), time=np.asarray(time, float))

    def _fit_path(self, X: np.ndarray, time, event, alphas=None, alpha_min_ratio: float = 0.05):
        from sksurv.linear_model import CoxnetSurvivalAnalysis

        model = CoxnetSurvivalAnalysis(l1_ratio=self.l1_ratio, alphas=alphas, n_alphas=50, alpha_min_ratio=alpha_min_ratio,
                                       penalty_factor=self._penalty, fit_baseline_model=False, max_iter=100000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X, self._y(time, event))
        return model

    def _fit_path_safe(self, X: np.ndarray, time, event, alphas):
        """Fit the path; where the smallest penalties overflow (p >> n), drop them and refit."""
        alphas = list(alphas)
        while True:
            try:
                return self._fit_path(X, time, event, alphas=alphas)
            except ArithmeticError:
                if len(alphas) <= 2:
                    raise PathVizError("The elastic-net Cox fit overflowed even at strong penalties.",
                                       "use fewer genes (max_genes) or a larger l1_ratio.") from None
                alphas = alphas[: max(2, int(len(alphas) * 0.75))]

    def _penalties(self, pre: TabularPreprocessor) -> np.ndarray:
        genes = set(pre.genes_)
        return np.array([1.0 if c in genes else self.clinical_penalty for c in pre.columns_])

    def _preprocessor(self) -> TabularPreprocessor:
        return TabularPreprocessor(self.clinical, self.use_genes, self.max_genes, self.outcome_columns,
                                   self.allowed_covariates, self.missing_omics)

    @property
    def feature_names_(self) -> list[str]:
        """The design matrix's columns after fit (clinical, one-hot ``col=level``, genes)."""
        return list(self.preprocessor_.columns_)

    def fit(self, clinical: pd.DataFrame, omics: pd.DataFrame | None, time, event) -> "CoxnetRiskModel":
        """Fit on training rows (``clinical`` indexed by patient_id; ``omics`` patients x genes, may
        be None; ``time`` float[n] months; ``event`` int[n] 0/1).

        Raises:
            OutcomeLeakageError: an outcome column among the covariates.
            PathVizError: fewer than 5 training events, or no fittable path; a training patient
                without expression while the model uses genes and ``missing_omics="exclude"``.
        """
        time, event = np.asarray(time, float), np.asarray(event, int)
        if event.sum() < 5:
            raise PathVizError(f"Only {event.sum()} events in the training data.", "a Cox model needs more events (>= 5).")
        self.preprocessor_ = self._preprocessor().fit(clinical, omics)
        X = self.preprocessor_.transform(clinical, omics).to_numpy()
        self.n_imputed_ = int(getattr(self.preprocessor_, "n_imputed_", 0))
        self._penalty = self._penalties(self.preprocessor_)
        alphas = None
        for ratio in (0.05, 0.1, 0.2, 0.4):  # shorten the path where the weakest penalties overflow
            try:
                alphas = self._fit_path(X, time, event, alpha_min_ratio=ratio).alphas_
                break
            except ArithmeticError:
                continue
        if alphas is None:
            raise PathVizError("The elastic-net Cox path could not be fitted.", "use fewer genes or more events.")
        folds = stratified_folds(event, self.n_folds, self.seed)
        scores = np.full((self.n_folds, len(alphas)), np.nan)
        for k, test in enumerate(folds):
            train = np.setdiff1d(np.arange(len(time)), test)
            pre = self._preprocessor().fit(clinical.iloc[train], omics)
            Xtr = pre.transform(clinical.iloc[train], omics).to_numpy()
            Xte = pre.transform(clinical.iloc[test], omics).to_numpy()
            self._penalty = self._penalties(pre)
            m = self._fit_path_safe(Xtr, time[train], event[train], alphas)
            for a_i in range(len(m.alphas_)):
                risk = Xte @ m.coef_[:, a_i]
                if event[test].sum() and np.ptp(risk) > 0:
                    scores[k, a_i] = harrell_c(time[test], event[test], risk).c_index
        self._penalty = self._penalties(self.preprocessor_)
        self.model_ = self._fit_path_safe(X, time, event, alphas)
        usable = len(self.model_.alphas_)
        mean = np.nanmean(np.where(np.isnan(scores), 0.5, scores), axis=0)[:usable]
        best = int(np.argmax(mean))
        self.alpha_ = float(self.model_.alphas_[best])
        self.cv_c_index_ = float(mean[best])
        self.coef_ = pd.Series(self.model_.coef_[:, best], index=self.preprocessor_.columns_)
        self.baseline_: BreslowBaseline = fit_breslow(X @ self.coef_.to_numpy(), time, event)
        return self

    def predict_risk(self, clinical: pd.DataFrame, omics: pd.DataFrame | None = None) -> np.ndarray:
        """Prognostic index (linear predictor) per patient: float[n]; higher = worse.

        Raises:
            PathVizError: the model uses genes and ``omics`` is None, or a patient has no
                expression profile and ``missing_omics="exclude"``.
        """
        X = self.preprocessor_.transform(clinical, omics).to_numpy()
        self.n_imputed_ = int(getattr(self.preprocessor_, "n_imputed_", 0))
        return X @ self.coef_.to_numpy()

    def predict_survival_function(self, clinical: pd.DataFrame, omics: pd.DataFrame | None, times) -> np.ndarray:
        """S(t) per patient at ``times`` (months): ``float[n, len(times)]`` in [0, 1], non-increasing
        along ascending ``times``; Breslow baseline of the training rows
        (:meth:`~pathviz.risk.breslow.BreslowBaseline.survival_function`: 1 before the first
        training time, constant after the last).

        Raises:
            PathVizError: the model uses genes and ``omics`` is None.
        """
        return self.baseline_.survival_function(self.predict_risk(clinical, omics), times)

    def selected_features(self) -> pd.Series:
        """Non-zero coefficients (standardised features), largest magnitude first."""
        nz = self.coef_[self.coef_ != 0]
        return nz.reindex(nz.abs().sort_values(ascending=False).index)


def fit_cohort_risk(cohort: Cohort, clinical: list[str] | None = None, use_genes: bool = True,
                    validation_fraction: float = 0.3, seed: int = 0, missing_omics: str = "exclude",
                    **kw) -> tuple[CoxnetRiskModel, pd.DataFrame]:
    """Fit the penalised Cox on a training split of a cohort
    (:func:`~pathviz.survival.splits.train_validation_split`, stratified by event, seeded) and
    score every patient it uses. ``kw`` goes to :class:`CoxnetRiskModel`.

    With genes (``use_genes`` and a cohort with expression), patients without an expression
    profile are handled BEFORE the split (:func:`~pathviz.risk.base.restrict_to_omics`):
    ``missing_omics="exclude"`` (default) leaves them out, ``"impute"`` keeps them with training-row
    gene means. ``model.omics_coverage_`` records the counts (``n_excluded_no_omics``,
    ``n_imputed_no_omics``...; None without genes).

    Raises:
        OutcomeLeakageError, PathVizError: as :meth:`CoxnetRiskModel.fit`; PathVizError also when no
            patient has expression while genes are asked for.

    Returns:
        ``(model, table)``: table indexed by patient_id (the patients used: all of them, or those
        with expression under ``"exclude"``) with ``time``, ``event``, ``risk``, ``split``
        (``training``/``validation``).
    """
    genes = use_genes and cohort.omics is not None
    coverage = None
    if genes:
        cohort, coverage = restrict_to_omics(cohort, missing_omics, "the elastic-net Cox")
    clin = cohort.clinical
    covs = [c for c in (clinical if clinical is not None else default_covariates(cohort))]
    train, val = train_validation_split(cohort.event, validation_fraction, seed)
    model = CoxnetRiskModel(covs, genes, seed=seed, outcome_columns=cohort.outcome_columns,
                            allowed_covariates=cohort.allowed_covariates, missing_omics=missing_omics, **kw)
    model.fit(clin[train], cohort.omics, cohort.time[train], cohort.event[train])
    model.omics_coverage_ = coverage
    table = clin[["time", "event"]].copy()
    table["risk"] = model.predict_risk(clin, cohort.omics)
    table["split"] = np.where(train, "training", "validation")
    return model, table


def default_covariates(cohort: Cohort) -> list[str]:
    """Clinical covariates for the elastic-net risk model: the cohort's clinical covariates
    (never an outcome, identifier or serum marker: :meth:`Cohort.clinical_covariates`) minus
    identifiers of care (treatment, centre), free-text-like columns with many levels and columns
    missing for more than 30 % of patients."""
    out = []
    for c in cohort.clinical_covariates():
        if c in (cohort.treatment, cohort.centre):
            continue
        col = cohort.clinical[c]
        if not pd.api.types.is_numeric_dtype(col) and col.nunique() > 8:
            continue
        if col.isna().mean() > 0.3:
            continue
        out.append(c)
    return out
