"""Cohorts: the validated patient table (survival, clinical, markers, treatment, centre) and omics."""

from pathviz.cohort.loaders import (
    MARKER_THRESHOLDS,
    available_cohorts,
    load_csv,
    load_cohort,
    load_gbsg2,
    load_survset,
    load_tcga,
    shared_data_dir,
)
from pathviz.cohort.schema import Cohort, CohortError, validate_clinical

__all__ = [
    "MARKER_THRESHOLDS",
    "Cohort",
    "CohortError",
    "available_cohorts",
    "load_cohort",
    "load_csv",
    "load_gbsg2",
    "load_survset",
    "load_tcga",
    "shared_data_dir",
    "validate_clinical",
]
