"""Cohorts: the validated patient table (survival, clinical, markers, treatment, centre) and omics."""

from pathviz.cohort.endpoints import Endpoint, OutcomeLeakageError, check_no_outcome_features, looks_like_outcome
from pathviz.cohort.loaders import (
    MARKER_THRESHOLDS,
    available_cohorts,
    endpoint_model_name,
    load_csv,
    load_cohort,
    load_cohort_endpoint,
    load_gbsg2,
    load_survset,
    load_tcga,
    shared_data_dir,
)
from pathviz.cohort.schema import Cohort, CohortError, cohort_digest, validate_clinical

__all__ = [
    "cohort_digest",
    "MARKER_THRESHOLDS",
    "Cohort",
    "CohortError",
    "Endpoint",
    "OutcomeLeakageError",
    "check_no_outcome_features",
    "looks_like_outcome",
    "available_cohorts",
    "load_cohort",
    "load_cohort_endpoint",
    "endpoint_model_name",
    "load_csv",
    "load_gbsg2",
    "load_survset",
    "load_tcga",
    "shared_data_dir",
    "validate_clinical",
]
