"""Risk stratification of a cohort: the computations behind the patient page and the
``pathviz survival`` commands (no Streamlit here).

:func:`stratify_by_risk` fits the penalised Cox model on a stratified training split, scores every
patient, fits the cut-off on the *training* risks and applies it unchanged to the validation
patients; statistics are reported on the validation patients (the honest estimate) and the result
says so. :func:`stratify_by_column` groups by a clinical column (a cut-off for continuous ones).

The patient page only renders: the patients it evaluates, the predicted curve of one patient, the
marker / treatment / multivariable inputs and the subgroup table come from the helpers here
(:meth:`RiskStratification.evaluated_patients`, :meth:`RiskStratification.survival_curve`,
:func:`default_marker`, :func:`marker_threshold`, :func:`adjustment_covariates`,
:func:`with_high_risk`, :func:`subgroup_table`...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pathviz.cohort import MARKER_THRESHOLDS, Cohort, CohortError, load_cohort
from pathviz.errors import PathVizError
from pathviz.risk import (
    CoxnetRiskModel,
    RiskModel,
    StoredRiskModel,
    default_covariates,
    fit_cohort_risk,
    omics_coverage_text,
    restrict_to_omics,
)
from pathviz.survival.chance import HeldOutC, held_out_c_index
from pathviz.survival import (
    Cutoff,
    GroupComparison,
    check_group_sizes,
    fit_cutoff,
    harrell_c,
    integrated_brier,
    km_by_group,
    subgroup_hazard_ratios,
    time_dependent_auc,
    uno_c,
)

#: Default horizons (months) for time-dependent AUC: 1, 3 and 5 years.
AUC_TIMES = (12.0, 36.0, 60.0)
#: Points of a patient's predicted survival curve (from 0 to the cohort's longest follow-up).
SURVIVAL_CURVE_POINTS = 120
#: A categorical covariate with more levels than this is not offered for adjustment.
MAX_ADJUSTMENT_LEVELS = 12
#: Serum marker preselected when a cohort has it (CA19-9, U/mL).
PREFERRED_MARKER = "ca19_9"


@dataclass
class RiskStratification:
    """A cohort scored and stratified.

    Attributes:
        cohort: the cohort the model was fitted and evaluated on: with an expression model and
            ``missing_omics="exclude"``, only the patients with an expression profile (the count
            left out is ``metrics["n_excluded_no_omics"]``).
        model: the fitted :class:`~pathviz.risk.RiskModel`: a :class:`~pathviz.risk.CoxnetRiskModel`,
            or a :class:`~pathviz.risk.StoredRiskModel`.
        table: per patient (index patient_id): ``time, event, risk, split, group, percentile``
            (risk percentile within the cohort, 0-100).
        cutoff: the cut-off (fitted on the training split).
        evaluated_on: ``"validation"`` (default) or ``"all"``: which patients the statistics use.
        comparison: KM / log-rank / HR of the groups on ``evaluated_on`` patients.
        metrics: discrimination on validation patients: ``harrell_c`` (with bootstrap ``_lower``,
            ``_upper``), ``uno_c``, ``auc`` {months: AUC}, ``ibs``; ``cv_c_index`` on training;
            ``oracle_c`` / ``oracle_main_effects_c`` on a semi-synthetic cohort (the planted
            truth's C on the same patients); with expression, the patients without a profile:
            ``missing_omics``, ``n_patients``, ``n_no_omics``, ``n_excluded_no_omics``,
            ``n_imputed_no_omics`` and ``omics_note`` (:func:`~pathviz.risk.omics_coverage_text`).
        held_out: the held-out C-index with its CI and chance verdict
            (:class:`~pathviz.survival.chance.HeldOutC`; ``warning`` is set when the CI includes 0.5).
    """

    cohort: Cohort
    model: RiskModel
    table: pd.DataFrame
    cutoff: Cutoff
    evaluated_on: str
    comparison: GroupComparison
    metrics: dict = field(default_factory=dict)
    held_out: HeldOutC | None = None

    def ordered_groups(self) -> list[str]:
        """The risk groups, lowest risk first (the cut-off's labels)."""
        return list(self.cutoff.labels)

    @property
    def two_groups(self) -> bool:
        """True when the cut-off makes two groups (the marker, treatment, multivariable and
        subgroup analyses compare exactly two)."""
        return len(self.cutoff.labels) == 2

    def default_patient(self) -> int:
        """Position in ``table`` of the patient shown first: the first validation patient, else 0."""
        val = self.table.index[self.table["split"] == "validation"]
        return int(self.table.index.get_loc(val[0])) if len(val) else 0

    def survival_grid(self, n_points: int = SURVIVAL_CURVE_POINTS) -> np.ndarray:
        """``float[n_points]`` months from 0 to the cohort's longest follow-up (evenly spaced)."""
        return np.linspace(0, float(self.table["time"].max()), n_points)

    def survival_curve(self, patient, n_points: int = SURVIVAL_CURVE_POINTS) -> pd.DataFrame:
        """The model's predicted survival of one patient on :meth:`survival_grid`: a DataFrame
        with ``months`` and ``survival`` (in [0, 1], non-increasing), ``n_points`` rows.

        Raises:
            KeyError: ``patient`` is not in the cohort.
            PathVizError: the model cannot score the patient (e.g. a stored model without a score).
        """
        grid = self.survival_grid(n_points)
        sf = self.model.predict_survival_function(self.cohort.clinical.loc[[patient]], self.cohort.omics, grid)[0]
        return pd.DataFrame({"months": grid, "survival": sf})

    def evaluated_patients(self) -> pd.DataFrame:
        """The clinical rows of the patients the statistics use (validation patients, or all with
        ``evaluated_on="all"``), in table order, with their ``risk_group``."""
        if self.evaluated_on == "validation":
            ev = self.table["split"] == "validation"
        else:
            ev = pd.Series(True, index=self.table.index)
        return self.cohort.clinical.loc[ev[ev].index].assign(risk_group=self.table.loc[ev, "group"])

    def km_table(self) -> pd.DataFrame:
        """Every group's Kaplan-Meier curve stacked (:meth:`~pathviz.survival.km.KMCurve.to_frame`)."""
        return pd.concat([c.to_frame() for c in self.comparison.curves])


def cutoff_spec(method: str, value: float | None = None) -> str:
    """The ``cutoff`` text of :func:`stratify_by_risk` from a cut-off method and, for ``"fixed"``,
    its value (``"median"`` or ``"37.0"``)."""
    return str(value) if method == "fixed" else method


def default_marker(cohort: Cohort) -> str:
    """The serum marker preselected on the patient page: :data:`PREFERRED_MARKER` when the cohort
    has it, else its first marker column.

    Raises:
        CohortError: the cohort has no marker column.
    """
    if not cohort.markers:
        raise CohortError(f"{cohort.name} has no serum-marker column.", "load a cohort with a marker column.")
    return PREFERRED_MARKER if PREFERRED_MARKER in cohort.markers else cohort.markers[0]


def marker_threshold(cohort: Cohort, marker: str) -> tuple[str, float]:
    """``(unit, default threshold)`` of a marker: the clinical threshold of
    :data:`pathviz.cohort.MARKER_THRESHOLDS` (e.g. CA19-9 37 U/mL), else no unit and the cohort's
    median of the marker."""
    unit, thr = MARKER_THRESHOLDS.get(marker, ("", float(cohort.clinical[marker].median())))
    return unit, float(thr)


def adjustment_covariates(cohort: Cohort, patients: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Covariates the multivariable Cox may adjust for, and the preselected ones.

    Candidates are the cohort's clinical covariates (:meth:`Cohort.clinical_covariates`) except
    the centre, numeric or with at most :data:`MAX_ADJUSTMENT_LEVELS` levels among ``patients``
    (the evaluated patients, :meth:`RiskStratification.evaluated_patients`).

    Returns:
        ``(options, default)``: the candidates except the treatment column, and ``age`` when it is
        a candidate.
    """
    covs = [c for c in cohort.clinical_covariates()
            if c != cohort.centre and (pd.api.types.is_numeric_dtype(patients[c])
                                       or patients[c].nunique() <= MAX_ADJUSTMENT_LEVELS)]
    return [c for c in covs if c != cohort.treatment], [c for c in covs if c in ("age",)]


def with_high_risk(patients: pd.DataFrame, cutoff: Cutoff) -> pd.DataFrame:
    """``patients`` (with ``risk_group``) plus ``high_risk``: 1.0 in the highest risk group, else 0.0."""
    return patients.assign(high_risk=(patients["risk_group"] == cutoff.labels[-1]).astype(float))


def subgroup_variables(cohort: Cohort, patients: pd.DataFrame, adjusted: list[str]) -> list[str]:
    """Variables whose levels define subgroups: the adjusted covariates, then the treatment column
    when the cohort has one, as far as ``patients`` has them."""
    return [c for c in list(adjusted) + ([cohort.treatment] if cohort.treatment else []) if c in patients.columns]


def subgroup_table(patients: pd.DataFrame, variables: list[str], cutoff: Cutoff) -> pd.DataFrame:
    """High vs low risk hazard ratio within each level of each variable
    (:func:`pathviz.survival.subgroup_hazard_ratios`) with a ``label`` column ``"variable: level"``
    for the forest plot.

    Args:
        patients: evaluated patients with ``time``, ``event``, ``risk_group`` and the variables.
        variables: from :func:`subgroup_variables`; cutoff: gives the highest and lowest group.
    """
    sg = subgroup_hazard_ratios(patients, "risk_group", variables, high=cutoff.labels[-1], low=cutoff.labels[0])
    sg["label"] = sg["variable"] + ": " + sg["level"].astype(str)
    return sg


def parse_cutoff(text: str) -> tuple[str, float | None]:
    """``median|tertiles|quartiles|optimal|<number>`` -> (method, value)."""
    if text in ("median", "tertiles", "quartiles", "optimal"):
        return text, None
    try:
        return "fixed", float(text)
    except ValueError:
        raise CohortError(f"Cut-off {text!r} is not a method or a number.",
                          "use median, tertiles, quartiles, optimal or a value such as 37.") from None


def stratify_by_risk(cohort: Cohort | str, cutoff: str = "median", evaluate_on: str = "validation", seed: int = 0,
                     use_genes: bool = True, model: StoredRiskModel | None = None,
                     check_groups: bool = True, missing_omics: str = "exclude") -> RiskStratification:
    """Fit, score and stratify (see module docstring).

    The C-index CI uses the fixed bootstrap of :mod:`pathviz.survival.chance` (``BOOTSTRAP_N``
    resamples, ``BOOTSTRAP_SEED``), so the patient page and ``pathviz survival cindex`` agree.

    ``model``: a stored risk model (e.g. PAGE-Net's prognostic index,
    :meth:`StoredRiskModel.from_pagenet`) used instead of fitting the elastic-net Cox model; its
    fitted patients are the training split and its held-out test patients the validation split.

    ``missing_omics``: patients without an expression profile when the fitted elastic-net Cox uses
    genes: ``"exclude"`` (default) leaves them out before the split (counted in the metrics),
    ``"impute"`` scores them from training-row gene means (the metrics' ``omics_note`` says so).

    Raises:
        PathVizError: genes asked for but no patient has an expression profile.
        CohortError: the stored model scored other patients than the cohort's.
        SmallGroupError: the cut-off leaves a group with fewer than 5 patients or no events
            among the evaluated patients (the message names the groups and what to do); not
            raised with ``check_groups=False`` (discrimination only, e.g. ``survival cindex``).
    """
    cohort = load_cohort(cohort) if isinstance(cohort, str) else cohort
    coverage = None
    if model is None:
        if use_genes and cohort.omics is not None:
            cohort, coverage = restrict_to_omics(cohort, missing_omics, "the elastic-net Cox")
        model, table = fit_cohort_risk(cohort, use_genes=use_genes, seed=seed, missing_omics=missing_omics)
        model.omics_coverage_ = coverage
    else:
        scored = set(model.table.index)
        if (scored != set(cohort.clinical.index) and cohort.omics is not None and scored == set(cohort.omics.index)):
            # a model with expression inputs left out the patients without a profile: evaluate the same patients
            cohort, coverage = restrict_to_omics(cohort, "exclude", model.label)
        if set(model.table.index) != set(cohort.clinical.index):
            raise CohortError(f"{model.label} was trained on other patients than cohort {cohort.name!r}.",
                              "choose the cohort the model was trained on, or retrain it.")
        table = cohort.clinical[["time", "event"]].copy()
        table["risk"] = model.predict_risk(cohort.clinical)
        table["split"] = model.page_split().loc[cohort.clinical.index].to_numpy()
    train = (table["split"] == "training").to_numpy()
    method, value = parse_cutoff(cutoff)
    cut = fit_cutoff(table["risk"][train], method, table["time"][train], table["event"][train], value=value,
                     fitted_on=f"{cohort.name} training split (seed {seed})")
    table["group"] = cut.apply(table["risk"])
    table["percentile"] = table["risk"].rank(pct=True) * 100
    ev = ~train if evaluate_on == "validation" else np.ones(len(table), bool)
    sub = table[ev]
    metrics = risk_metrics(model, cohort, table, train)
    if coverage is not None:
        metrics.update(coverage, omics_note=omics_coverage_text(coverage))
    if check_groups:
        check_group_sizes(sub["group"], sub["event"], labels=cut.labels,
                          context=f"{'validation' if evaluate_on == 'validation' else 'all'} patients, {cut.method} cut-off",
                          suggest_all_patients=(evaluate_on == "validation"))
    comparison = km_by_group(sub["time"], sub["event"], sub["group"], reference=cut.labels[0], ordered=cut.labels)
    held_out = HeldOutC.from_dict(metrics["held_out"])
    return RiskStratification(cohort, model, table, cut, evaluate_on, comparison, metrics, held_out)


def risk_metrics(model: RiskModel, cohort: Cohort, table: pd.DataFrame, train: np.ndarray,
                 times=AUC_TIMES) -> dict:
    """Discrimination and calibration of the risk model on the validation patients (``~train``).

    Returns a JSON-ready dict: ``harrell_c`` with its 95% bootstrap CI (``harrell_c_lower``,
    ``_upper``; :func:`pathviz.survival.chance.held_out_c_index`, fixed resamples and seed),
    ``held_out`` (the full :class:`~pathviz.survival.chance.HeldOutC`), ``uno_c``, ``auc``
    {months: AUC}, ``ibs``, ``cv_c_index``, counts, and on a semi-synthetic cohort with a planted
    truth ``oracle_c`` and ``oracle_main_effects_c`` on the same validation patients.
    """
    val = ~train
    t, e, r = table["time"].to_numpy(), table["event"].to_numpy(), table["risk"].to_numpy()
    held = held_out_c_index([(t[val], e[val], r[val])])
    out = {"harrell_c": held.c_index, "harrell_c_lower": held.lower, "harrell_c_upper": held.upper,
           "held_out": held.to_dict(), "cv_c_index": model.cv_c_index_,
           "n_training": int(train.sum()), "n_validation": int(val.sum()), "events_validation": int(e[val].sum())}
    out.update(planted_oracle_c(cohort, table.index[val]))
    base = clinical_baseline(cohort, train)
    out["clinical_baseline"] = base.to_dict() if base is not None else None
    horizon = min(t[train].max(), t[val].max())
    try:  # IPCW needs the training censoring distribution to be positive over the validation times
        out["uno_c"] = uno_c(t[train], e[train], t[val], e[val], r[val], tau=horizon * 0.99)
        out["auc"] = time_dependent_auc(t[train], e[train], t[val], e[val], r[val], [x for x in times if x < horizon])
    except ValueError as exc:
        out.setdefault("uno_c", None)
        out["auc"] = {}
        out["ipcw_note"] = (f"Uno's C / time-dependent AUC not estimable ({exc}): the validation follow-up reaches past "
                            "the training censoring distribution.")
    grid = np.linspace(max(1.0, np.quantile(t[val], 0.05)), np.quantile(t[val], 0.8), 20)
    try:
        sf = model.predict_survival_function(cohort.clinical[val], cohort.omics, grid)
        out["ibs"] = integrated_brier(t[train], e[train], t[val], e[val], sf, grid)
    except ValueError as exc:  # times outside the follow-up of the validation set
        out["ibs"] = None
        out["ibs_note"] = str(exc)
    return out


def clinical_baseline(cohort: Cohort, train: np.ndarray) -> HeldOutC | None:
    """The no-learning baseline beside every risk model: an elastic-net Cox on the clinical
    covariates alone (no expression, no images), fitted on the same training split and scored on
    the same validation patients, with the same bootstrap CI. None when the cohort has no clinical
    covariate or too few training events."""
    covs = default_covariates(cohort)
    if not covs:
        return None
    try:
        base = CoxnetRiskModel(covs, use_genes=False, outcome_columns=cohort.outcome_columns,
                               allowed_covariates=cohort.allowed_covariates)
        base.fit(cohort.clinical[train], None, cohort.time[train], cohort.event[train])
        r = base.predict_risk(cohort.clinical[~train], None)
        return held_out_c_index([(cohort.time[~train], cohort.event[~train], r)])
    except PathVizError:
        return None


def planted_oracle_c(cohort: Cohort, patients) -> dict:
    """Harrell's C of the planted truth on ``patients`` (semi-synthetic demo cohort only).

    Reads the demo cohort's ``ground_truth.json`` (never read by model code): ``oracle_c`` from the
    true linear predictor (main effects and interactions) and ``oracle_main_effects_c`` from its
    main effects only; empty for real cohorts or when no ground truth is stored.
    """
    if not cohort.semi_synthetic or cohort.name != "demo":
        return {}
    from pathviz.cohort.loaders import _demo_dir

    path = _demo_dir() / "ground_truth.json"
    if not path.exists():
        return {}
    truth = json.loads(path.read_text())["patients"]
    ids = [p for p in patients if p in truth]
    if not ids:
        return {}
    t = cohort.clinical.loc[ids, "time"].to_numpy(float)
    e = cohort.clinical.loc[ids, "event"].to_numpy(int)
    lp = np.array([truth[p]["lp"] for p in ids])
    lp_main = np.array([truth[p]["lp_main"] for p in ids])
    return {"oracle_c": harrell_c(t, e, lp).c_index, "oracle_main_effects_c": harrell_c(t, e, lp_main).c_index}


def stratify_by_column(cohort: Cohort | str, column: str, cutoff: str = "median") -> tuple[GroupComparison, Cutoff | None]:
    """Group a cohort by a clinical column; continuous columns (> 6 distinct values) are cut
    (cut-off fitted on all patients of this cohort).

    Raises:
        CohortError: unknown column (the message lists the columns).
    """
    cohort = load_cohort(cohort) if isinstance(cohort, str) else cohort
    d = cohort.clinical
    blocked = {*cohort.outcome_columns, *cohort.id_columns}
    if column not in d.columns or column in blocked:
        why = "is an outcome or identifier column" if column in blocked else "has no such column"
        raise CohortError(f"Cohort {cohort.name!r}: {column!r} {why}; it cannot group patients.",
                          f"choose risk or one of {', '.join(c for c in d.columns if c not in blocked)}.")
    col = d[column]
    cut = None
    if pd.api.types.is_numeric_dtype(col) and col.nunique() > 6:
        method, value = parse_cutoff(cutoff)
        cut = fit_cutoff(col, method, d["time"], d["event"], value=value, fitted_on=f"{cohort.name} (all patients)")
        groups = cut.apply(col)
        ordered = cut.labels
        check_group_sizes(groups, d["event"], labels=cut.labels, context=f"all patients, {cut.method} cut-off of {column}",
                          suggest_all_patients=False)
    else:
        groups = col.astype("object").where(col.notna(), "missing").astype(str).to_numpy(dtype=object)
        ordered = None
    return km_by_group(d["time"], d["event"], groups, ordered=ordered), cut


def comparison_summary(comp: GroupComparison, cutoff: Cutoff | None = None) -> dict:
    """JSON-ready summary: groups (n, events, median with CI), log-rank, trend, HRs, notes."""
    out = {
        "groups": [
            {"group": c.group, "n": c.n, "events": c.events, "median_months": c.median,
             "median_ci": [c.median_lower, c.median_upper]} for c in comp.curves
        ],
        "logrank": None if comp.logrank is None else {"chi2": comp.logrank.chi2, "df": comp.logrank.df,
                                                      "p_value": comp.logrank.p_value},
        "trend": None if comp.trend is None else {"chi2": comp.trend.chi2, "p_value": comp.trend.p_value},
        "hazard_ratios": [{"term": h.term, "hazard_ratio": h.hr, "ci_95": [h.lower, h.upper], "p_value": h.p_value,
                           "note": h.note} for h in comp.hazard_ratios],
        "notes": comp.notes,
    }
    if cutoff is not None:
        out["cutoff"] = {"method": cutoff.method, "values": cutoff.values, "fitted_on": cutoff.fitted_on,
                         "maxstat_statistic": cutoff.statistic, "lau92_p": cutoff.p_value}
    return out


def feature_summary(model: CoxnetRiskModel, cohort: Cohort, top: int = 12) -> dict:
    """What a fitted elastic-net Cox model uses, for the page and the CLI.

    Returns:
        ``clinical`` (covariate columns requested), ``n_clinical``, ``n_genes`` (genes in the
        design matrix), ``n_nonzero`` / ``n_nonzero_genes``, ``outcome_columns`` (the cohort's,
        none of which is a feature), and ``top``: a DataFrame of the ``top`` largest non-zero
        coefficients with full feature names, their kind (clinical / gene) and the coefficient
        per SD of the standardised feature.
    """
    genes = set(model.preprocessor_.genes_)
    sel = model.selected_features()
    top_df = pd.DataFrame({"feature": sel.index[:top], "kind": ["gene" if f in genes else "clinical" for f in sel.index[:top]],
                           "coefficient (per SD)": np.round(sel.to_numpy()[:top], 4)})
    return {"clinical": list(model.clinical), "n_clinical": len(model.clinical),
            "n_genes": len([c for c in model.feature_names_ if c in genes]), "n_nonzero": int(len(sel)),
            "n_nonzero_genes": int(sum(f in genes for f in sel.index)), "outcome_columns": sorted(cohort.outcome_columns),
            "top": top_df}


def cohort_has_slides_and_omics(name: str) -> bool:
    """True when every input PAGE-Net needs exists: a ``slide`` per patient and expression."""
    try:
        c = load_cohort(name)
    except CohortError:
        return False
    return not c.missing_modalities()
