"""Admin page: train any registered model kind as a background job, watch jobs live, compare
versions, promote and roll back, and see which version each page uses."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from pages.ui.auth import acting, require_page
from pages.ui.context import workspace
from pathviz.cohort import load_cohort
from pathviz.errors import PathVizError
from pathviz.jobs.queue import JobQueue, job_kinds
from pathviz.jobs.worker import ensure_worker
from pathviz.report.models import compare_versions, jobs_table, usage_table, versions_table

actor = require_page("jobs.manage", "Models and jobs")
ws = workspace()
queue, registry = JobQueue(ws.db, ws.home), ws.registry()
state = st.session_state
st.title("Models and jobs")
st.caption("Training runs in a background worker: you may leave this page or close the tab; the job goes on. "
           "Every training registers a new immutable version; pages use a model's `production` version "
           "(else its newest) until you promote another.")


@st.cache_data(ttl=300, show_spinner="finding suitable cohorts…")
def _cohorts(kind: str) -> list[str]:
    return job_kinds()[kind].cohorts()


# -- launch ----------------------------------------------------------------------------------------
st.subheader("Train a model")
trainable = {k: v for k, v in job_kinds().items() if v.model_kind}
kind = st.selectbox("Model kind", list(trainable), format_func=lambda k: f"{k}: {trainable[k].title}", key="adm_kind")
spec = trainable[kind]
cohorts = _cohorts(kind)
if not cohorts:
    st.warning(f"No cohort here has what a {kind} model needs.")
else:
    cohort = st.selectbox("Cohort", cohorts, key=f"adm_cohort_{kind}")  # outside the form: endpoints follow it
    with st.form(f"adm_train_{kind}"):
        values = {}
        for pname, p in spec.params.items():
            default, help_ = p.get("default"), p.get("help")
            label = pname.replace("_", " ").capitalize()
            if isinstance(default, bool):
                values[pname] = st.checkbox(label, value=default, help=help_, key=f"adm_{kind}_{pname}")
            elif isinstance(default, int):
                values[pname] = st.number_input(label, min_value=p.get("min"), max_value=p.get("max"), value=default, step=1,
                                                help=help_, key=f"adm_{kind}_{pname}")
            elif isinstance(default, float):
                values[pname] = st.number_input(label, min_value=float(p["min"]) if "min" in p else None,
                                                max_value=float(p["max"]) if "max" in p else None, value=default,
                                                help=help_, key=f"adm_{kind}_{pname}", format="%.3g")
            elif pname == "endpoint":  # the chosen cohort's endpoints; "" = its primary one
                ends = {e.key: e.label for e in load_cohort(cohort).endpoints}
                first = next(iter(ends))
                picked = st.selectbox(label, list(ends), help=help_, key=f"adm_{kind}_endpoint_{cohort}",
                                      format_func=lambda k: f"{ends[k]} ({k})" + (" · primary" if k == first else ""))
                values[pname] = "" if picked == first else picked
            elif "choices" in p:
                values[pname] = st.selectbox(label, p["choices"], help=help_, key=f"adm_{kind}_{pname}")
            elif pname in spec.choices:  # values that depend on the workspace (e.g. its gene-set files)
                values[pname] = st.selectbox(label, spec.choices[pname](ws.home), help=help_, key=f"adm_{kind}_{pname}",
                                             format_func=lambda g: Path(g).name)
            else:
                values[pname] = st.text_input(label, value=str(default), help=help_, key=f"adm_{kind}_{pname}")
        go = st.form_submit_button("Start training", type="primary")
    if go:
        try:
            job = queue.submit(kind, {"cohort": cohort, **values}, actor=actor)
            ensure_worker(ws.home, job.device)
            state["adm_last_job"] = job.id
            st.success(f"Job #{job.id} queued: {kind} on {cohort}.")
        except PathVizError as exc:
            st.error(str(exc))


# -- jobs ------------------------------------------------------------------------------------------
st.subheader("Jobs")


@st.fragment(run_every=1.5)
def jobs_panel() -> None:
    me = acting("jobs.manage")  # a fragment rerun skips the page's own check: the session may have ended
    if me is None:
        st.rerun(scope="app")
    active = queue.active()
    for device in {j.device for j in active if j.status == "queued"}:
        ensure_worker(ws.home, device)  # a worker for every queue with waiting jobs
    if not active:
        st.caption("No job is queued or running.")
    for job in active:
        with st.container(border=True, key=f"adm_job_{job.id}"):
            cols = st.columns([5, 1])
            cols[0].markdown(f"**#{job.id} {job.kind}** · {', '.join(f'{k}={v}' for k, v in job.params.items())}")
            cols[0].progress(min(max(job.progress, 0.0), 1.0), f"{job.status}: {job.message}")
            if cols[1].button("Cancel", key=f"adm_cancel_{job.id}"):
                queue.cancel(job.id, actor=me)
                st.rerun(scope="fragment")
    recent = [j for j in queue.list(limit=15) if j.finished]
    if recent:
        st.dataframe(jobs_table(recent), hide_index=True, width="stretch", key="adm_recent")
    logs = queue.list(limit=15)
    if logs:
        with st.expander("Job log (live)", expanded=bool(active)):
            default = active[0].id if active else logs[0].id
            ids = [j.id for j in logs]
            pick = st.selectbox("Job", ids, index=ids.index(default), format_func=lambda i: f"#{i}", key="adm_log_job")
            job = next(j for j in logs if j.id == pick)
            if job.log_path and Path(job.log_path).is_file():
                st.code(Path(job.log_path).read_text(errors="replace")[-6000:] or "(empty)", language=None)
            else:
                st.caption("No log yet.")
    # new versions appear below once a job ends: rerun the page when the set of active jobs changes
    ids = tuple(j.id for j in active)
    if state.get("adm_active_ids", ids) != ids:
        state["adm_active_ids"] = ids
        st.rerun(scope="app")
    state["adm_active_ids"] = ids


jobs_panel()


# -- models ----------------------------------------------------------------------------------------
def alias_form(action: str, confirm: str, key: str, move, model: str) -> None:
    """The body of a promote / roll-back form: alias, confirmation, submit; ``move(alias)`` moves it."""
    alias = st.text_input("Alias", "production", key=f"{key}_alias")
    sure = st.checkbox(confirm, key=f"{key}_sure")
    if st.form_submit_button(action):
        if not sure:
            st.warning("Tick the confirmation first.")
            return
        try:
            e = move(alias.strip())
        except PathVizError as exc:
            st.error(str(exc))
            return
        verb = "Promoted" if action == "Promote" else "Rolled back"
        state["adm_flash"] = f"{verb}: {alias.strip()} of {model} {e['previous'] or 'none'} → {e['version']}"
        st.rerun()


st.subheader("Models")
if state.get("adm_flash"):
    st.success(state.pop("adm_flash"))
st.dataframe(usage_table(registry), hide_index=True, width="stretch", key="adm_usage")
models = sorted({(m.kind, m.name) for m in registry.versions()})
if not models:
    st.info("No model is registered yet: train one above.")
for mk, mname in models:
    with st.expander(f"{mk}/{mname}", expanded=True):
        table = versions_table(registry, mk, mname)
        st.dataframe(table, hide_index=True, width="stretch", key=f"adm_versions_{mk}_{mname}")
        versions = list(table["version"])
        held_by = registry.aliases(mk, mname)
        st.caption(f"Versions {', '.join(versions)} · " + (" · ".join(f"{a} → {v}" for a, v in sorted(held_by.items()))
                                                           or "no alias yet: pages use the newest version"))
        chosen = st.multiselect("Compare versions", versions, default=versions[:2], key=f"adm_cmp_{mk}_{mname}_{len(versions)}")  # a new version resets the default
        if chosen:
            st.dataframe(compare_versions([registry.get(f"{mk}/{mname}@{v}") for v in chosen]), width="stretch",
                         key=f"adm_cmpt_{mk}_{mname}")
        c1, c2 = st.columns(2)
        with c1.form(f"adm_promote_{mk}_{mname}"):
            v = st.selectbox("Version", versions, key=f"adm_pv_{mk}_{mname}")
            alias_form("Promote", "I confirm: pages will use this version", f"adm_p{mk}_{mname}",
                       lambda a, v=v, ref=f"{mk}/{mname}": registry.promote(f"{ref}@{v}", a, actor=actor), f"{mk}/{mname}")
        with c2.form(f"adm_rollback_{mk}_{mname}"):
            alias_form("Roll back", "I confirm: pages go back to the previous version", f"adm_r{mk}_{mname}",
                       lambda a, ref=f"{mk}/{mname}": registry.rollback(ref, a, actor=actor), f"{mk}/{mname}")
        history = registry.alias_history(mk, mname)
        if history:
            st.caption("Alias history: " + " · ".join(f"{h['time']} {h['action']} {h['alias']} {h['previous'] or '-'} → "
                                                      f"{h['version']}" for h in history[-6:]))
