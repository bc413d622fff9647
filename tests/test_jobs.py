"""The job queue and its workers with real processes: progress, success, failure, cancel (the
whole process tree ends), timeout, one worker per device, a worker killed mid-job (the job ends
``interrupted``, no version is written, the alias and earlier versions are unchanged, and a
resubmitted job succeeds), and the CLI (`jobs submit/status/wait/cancel`, `train` as a wrapper)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from pathviz.cli import main
from pathviz.jobs.queue import JobError, JobQueue
from pathviz.jobs.worker import Worker, worker_running
from pathviz.store.registry import ModelRegistry

from pathviz.auth.policy import operator

OPERATOR = operator()

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def jobs_ws(ws, monkeypatch):
    """An empty workspace whose workers also know the test job kinds."""
    monkeypatch.setenv("PATHVIZ_JOB_PLUGINS", "job_kinds_for_tests")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FIXTURES), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.syspath_prepend(str(FIXTURES))
    return ws


def _worker(home: Path, *extra: str) -> subprocess.Popen:
    """A worker process of the workspace at ``home`` (``pathviz worker``)."""
    return subprocess.Popen([sys.executable, "-m", "pathviz", "worker", *extra], env={**os.environ, "PATHVIZ_HOME": str(home)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _until(pred, timeout: float = 60.0, step: float = 0.1):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        value = pred()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_submit_checks_kind_params_and_cohort(jobs_ws):
    q = JobQueue(jobs_ws.db, jobs_ws.home)
    with pytest.raises(JobError, match="Unknown job kind 'sleepr'.*sleeper"):
        q.submit("sleepr", actor=OPERATOR)
    with pytest.raises(JobError, match="no parameter 'stepz'"):
        q.submit("sleeper", {"stepz": 3}, actor=OPERATOR)
    with pytest.raises(JobError, match=r"outside \[1, 1000\]"):
        q.submit("sleeper", {"steps": 0}, actor=OPERATOR)
    with pytest.raises(JobError, match="is not a int"):
        q.submit("sleeper", {"steps": "many"}, actor=OPERATOR)
    with pytest.raises(JobError, match="cannot be used by a coxpasnet job"):
        q.submit("coxpasnet", {"cohort": "gbsg2"}, actor=OPERATOR)  # no expression
    with pytest.raises(JobError, match="needs a cohort"):
        q.submit("coxpasnet", {}, actor=OPERATOR)
    job = q.submit("sleeper", {"steps": "3"}, actor=OPERATOR)
    assert job.status == "queued" and job.params == {"steps": 3, "pause": 0.2, "child": 0, "fail": 0}
    assert [j.id for j in q.active()] == [job.id]


def test_worker_runs_jobs_in_order_with_progress_and_records_failures(jobs_ws):
    q = JobQueue(jobs_ws.db, jobs_ws.home)
    ok = q.submit("sleeper", {"steps": 5, "pause": 0.3}, actor=OPERATOR)
    bad = q.submit("sleeper", {"steps": 1, "pause": 0.0, "fail": 1}, actor=OPERATOR)
    worker = _worker(jobs_ws.home, "--idle-exit", "2")
    try:
        seen = set()
        def progressed():
            j = q.get(ok.id)
            if j.status == "running":
                seen.add(round(j.progress, 2))
            return j.finished
        _until(progressed)
        assert len(seen) >= 2, f"progress did not move: {seen}"
        done = q.get(ok.id)
        assert done.status == "succeeded" and done.result == {"steps": 5} and done.progress == 1.0
        assert "step 5 of 5" in Path(done.log_path).read_text()
        failed = _until(lambda: q.get(bad.id).finished and q.get(bad.id))
        assert failed.status == "failed" and "asked to fail" in failed.error and "Fix: submit it with fail=0" in failed.error
        assert done.finished_at <= failed.started_at  # one at a time, oldest first
        worker.wait(30)  # --idle-exit
    finally:
        _stop(worker)


def test_cancel_ends_the_whole_process_tree_and_one_worker_per_device(jobs_ws):
    q = JobQueue(jobs_ws.db, jobs_ws.home)
    job = q.submit("sleeper", {"steps": 1000, "pause": 0.5, "child": 1}, actor=OPERATOR)
    queued = q.submit("sleeper", {"steps": 1}, actor=OPERATOR)
    worker = _worker(jobs_ws.home)
    try:
        running = _until(lambda: (j := q.get(job.id)).status == "running" and j.progress > 0 and j)
        assert worker_running(jobs_ws.home)
        second = _worker(jobs_ws.home)  # the same device: refused, the first keeps it
        out = second.communicate(timeout=60)[0].decode()
        assert second.returncode == 2 and "already running" in out
        log = Path(running.log_path)
        grandchild = int(_until(lambda: [ln for ln in log.read_text().splitlines() if ln.startswith("grandchild")])[0].split()[1])
        assert psutil.pid_exists(grandchild)
        assert q.cancel(queued.id, actor=OPERATOR).status == "cancelled"  # a queued job: at once
        assert main(["jobs", "cancel", str(job.id)]) == 0
        assert q.get(job.id).status == "cancelled"
        for pid in (running.job_pid, grandchild):
            _until(lambda pid=pid: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, 15)
        with pytest.raises(JobError, match="already cancelled"):
            q.cancel(job.id, actor=OPERATOR)
    finally:
        _stop(worker)


def test_timeout_stops_a_job(jobs_ws):
    q = JobQueue(jobs_ws.db, jobs_ws.home)
    job = q.submit("sleeper", {"steps": 1000, "pause": 0.2}, timeout_s=2.0, actor=OPERATOR)
    n = Worker(jobs_ws).run(once=True)
    j = q.get(job.id)
    assert n == 1 and j.status == "failed" and "Timed out after 2 s" in j.error


def test_worker_killed_mid_training_leaves_job_interrupted_and_no_version(jobs_ws):
    """Must-show of the platform issue, with a real Cox-PASNet training."""
    q = JobQueue(jobs_ws.db, jobs_ws.home)
    reg = ModelRegistry(jobs_ws.models_dir)
    params = {"cohort": "gse4335", "repeats": 1}
    first = q.submit("coxpasnet", params, actor=OPERATOR)
    assert Worker(jobs_ws).run(once=True) == 1
    first = q.get(first.id)
    assert first.status == "succeeded", first.error
    ref = first.result["model"]
    reg.promote(ref, actor=OPERATOR)
    name = ref.split("@")[0]
    before = {m.version: m.files for m in reg.versions(*name.split("/"))}
    second = q.submit("coxpasnet", params, actor=OPERATOR)
    worker = _worker(jobs_ws.home)
    try:
        job = _until(lambda: (j := q.get(second.id)).status == "running" and j.progress >= 0.05 and j, timeout=120)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        j = _until(lambda: (j := q.get(second.id)).finished and j, timeout=30)
        assert j.status == "interrupted" and "was discarded" in j.error
        _until(lambda: not psutil.pid_exists(job.job_pid) or psutil.Process(job.job_pid).status() == psutil.STATUS_ZOMBIE, 15)
    finally:
        _stop(worker)
    folder = jobs_ws.models_dir / name
    assert sorted(p.name for p in folder.glob("v[0-9]*")) == sorted(before)  # no folder of the killed version
    assert reg.aliases(*name.split("/"))["production"] == ref.split("@")[1]
    for m in reg.versions(*name.split("/")):
        reg.verify(m)
        assert m.files == before[m.version]
    third = q.submit("coxpasnet", params, actor=OPERATOR)
    assert Worker(jobs_ws).run(once=True) == 1
    third = q.get(third.id)
    assert third.status == "succeeded", third.error
    assert len(reg.versions(*name.split("/"))) == len(before) + 1
    assert not list(folder.glob(".tmp-*"))  # the killed writer's temporary folder was removed


def test_cli_submit_status_wait_and_train_wrapper(jobs_ws, capsys):
    assert main(["jobs", "submit", "sleeper", "--param", "steps=2", "--param", "pause=0.1", "--json"]) == 0
    job_id = json.loads(capsys.readouterr().out)["id"]
    assert main(["jobs", "wait", str(job_id), "--timeout", "120"]) == 0
    assert "succeeded" in capsys.readouterr().out
    assert main(["jobs", "status", str(job_id), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["result"] == {"steps": 2}
    assert main(["jobs", "submit", "sleeper", "--param", "steps"]) == 2
    assert "not key=value" in capsys.readouterr().err
    assert main(["jobs", "status", "999"]) == 2
    assert "No job with id 999" in capsys.readouterr().err
    # `train coxpasnet` is a wrapper: one job, one new registry version
    assert main(["train", "coxpasnet", "--cohort", "gse4335", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"].startswith("coxpasnet/") and ModelRegistry(jobs_ws.models_dir).get(out["model"])
    jobs = JobQueue(jobs_ws.db, jobs_ws.home).list(kind="coxpasnet")
    assert len(jobs) == 1 and jobs[0].status == "succeeded" and jobs[0].result["model"] == out["model"]
