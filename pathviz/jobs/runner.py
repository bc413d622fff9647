"""The job process: ``python -m pathviz.jobs.runner JOB_ID`` (started by a worker, never by hand).

Runs one job's kind with its parameters, reports progress to the database (at most twice a
second, and every change of message) and the log, and records the outcome: ``succeeded`` with the
kind's result, or ``failed`` with the error (a :class:`~pathviz.errors.PathVizError`'s message and
fix, or the exception and the last traceback line; the traceback goes to the log, without the
exception messages, which may name slides or patients: :func:`_log_failure`). When its
worker dies the process ends itself within a second (the job is then marked ``interrupted``), so
no orphan keeps training; a registry version it was writing stays a temporary folder that the
registry removes (:mod:`pathviz.store.registry`).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback


def _log_failure(exc: BaseException) -> None:
    """Print the traceback of a failed job to its log without the exceptions' messages: a message
    may name slide files, patients or cohort samples (e.g. a missing slide's path), and the log is
    read by whoever runs the server. The message itself is the job's ``error``, shown to the user
    who submitted the job; the log keeps the frames and the exception types (the chain included)."""
    chain, seen = [], set()
    while exc is not None and id(exc) not in seen:  # newest first
        seen.add(id(exc))
        chain.append(exc)
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    parts = []
    for e in reversed(chain):  # oldest first, as Python prints a chain
        frames = "".join(traceback.format_list(traceback.extract_tb(e.__traceback__)))
        parts.append(f"Traceback (most recent call last):\n{frames}{type(e).__module__}.{type(e).__qualname__} "
                     "(message withheld from the log: see the job's error)\n")
    print("\nDuring the handling of the above, this exception occurred:\n\n".join(parts), end="", flush=True)


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(3)  # the worker is gone: stop now; the queue marks the job interrupted
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    """Run job ``argv[0]``; returns the process exit status (0 whatever the job's outcome once it
    was recorded, 2 when the job cannot be found or is not running)."""
    argv = sys.argv[1:] if argv is None else argv
    # the worker that started us (passed explicitly: if it died before this line, getppid() would
    # already name the new parent and the watch would never fire)
    parent = int(os.environ.get("PATHVIZ_WORKER_PID", os.getppid()))
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    from pathviz.errors import PathVizError
    from pathviz.jobs.queue import JobContext, JobQueue, job_kind
    from pathviz.store.workspace import Workspace

    from pathviz.settings import torch_threads

    # torch/BLAS threads = the cores this process may use, or PATHVIZ_THREADS (more oversubscribes and
    # slows fits ~10x); training code calls torch.set_num_threads(torch_threads()) and records it
    cores = str(torch_threads())
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, cores)
    ws = Workspace()
    queue = JobQueue(ws.db, ws.home)
    job = queue.get(int(argv[0]))
    if job.status != "running":
        print(f"job {job.id} is {job.status}, not running", flush=True)
        return 2
    last = {"t": 0.0, "msg": None}

    def progress(fraction: float, message: str) -> None:
        now = time.monotonic()
        if message != last["msg"] or now - last["t"] > 0.5 or fraction >= 1.0:
            if message != last["msg"]:
                print(f"[{time.strftime('%H:%M:%S')}] {fraction:5.1%} {message}", flush=True)
            last.update(t=now, msg=message)
            if not queue.report(job.id, fraction, message):
                raise SystemExit(0)  # cancelled or finished elsewhere: stop working

    print(f"job {job.id}: {job.kind} {job.params}", flush=True)
    try:
        result = job_kind(job.kind).run(JobContext(job.id, job.params, ws, progress))
    except PathVizError as exc:
        _log_failure(exc)
        queue.finish(job.id, "failed", error=str(exc), message="failed")
        return 0
    except Exception as exc:  # noqa: BLE001 (every failure must reach the job row, not only ours)
        _log_failure(exc)
        queue.finish(job.id, "failed", error=f"{type(exc).__name__}: {exc}. See the job log for the traceback.", message="failed")
        return 0
    queue.finish(job.id, "succeeded", result=result or {}, message="done")
    print(f"job {job.id} succeeded: {result}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
