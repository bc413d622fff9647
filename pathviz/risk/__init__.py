"""Risk models with one interface (fit / predict_risk / predict_survival_function)."""

from pathviz.risk.base import RiskModel, TabularPreprocessor
from pathviz.risk.coxnet import (
    CoxnetRiskModel,
    default_covariates,
    fit_cohort_risk,
    stratified_folds,
    train_validation_split,
)

__all__ = ["CoxnetRiskModel", "RiskModel", "TabularPreprocessor", "default_covariates", "fit_cohort_risk",
           "stratified_folds", "train_validation_split"]
