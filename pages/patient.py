"""Oncologist's patient page: risk, stratum, predicted survival, cohort KM, marker and treatment
panels, discrimination card, downloads. Rendering only: every table, mask and grid comes from
:mod:`pathviz.risk.stratify`."""

from __future__ import annotations

import streamlit as st

from pages.ui.auth import require_page
from pages.ui.cohort import endpoint_selectbox
from pages.ui.context import workspace
from pathviz.cohort import available_cohorts, endpoint_model_name, load_cohort, load_cohort_endpoint
from pathviz.errors import PathVizError
from pathviz.report.plots import effect_by_stratum_figure, forest_figure, km_figure, survival_curve_figure
from pathviz.survival.chance import HeldOutC
from pathviz.risk.stratify import (
    adjustment_covariates,
    cohort_has_slides_and_omics,
    comparison_summary,
    cutoff_spec,
    default_marker,
    feature_summary,
    marker_threshold,
    stratify_by_risk,
    subgroup_table,
    subgroup_variables,
    with_high_risk,
)
from pathviz.survival import fit_cox, marker_by_stratum, p_label, treatment_by_stratum
from pathviz.risk.registered import chosen_risk_versions, load_registered_risk, version_label
from pathviz.store.registry import ModelRegistry

CUTOFFS = {"median": "Median", "tertiles": "Tertiles", "quartiles": "Quartiles", "optimal": "Optimal (maxstat)",
           "fixed": "Fixed value"}

actor = require_page("patients.view", "Patient risk")
st.title("Patient risk")


RISK_MODELS = {"elastic_net": "Elastic-net Cox (expression + clinical)", "pagenet": "PAGE-Net (slides + expression + age)",
               "coxpasnet": "Cox-PASNet (genes -> pathways -> Cox)"}


def _cohort(name: str, endpoint: str):
    """The cohort with ``endpoint`` as its primary one (``primary``: as loaded)."""
    return load_cohort_endpoint(name, endpoint)


@st.cache_resource(show_spinner="Fitting the elastic-net Cox model on the training split…", max_entries=16)
def _stratify(cohort: str, cutoff: str, evaluate_on: str, seed: int, endpoint: str = "primary"):
    return stratify_by_risk(_cohort(cohort, endpoint), cutoff=cutoff, evaluate_on=evaluate_on, seed=seed)


@st.cache_resource(show_spinner="Scoring the cohort with the registered model…", max_entries=16)
def _stratify_registered(cohort: str, endpoint: str, ref: str, cutoff: str, evaluate_on: str):
    """A registry version's scores (``ref`` names one immutable version, so it is the cache key)."""
    registry = ModelRegistry(workspace().models_dir)
    c = _cohort(cohort, endpoint)
    model = load_registered_risk(registry, ref, c)
    return stratify_by_risk(c, cutoff=cutoff, evaluate_on=evaluate_on, model=model)


with st.sidebar:
    cohort_name = st.selectbox("Cohort", available_cohorts(), key="cohort")
    endpoint, ends = endpoint_selectbox(cohort_name, "endpoint", "Survival endpoints of this cohort; patients without "
                                        "the chosen one are left out (the caption says how many).")
    method = st.selectbox("Risk cut-off", list(CUTOFFS), format_func=CUTOFFS.get, key="cutoff_method")
    fixed = st.number_input("Cut-off value (risk score)", value=0.0, step=0.1, key="cutoff_value",
                            disabled=method != "fixed")
    evaluate_on = st.radio("Statistics on", ["validation", "all"], key="evaluate_on",
                           format_func=lambda v: "validation patients" if v == "validation" else "all patients")
    registry = ModelRegistry(workspace().models_dir)
    # models trained on this endpoint (production alias, else the newest version)
    registered = chosen_risk_versions(registry, endpoint_model_name(cohort_name, endpoint))
    options = ["elastic_net", *registered]
    if st.session_state.get("risk_model") not in options:  # e.g. after switching cohort
        st.session_state["risk_model"] = "elastic_net"
    risk_model = st.radio("Risk model", options, format_func=RISK_MODELS.get, key="risk_model")
    if risk_model in registered:
        st.caption(f"Model {version_label(registry, registered[risk_model])}; its own split (seed "
                   f"{registered[risk_model].split_seed}), trained on {ends[endpoint]}. Promote or roll back versions "
                   "on the admin page.")
        seed = registered[risk_model].split_seed
    else:
        seed = int(st.number_input("Split seed", 0, 10_000, 0, key="seed"))
    if "pagenet" not in registered:
        if cohort_has_slides_and_omics(cohort_name):
            st.caption(f"PAGE-Net is not trained for this cohort: train it on the admin page (or `pathviz train pagenet "
                       f"--cohort {cohort_name}`; the demo build trains it for the demo cohort).")
        else:
            st.caption("PAGE-Net needs a slide and an expression profile per patient; this cohort has no "
                       + " and no ".join(load_cohort(cohort_name).missing_modalities()) + ".")
    img_format = st.radio("Plot download format", ["png", "svg"], horizontal=True, key="img_format")

PLOT_CONFIG = {"toImageButtonOptions": {"format": img_format, "scale": 2}, "displaylogo": False}
cohort = _cohort(cohort_name, endpoint)
if cohort.semi_synthetic:
    from pages.ui.demo import demo_note

    st.warning(demo_note(workspace()) if cohort_name == "demo" else
               "Semi-synthetic cohort: real H&E tissue and real expression profiles, simulated outcomes.")
st.caption(f"{cohort.description} · endpoint: {cohort.endpoint} · n={cohort.n}, events={cohort.n_events} · "
           f"times in months ({cohort.time_unit_note})")

try:
    cut_arg = cutoff_spec(method, fixed)
    if risk_model in registered:
        strat = _stratify_registered(cohort_name, endpoint, registered[risk_model].ref, cut_arg, evaluate_on)
    else:
        strat = _stratify(cohort_name, cut_arg, evaluate_on, seed, endpoint)
except PathVizError as exc:
    st.error(str(exc))
    st.stop()

if strat.metrics.get("omics_note"):  # patients without RNA: left out (default) or imputed, said here
    st.info(f"Expression: {strat.metrics['omics_note']}.")
if strat.held_out.warning:
    st.error(f"⚠ {strat.held_out.warning} The risk scores and strata below are shown for inspection only.")

table = strat.table
cut = strat.cutoff
patient = st.selectbox("Patient", table.index.tolist(), index=strat.default_patient(),
                       key="patient", format_func=lambda p: f"{p} ({table.at[p, 'split']})")
row = table.loc[patient]

# -- patient card -------------------------------------------------------------------------------
c1, c2, c3, c4 = st.columns(4)
c1.metric("Risk score (prognostic index)", f"{row['risk']:.3f}")
c2.metric("Percentile in cohort", f"{row['percentile']:.0f}")
c3.metric("Risk stratum", str(row["group"]))
c4.metric("Observed follow-up", f"{row['time']:.1f} mo", "event" if row["event"] else "censored", delta_color="off")
st.caption(f"Cut-off: {cut.provenance()}; applied unchanged to {'validation' if row['split'] == 'validation' else 'training'} "
           f"patients. This patient is in the **{row['split']}** set"
           + (" (the model and cut-off saw this patient while fitting)." if row["split"] == "training" else "."))

left, right = st.columns(2)
with left:
    curve = strat.survival_curve(patient)
    st.plotly_chart(survival_curve_figure(curve["months"].to_numpy(), curve["survival"].to_numpy(),
                                          f"Predicted survival of {patient}"), config=PLOT_CONFIG, key="fig_patient")
    st.download_button("Predicted curve (CSV)", curve.to_csv(index=False),
                       file_name=f"{patient}_predicted_survival.csv", key="dl_patient")
with right:
    m = strat.metrics
    held = strat.held_out
    st.markdown("**Discrimination** (held-out validation patients)")
    st.markdown(
        f"- Harrell's C: **{held.headline()}**  \n  <small>{held.method()}</small>\n"
        + (f"- No-learning baseline, clinical covariates only (same patients): "
           f"{HeldOutC.from_dict(m['clinical_baseline']).headline()}\n" if m.get("clinical_baseline") else
           "- No-learning baseline: none (no clinical covariate; chance = 0.5)\n")
        + (f"- Planted truth on the same patients (semi-synthetic cohort): oracle C {m['oracle_c']:.3f}, "
           f"main-effects oracle {m['oracle_main_effects_c']:.3f}\n" if "oracle_c" in m else "")
        + (f"- Uno's C: {m['uno_c']:.3f}\n" if m.get("uno_c") is not None else f"- {m.get('ipcw_note', 'Uno C n/a')}\n")
        + "".join(f"- Time-dependent AUC at {k:g} months: {v:.3f}\n" for k, v in m["auc"].items())
        + (f"- Integrated Brier score: {m['ibs']:.4f}\n" if m.get("ibs") is not None else "- Integrated Brier score: n/a\n")
        + {"pagenet": f"- Mean inner-validation C of the bagged networks: {m['cv_c_index']:.3f}",
           "coxpasnet": f"- Inner-validation C (early stopping, grid): {m['cv_c_index']:.3f}"}.get(
            risk_model, f"- Cross-validated C on training (alpha choice): {m['cv_c_index']:.3f}"),
        unsafe_allow_html=True,
    )
    if risk_model == "pagenet":
        st.markdown(f"**Model**: {strat.model.description} Training = PAGE-Net's train + validation patients; "
                    "validation here = its held-out test patients. The slide viewer shows its survival-discriminative "
                    "layers (`survival_score`, `survival_maps`).")
    elif risk_model == "coxpasnet":
        st.markdown(f"**Model**: {strat.model.description} Training = the patients of the version's training split; "
                    "validation here = its held-out validation patients. Its pathway rankings are on the Pathways page.")
    else:
        fs = feature_summary(strat.model, cohort)
        st.markdown(f"**Model**: elastic-net Cox on {fs['n_clinical']} clinical covariates "
                    f"({', '.join(fs['clinical']) or 'none'}) and {fs['n_genes']} genes; "
                    f"{fs['n_nonzero']} non-zero features ({fs['n_nonzero_genes']} genes). Outcome columns never used: "
                    f"{', '.join(fs['outcome_columns'])}.")
        st.table(fs["top"])

# -- cohort KM by stratum -----------------------------------------------------------------------
st.subheader(f"Cohort by risk stratum ({'validation' if strat.evaluated_on == 'validation' else 'all'} patients)")
fig = km_figure(strat.comparison, f"{cohort.name}", highlight=str(row["group"]))
st.plotly_chart(fig, config=PLOT_CONFIG, key="fig_km")
for note in strat.comparison.notes:
    st.warning(note)
d1, d2 = st.columns(2)
d1.download_button("KM curves (CSV)", strat.km_table().to_csv(index=False), file_name=f"{cohort.name}_km_by_risk.csv", key="dl_km")
d2.download_button("Patients, risks and strata (CSV)", table.to_csv(), file_name=f"{cohort.name}_risk_table.csv", key="dl_table")

sub = strat.evaluated_patients()
two_groups = strat.two_groups

# -- serum marker ------------------------------------------------------------------------------
st.subheader("Serum marker inside each risk group")
if not cohort.markers:
    st.info(f"{cohort.name} has no serum-marker column (e.g. CA19-9 as `ca19_9` in U/mL), so this panel is empty. "
            "Load a cohort with a marker column to see the marker's prognostic value inside each risk group.")
elif not two_groups:
    st.info("The marker analysis compares two risk groups; choose a median, optimal or fixed cut-off.")
else:
    marker = st.selectbox("Marker", cohort.markers, index=cohort.markers.index(default_marker(cohort)), key="marker")
    unit, thr_default = marker_threshold(cohort, marker)
    thr = st.number_input(f"Threshold ({unit})" if unit else "Threshold", value=thr_default, key=f"thr_{marker}")
    eff = marker_by_stratum(sub["time"], sub["event"], sub["risk_group"].to_numpy(), sub[marker].to_numpy(), thr, marker)
    st.plotly_chart(effect_by_stratum_figure(eff, f"{marker} > {thr:g} vs <= {thr:g}"), config=PLOT_CONFIG, key="fig_marker")
    for s in eff.strata:
        st.markdown(f"- {s.stratum} risk: {s.hazard_ratio.label()}")
    st.markdown(f"- Interaction ({marker} x risk group): {p_label(eff.interaction_p)} {eff.interaction_note}")
    for n in eff.notes:
        st.caption(n)

# -- treatment ---------------------------------------------------------------------------------
st.subheader("Treatment benefit by risk group")
if not cohort.treatment:
    st.info(f"{cohort.name} records no treatment column (0/1), so treatment benefit cannot be estimated here.")
elif not two_groups:
    st.info("Treatment benefit by stratum compares two risk groups; choose a median, optimal or fixed cut-off.")
else:
    eff = treatment_by_stratum(sub["time"], sub["event"], sub["risk_group"].to_numpy(), sub[cohort.treatment].to_numpy())
    st.plotly_chart(effect_by_stratum_figure(eff, "Treated vs untreated"), config=PLOT_CONFIG, key="fig_treatment")
    for s in eff.strata:
        st.markdown(f"- {s.stratum} risk: {s.hazard_ratio.label()}")
    st.markdown(f"- Interaction (treatment x risk group): {p_label(eff.interaction_p)} {eff.interaction_note}")
    st.caption("Observational contrast within the cohort unless treatment was randomised.")

# -- multivariable and subgroups --------------------------------------------------------------------
st.subheader("Multivariable Cox and subgroups")
adjust_options, adjust_default = adjustment_covariates(cohort, sub)
chosen = st.multiselect("Adjust for", adjust_options, default=adjust_default, key="adjust")
if two_groups:
    mv = with_high_risk(sub, cut)
    try:
        tab = fit_cox(mv, ["high_risk"] + chosen)
        st.plotly_chart(forest_figure(tab.to_frame(), title=f"Multivariable Cox (n={tab.n}, events={tab.events}"
                                      + (f", {tab.dropped} with missing values left out" if tab.dropped else "") + ")"),
                        config=PLOT_CONFIG, key="fig_forest")
        st.download_button("Cox table (CSV)", tab.to_frame().to_csv(index=False), file_name="multivariable_cox.csv", key="dl_cox")
    except PathVizError as exc:
        st.error(str(exc))
    if cohort.centre:
        try:
            strat_tab = fit_cox(mv, ["high_risk"], strata=[cohort.centre])
            st.markdown(f"Centre effect: stratified by {cohort.centre} ({mv[cohort.centre].nunique()} centres), "
                        f"{strat_tab.terms[0].label()}")
        except PathVizError as exc:
            st.caption(f"Stratified Cox by centre not estimable: {exc}")
    by = subgroup_variables(cohort, sub, chosen)
    if by:
        sg = subgroup_table(sub, by, cut)
        st.plotly_chart(forest_figure(sg, "label", "High vs low risk within subgroups"), config=PLOT_CONFIG, key="fig_subgroups")
        st.download_button("Subgroup table (CSV)", sg.to_csv(index=False), file_name="subgroups.csv", key="dl_subgroups")
else:
    st.info("Choose a two-group cut-off for the multivariable and subgroup analyses.")

with st.expander("Statistics of the stratification (JSON)"):
    st.json(comparison_summary(strat.comparison, cut))
