"""First start and background jobs as every page shows them.

The demo workspace is built by a background job (kind ``demo``) run by a worker process, not by
the browser session: closing the tab changes nothing, reopening shows the running job's progress,
and the demo counts as ready only when every part is built
(:func:`pathviz.jobs.demo.demo_ready`).
"""

from __future__ import annotations

import streamlit as st

from pathviz.auth.policy import SYSTEM, Actor
from pathviz.jobs.demo import demo_status
from pathviz.jobs.queue import JobQueue
from pathviz.jobs.worker import ensure_worker

PARTS = {"slides": "demo slides registered and analysed", "cohort": "demo cohort generated",
         "pagenet": "PAGE-Net trained into the model registry"}


def submit_demo_job(ws, actor: Actor = SYSTEM) -> int:
    """Queue the demo build unless one is queued or running; start a worker. Returns the job id.
    ``actor``: who asks (default: PathViz's own first-start automation, audited as ``system``)."""
    queue = JobQueue(ws.db, ws.home)
    active = queue.active("demo")
    params = {"patients": ws.settings.demo_patients} if ws.settings.demo_patients else {}
    job = active[0] if active else queue.submit("demo", params, actor=actor)
    ensure_worker(ws.home)
    return job.id


def job_progress(ws, job_id: int, done_rerun: bool = True) -> None:
    """A live progress bar of one job (redrawn every second by a fragment); reruns the page
    when the job finishes (``done_rerun``)."""

    @st.fragment(run_every=1.0)
    def _show() -> None:
        from pages.ui.auth import current_actor

        if current_actor() is None:  # a fragment rerun skips the page's login check: redo it
            st.rerun(scope="app")
        job = JobQueue(ws.db, ws.home).get(job_id)
        st.progress(min(max(job.progress, 0.0), 1.0), f"{job.status}: {job.message}")
        if job.status == "queued":
            ensure_worker(ws.home, job.device)
        if job.finished and done_rerun:
            st.rerun(scope="app")

    _show()


def first_start(ws) -> None:
    """On a workspace with no slides, build the demo as a job and show its progress instead of
    the pages (stops the script). With slides and a demo build still running (the cohort or
    PAGE-Net), show its progress above the page and go on."""
    queue = JobQueue(ws.db, ws.home)
    for device in {j.device for j in queue.active() if j.status == "queued"}:
        ensure_worker(ws.home, device)  # the app starts a worker whenever jobs wait and none runs
    if ws.slides():
        active = queue.active("demo")
        if active:
            st.info(f"The demo build (job #{active[0].id}) is still running; pages show what is built so far.")
            job_progress(ws, active[0].id)
        return
    status = demo_status(ws)
    st.title("PathViz")
    active = queue.active("demo")
    last = queue.list(kind="demo", limit=1)
    if not active and last and last[0].status in ("failed", "cancelled", "interrupted"):
        st.error(f"The demo build {last[0].status}: {last[0].error or last[0].message}")
        if st.button("Build the demo again", key="demo_retry"):
            submit_demo_job(ws)
            st.rerun()
        st.stop()
    job_id = active[0].id if active else submit_demo_job(ws)
    st.write("First start: building the demo workspace from real slides shipped in pip packages, in a background "
             f"job (#{job_id}). You may close this tab: the build goes on and this page shows it when you come back.")
    st.caption(" · ".join(f"{'✅' if ok else '⏳'} {PARTS[k]}" for k, ok in status.items()))
    job_progress(ws, job_id)
    st.stop()
