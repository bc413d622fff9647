"""The outcome-leakage guard: no endpoint's time or event (nor anything derived from outcomes) ever
reaches a model's features, on every registered cohort and for every risk model; a planted leak
is refused with a clear error where the design matrix is built."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pathviz.cohort import (
    Cohort,
    Endpoint,
    OutcomeLeakageError,
    available_cohorts,
    load_cohort,
    looks_like_outcome,
)
from pathviz.cohort.demo import load_demo_cohort
from pathviz.genomics import default_library
from pathviz.risk.coxpasnet import CoxPASNetModel
from pathviz.risk import CoxnetRiskModel, TabularPreprocessor, default_covariates, fit_cohort_risk
from pathviz.jobs.coxpasnet import coxpasnet_covariates
from pathviz.jobs.pagenet import PAGENET_CLINICAL


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory, demo_svs, demo_png) -> Cohort:
    """A generated demo cohort (benchmark generator, 8 patients, real tissue and profiles) with its
    two endpoints."""
    from pathviz.cohort.benchmark import generate
    from pathviz.cohort.tissue import read_source, source_key
    from pathviz.jobs.demo import DEMO_FILES

    out = tmp_path_factory.mktemp("demo_cohort")
    generate(out, {source_key(i): read_source(p) for i, p in zip(DEMO_FILES, (demo_svs, demo_png))}, seed=0, patients=8)
    return load_demo_cohort(out)


def _cohorts(small_demo) -> list[Cohort]:
    return [load_cohort(n) for n in available_cohorts() if n != "demo"] + [small_demo]


def _outcomes(cohort: Cohort, features) -> list[str]:
    cols = {str(f).split("=", 1)[0] for f in features}
    return sorted(c for c in cols if c in cohort.outcome_columns or looks_like_outcome(c))


def test_demo_cohort_declares_both_endpoints(small_demo):
    assert [e.key for e in small_demo.endpoints] == ["rfs", "os"]
    assert {"time", "event", "os_time", "os_event"} <= small_demo.outcome_columns
    assert "slide" not in small_demo.clinical_covariates()


def test_no_outcome_column_among_any_models_features_on_any_cohort(small_demo):
    """Every registered cohort x every risk model: the covariates each model's training uses and
    the design matrix the preprocessor builds from them contain no outcome column."""
    names = []
    for cohort in _cohorts(small_demo):
        names.append(cohort.name)
        specs = {"coxnet": default_covariates(cohort), "coxpasnet": coxpasnet_covariates(cohort),
                 "pagenet": PAGENET_CLINICAL if "slide" in cohort.clinical.columns else []}
        for model, covs in specs.items():
            assert not _outcomes(cohort, covs), (cohort.name, model, covs)
        pre = TabularPreprocessor(default_covariates(cohort), genes=cohort.omics is not None, max_genes=50,
                                  outcome_columns=cohort.outcome_columns).fit(cohort.clinical, cohort.omics)
        assert not _outcomes(cohort, pre.columns_), (cohort.name, pre.columns_)
    assert {"gse1992", "gbsg2", "breast_cancer", "demo"} <= set(names)


def test_fitted_elastic_net_uses_expression_and_no_outcome(small_demo):
    """The model the patient page fits: on a cohort with two endpoints (gse1992 given an OS pair
    beside its primary one, as the demo has), the fitted features are clinical + genes, never the
    outcome columns."""
    gse = load_cohort("gse1992")
    clin = gse.clinical.assign(os_time=gse.clinical["time"] + 5.0, os_event=gse.clinical["event"])
    two = Cohort(name="gse1992_two_endpoints", clinical=clin, omics=gse.omics,
                 endpoints=[Endpoint("os", "overall survival", "os_time", "os_event")])
    model, table = fit_cohort_risk(two)
    assert not _outcomes(two, model.feature_names_)
    assert "os_time" not in model.clinical and "os_event" not in model.clinical
    genes = set(model.preprocessor_.genes_)
    assert len(genes) > 100 and genes <= set(model.feature_names_)  # expression is among the candidate features


@pytest.mark.parametrize("column, declared", [("os_time", True), ("dfs_months", False), ("risk_proxy", True)])
def test_planted_leaking_column_is_refused(column, declared):
    """A leaking column (declared endpoint, undeclared outcome-like name, declared derived outcome)
    requested as a covariate: refused with an error naming it, before any fitting."""
    gse = load_cohort("gse1992")
    clin = gse.clinical.assign(**{column: gse.clinical["time"] * (1 + 0.01 * gse.clinical["event"])})
    kw = {}
    if column == "os_time":
        clin["os_event"] = gse.clinical["event"]
        kw["endpoints"] = [Endpoint("os", "overall survival", "os_time", "os_event")]
    elif column == "risk_proxy":
        kw["derived_outcomes"] = ["risk_proxy"]
    cohort = Cohort(name="leaky", clinical=clin, omics=gse.omics, **kw)
    assert column not in cohort.clinical_covariates()
    with pytest.raises(OutcomeLeakageError, match=column) as err:
        fit_cohort_risk(cohort, clinical=["age", column])
    assert "Fix:" in str(err.value)
    with pytest.raises(OutcomeLeakageError, match=column):
        CoxnetRiskModel(["age", column], outcome_columns=cohort.outcome_columns).fit(
            clin, None, cohort.time, cohort.event)
    with pytest.raises(OutcomeLeakageError, match=column):
        CoxPASNetModel(default_library("kegg"), ["age", column], outcome_columns=cohort.outcome_columns).fit(
            clin, gse.omics, cohort.time, cohort.event)
    if declared:  # a declared outcome is refused even when its name looks innocent and is "allowed"
        with pytest.raises(OutcomeLeakageError):
            TabularPreprocessor(["age", column], outcome_columns=cohort.outcome_columns,
                                allowed_covariates=[column]).fit(clin, None)


def test_outcome_like_names_and_clean_names():
    for bad in ("os_time", "OS_MONTHS", "DFS_STATUS", "vital_status", "days_to_death", "time", "event", "rfs",
                "recurrence", "last_contact_days", "censored", "PFI.time"):
        assert looks_like_outcome(bad), bad
    for ok in ("age", "stage", "grade", "tsize", "pnodes", "estrec", "progrec", "centre", "treatment", "er_positive",
               "subtype", "size_num", "metastasis", "ca19_9", "histology", "node_status", "er_status", "age_years",
               "pack_years", "smoking_status", "performance_status", "menopausal_status", "days_to_birth"):
        assert not looks_like_outcome(ok), ok


def test_outcome_column_cannot_be_declared_marker_or_treatment():
    df = pd.DataFrame({"patient_id": ["a", "b"], "time": [1.0, 2.0], "event": [1, 0], "os_time": [3.0, 4.0],
                       "os_event": [1, 0]})
    with pytest.raises(Exception, match="os_event"):
        Cohort(name="x", clinical=df, treatment="os_event",
               endpoints=[Endpoint("os", "overall survival", "os_time", "os_event")])
