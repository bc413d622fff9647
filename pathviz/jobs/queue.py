"""The job queue: background jobs persisted in the workspace database and run by worker processes
(:mod:`pathviz.jobs.worker`) outside the Streamlit process, as MONAI Label runs its training tasks
in subprocesses it watches with psutil.

Life of a job::

    queued --claim--> running --(job process exits 0)--> succeeded
       |                 |--(exception / non-zero exit / timeout)--> failed
       |                 |--(cancel: the whole process tree is killed)--> cancelled
       |                 '--(the worker died: killed, machine restarted)--> interrupted
       '--(cancel before it starts)--> cancelled

Every transition is one conditional ``UPDATE ... WHERE status = <expected>``, so two workers never
claim the same job and a late progress report never revives a finished one. A job is marked
``interrupted`` by whoever next looks at the queue (a worker, a page, ``pathviz jobs status``) once
its worker is gone: a live worker holds its device's lock file with its pid in it
(:func:`worker_alive`), which neither a reused pid nor a stepped clock can fake.

Job kinds register how they run (:func:`register_job_kind`); :mod:`pathviz.jobs.kinds` holds the
built-in ones (Cox-PASNet, PAGE-Net, the demo build).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from sqlalchemy import select, update

from pathviz.auth.audit import AuditLog
from pathviz.auth.policy import require
from pathviz.errors import PathVizError, unknown_fix
from pathviz.store.db import Database
from pathviz.store.models import JobRecord

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
ACTIVE = ("queued", "running")
FINISHED = ("succeeded", "failed", "cancelled", "interrupted")
DEFAULT_TIMEOUT_S = 6 * 3600.0


class JobError(PathVizError):
    """A job request cannot be met (unknown kind or job, invalid parameter, finished job)."""


@dataclass(frozen=True)
class JobKind:
    """A kind of background job.

    Attributes:
        name: id used by ``pathviz jobs submit NAME`` (a model kind's name for training jobs).
        title: one line for the admin page.
        params: declared parameters ``{name: {"default": v, "min": a, "max": b, "choices": [...],
            "help": s}}``; submitted values are checked against them (:meth:`validate`).
        run: ``run(context) -> dict`` executed in the job process; the dict is stored as the
            job's result (e.g. ``{"model": "coxpasnet/gse1992@v0003"}``).
        cohorts: callable returning the cohorts the job can use (None: the job takes no cohort).
        model_kind: the registry kind the job trains, if any.
        check: optional ``check(params)`` run at submission after the declared checks, raising a
            :class:`~pathviz.errors.PathVizError` for a value only the kind can judge (a GMT file).
        choices: ``{param: options(workspace_home) -> list}`` for parameters whose allowed values
            depend on the workspace (the admin page offers them as a list).
    """

    name: str
    title: str
    run: Callable[["JobContext"], dict]
    params: dict = field(default_factory=dict)
    cohorts: Callable[[], list[str]] | None = None
    model_kind: str | None = None
    check: Callable[[dict], None] | None = None
    choices: dict[str, Callable[[object], list[str]]] = field(default_factory=dict)

    def validate(self, params: dict) -> dict:
        """Fill defaults and coerce/check every value against its declaration.

        Raises:
            JobError: an unknown parameter, a value of the wrong type, out of range or not a choice.
        """
        out = {}
        for key in params:
            if key not in self.params and key != "cohort":
                raise JobError(f"Job kind {self.name!r} has no parameter {key!r}.",
                               f"use one of: {', '.join(['cohort', *self.params]) if self.cohorts else ', '.join(self.params) or 'none'}.")
        if self.cohorts is not None:
            cohort = params.get("cohort")
            if not cohort:
                raise JobError(f"A {self.name} job needs a cohort.", f"pass --cohort NAME (one of: {', '.join(self.cohorts())}).")
            options = self.cohorts()
            if cohort not in options:
                raise JobError(f"Cohort {cohort!r} cannot be used by a {self.name} job.",
                               unknown_fix("cohorts", str(cohort), options, "pathviz cohort list"))
            out["cohort"] = cohort
        for key, spec in self.params.items():
            value = params.get(key, spec.get("default"))
            default = spec.get("default")
            try:
                if isinstance(default, bool):
                    value = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
                elif isinstance(default, int):
                    value = int(value)
                elif isinstance(default, float):
                    value = float(value)
                elif value is not None:
                    value = str(value)
            except (TypeError, ValueError) as exc:
                raise JobError(f"Parameter {key}={value!r} of {self.name} is not a {type(default).__name__}.",
                               f"give a {type(default).__name__} ({spec.get('help', '')}).") from exc
            lo, hi = spec.get("min"), spec.get("max")
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                raise JobError(f"Parameter {key}={value} of {self.name} is outside [{lo}, {hi}].", f"choose a value in [{lo}, {hi}].")
            if "choices" in spec and value not in spec["choices"]:
                raise JobError(f"Parameter {key}={value!r} of {self.name} is not one of {spec['choices']}.",
                               f"choose one of {', '.join(map(str, spec['choices']))}.")
            out[key] = value
        if self.check is not None:
            self.check(out)
        return out


_JOB_KINDS: dict[str, JobKind] = {}


def register_job_kind(kind: JobKind) -> JobKind:
    """Register (or replace) a job kind; returns it."""
    _JOB_KINDS[kind.name] = kind
    return kind


def job_kinds() -> dict[str, JobKind]:
    """The registered job kinds by name: the built-in ones, plus those registered by the modules
    named in ``PATHVIZ_JOB_PLUGINS`` (comma-separated importable module names; a site's own
    model families, or test kinds), imported on first call in every process, workers included.

    Raises:
        JobError: a plugin module cannot be imported.
    """
    import importlib

    import pathviz.jobs.kinds  # noqa: F401  (registers the built-in kinds)

    for mod in filter(None, (m.strip() for m in os.environ.get("PATHVIZ_JOB_PLUGINS", "").split(","))):
        try:
            importlib.import_module(mod)
        except ImportError as exc:
            raise JobError(f"Job plugin module {mod!r} (PATHVIZ_JOB_PLUGINS) cannot be imported: {exc}.",
                           "fix the module name or its PYTHONPATH, or unset PATHVIZ_JOB_PLUGINS.") from exc
    return dict(_JOB_KINDS)


def job_kind(name: str) -> JobKind:
    """One job kind. Raises JobError naming the closest kinds when unknown."""
    kinds = job_kinds()
    if name not in kinds:
        raise JobError(f"Unknown job kind {name!r}.", unknown_fix("job kinds", name, list(kinds), "pathviz jobs kinds"))
    return kinds[name]


@dataclass
class JobContext:
    """What a running job gets: its id and parameters, the workspace, and a progress reporter
    ``progress(fraction 0..1, message)`` that updates the database (throttled) and the log."""

    job_id: int
    params: dict
    workspace: object
    progress: Callable[[float, str], None]


@dataclass(frozen=True)
class Job:
    """A read-only snapshot of one job row (see :class:`pathviz.store.models.JobRecord`)."""

    id: int
    kind: str
    params: dict
    status: str
    progress: float
    message: str
    device: str
    timeout_s: float | None
    cancel_requested: bool
    worker_pid: int | None
    job_pid: int | None
    result: dict | None
    error: str | None
    log_path: str | None
    submitted_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def seconds(self) -> float | None:
        """Run time so far (or in total), seconds; None before it starts."""
        if self.started_at is None:
            return None
        end = self.finished_at or datetime.now(timezone.utc)
        start = self.started_at if self.started_at.tzinfo else self.started_at.replace(tzinfo=timezone.utc)
        end = end if end.tzinfo else end.replace(tzinfo=timezone.utc)
        return (end - start).total_seconds()

    def to_dict(self) -> dict:
        """JSON-ready dict (times as ISO 8601 UTC)."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for k in ("created_at", "started_at", "finished_at"):
            d[k] = d[k].isoformat() if d[k] else None
        return d

    @classmethod
    def from_record(cls, r: JobRecord) -> "Job":
        return cls(id=r.id, kind=r.kind, params=json.loads(r.params or "{}"), status=r.status, progress=float(r.progress or 0),
                   message=r.message or "", device=r.device, timeout_s=r.timeout_s, cancel_requested=bool(r.cancel_requested),
                   worker_pid=r.worker_pid, job_pid=r.job_pid, result=json.loads(r.result) if r.result else None,
                   error=r.error, log_path=r.log_path, submitted_by=r.submitted_by or "", created_at=r.created_at,
                   started_at=r.started_at, finished_at=r.finished_at)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def worker_alive(home, device: str, pid: int | None) -> bool:
    """True when the worker ``pid`` still serves ``device`` of the workspace at ``home``: it holds
    the device lock (``$PATHVIZ_HOME/jobs/worker-<device>.lock``, ``flock``) and wrote its pid
    there. A lock that is free, or held by a later worker, means that worker is gone (whatever
    host it ran on, and however the clock moved since)."""
    from pathviz.jobs.worker import lock_holder

    return pid is not None and lock_holder(home, device) == pid


class JobQueue:
    """The queue of one workspace.

    Args:
        db: the workspace :class:`~pathviz.store.db.Database`.
        home: the workspace folder (``PATHVIZ_HOME``), where the workers' locks are.
    """

    def __init__(self, db: Database, home):
        self.db, self.home = db, home

    # -- submitting and reading -------------------------------------------------------------
    def submit(self, kind: str, params: dict | None = None, device: str = "default", timeout_s: float | None = DEFAULT_TIMEOUT_S,
               *, actor) -> Job:
        """Queue a job of a registered kind; parameters are validated first. Audited as
        ``job.submitted``; ``submitted_by`` is the actor's username.

        Args:
            actor: who submits (:class:`~pathviz.auth.policy.Actor`; needs ``jobs.submit``:
                researchers, admins, the CLI operator, PathViz's own first-start automation).

        Raises:
            PermissionDeniedError: the actor may not run jobs.
            JobError: unknown kind, invalid parameters.
        """
        require(actor, "jobs.submit", "submit jobs")
        spec = job_kind(kind)
        clean = spec.validate(dict(params or {}))

        def insert(s) -> Job:
            rec = JobRecord(kind=kind, params=json.dumps(clean), status="queued", device=device, timeout_s=timeout_s,
                            submitted_by=actor.username, message="waiting for a worker")
            s.add(rec)
            s.flush()
            return Job.from_record(rec)

        job = self.db.write(insert)
        AuditLog(self.db).record(actor, "job.submitted", "job", job.id, {"kind": kind, "params": clean, "device": device})
        return job

    def get(self, job_id: int) -> Job:
        """One job (after marking dead workers' jobs interrupted). Raises JobError when unknown."""
        self.reap_interrupted()
        with self.db.session() as s:
            rec = s.get(JobRecord, int(job_id))
        if rec is None:
            raise JobError(f"No job with id {job_id}.", "list jobs with `pathviz jobs list`.")
        return Job.from_record(rec)

    def list(self, status: str | tuple[str, ...] | None = None, kind: str | None = None, limit: int = 50) -> list[Job]:
        """Jobs, newest first (after marking dead workers' jobs interrupted)."""
        self.reap_interrupted()
        q = select(JobRecord)
        if status:
            q = q.where(JobRecord.status.in_((status,) if isinstance(status, str) else status))
        if kind:
            q = q.where(JobRecord.kind == kind)
        with self.db.session() as s:
            return [Job.from_record(r) for r in s.scalars(q.order_by(JobRecord.id.desc()).limit(limit))]

    def active(self, kind: str | None = None) -> list[Job]:
        """Queued and running jobs, oldest first."""
        return sorted(self.list(ACTIVE, kind, limit=1000), key=lambda j: j.id)

    # -- transitions ------------------------------------------------------------------------
    def _update(self, job_id: int, expect: tuple[str, ...], **values) -> bool:
        with self.db.session() as s:
            res = s.execute(update(JobRecord).where(JobRecord.id == int(job_id), JobRecord.status.in_(expect)).values(**values))
            s.commit()
            return res.rowcount == 1

    def claim_next(self, device: str, worker_pid: int) -> Job | None:
        """Atomically move the oldest queued job of ``device`` to ``running`` for this worker."""
        while True:
            with self.db.session() as s:
                rec = s.scalars(select(JobRecord).where(JobRecord.status == "queued", JobRecord.device == device)
                                .order_by(JobRecord.id).limit(1)).first()
            if rec is None:
                return None
            if self._update(rec.id, ("queued",), status="running", started_at=_now(), worker_pid=worker_pid,
                            worker_host=socket.gethostname(), message="starting"):
                return self.get(rec.id)

    def set_job_process(self, job_id: int, pid: int, log_path: str) -> None:
        self._update(job_id, ("running",), job_pid=pid, log_path=log_path)

    def report(self, job_id: int, fraction: float, message: str) -> bool:
        """Record progress of a running job (fraction clipped to [0, 1]); False once it is not running."""
        return self._update(job_id, ("running",), progress=min(max(float(fraction), 0.0), 1.0), message=str(message)[:500])

    def finish(self, job_id: int, status: str, error: str | None = None, result: dict | None = None, message: str | None = None) -> bool:
        """Move a running job to a finished status; False if it was not running (already finished)."""
        if status not in FINISHED:
            raise ValueError(f"{status!r} is not a finished status {FINISHED}")
        values = {"status": status, "finished_at": _now(), "error": error,
                  "result": json.dumps(result) if result is not None else None}
        if status == "succeeded":
            values["progress"] = 1.0
        if message is not None:
            values["message"] = message
        return self._update(job_id, ("running",), **values)

    def cancel(self, job_id: int, *, actor) -> Job:
        """Cancel a job: a queued one at once; a running one is flagged and its worker kills its
        whole process tree within a second. Audited as ``job.cancelled``.

        Raises:
            PermissionDeniedError: the actor neither manages jobs (``jobs.manage``) nor submitted this one.
            JobError: unknown or finished job.
        """
        job = self.get(job_id)
        if not (actor is not None and job.submitted_by == actor.username and actor.can("jobs.submit")):
            require(actor, "jobs.manage", "cancel other users' jobs")
        if job.finished:
            raise JobError(f"Job {job_id} already {job.status}.", "nothing to cancel.")
        if not self._update(job_id, ("queued",), status="cancelled", finished_at=_now(), message="cancelled before it started"):
            self._update(job_id, ("running",), cancel_requested=1, message="cancelling")
        AuditLog(self.db).record(actor, "job.cancelled", "job", job_id, {"kind": job.kind, "was": job.status})
        return self.get(job_id)

    def cancel_requested(self, job_id: int) -> bool:
        with self.db.session() as s:
            rec = s.get(JobRecord, int(job_id))
        return bool(rec and rec.cancel_requested)

    def reap_interrupted(self) -> list[int]:
        """Mark ``interrupted`` every running job whose worker is gone (:func:`worker_alive`), and
        end its job process if one is left. Returns the ids marked."""
        with self.db.session() as s:
            running = list(s.scalars(select(JobRecord).where(JobRecord.status == "running")))
        marked = []
        for r in running:
            if worker_alive(self.home, r.device, r.worker_pid):
                continue
            if self._update(r.id, ("running",), status="interrupted", finished_at=_now(),
                            error="The worker running this job stopped (killed or the machine restarted); any model "
                                  "version it was writing was discarded.",
                            message="interrupted; resubmit it to run again"):
                marked.append(r.id)
                if r.worker_host in (None, socket.gethostname()):
                    _kill_orphan(r.job_pid)
        return marked


def _kill_orphan(pid: int | None) -> None:
    """End a job process left behind by a dead worker (it also ends itself when its parent dies)."""
    if pid and pid != os.getpid():
        from pathviz.jobs.worker import kill_tree

        kill_tree(pid, must_contain="pathviz.jobs.runner")
