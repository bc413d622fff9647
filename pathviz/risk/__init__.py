"""Risk models with one interface (fit / predict_risk / predict_survival_function)."""

from pathviz.risk.base import RiskModel, TabularPreprocessor
from pathviz.risk.coxnet import (
    CoxnetRiskModel,
    default_covariates,
    fit_cohort_risk,
    stratified_folds,
    train_validation_split,
)
from pathviz.risk.stored import StoredRiskModel, breslow_cumulative_hazard

__all__ = ["CoxnetRiskModel", "RiskModel", "StoredRiskModel", "breslow_cumulative_hazard", "TabularPreprocessor", "default_covariates", "fit_cohort_risk",
           "stratified_folds", "train_validation_split"]
