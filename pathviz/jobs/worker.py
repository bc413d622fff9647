"""Worker processes: take queued jobs one at a time per device and run each in its own process
(``python -m pathviz.jobs.runner JOB_ID``, a new session, output to ``$PATHVIZ_HOME/jobs/<id>.log``),
watching it with psutil as MONAI Label watches its training subprocesses:

* cancel requested -> the job's whole process tree is terminated (then killed after 5 s);
* past its ``timeout_s`` -> the same, and the job ends ``failed`` ("timed out");
* the job process dies without reporting (crash, out of memory) -> ``failed`` with its exit code;
* the worker itself is killed -> its job is marked ``interrupted`` by the next reader of the
  queue, and the job process ends itself when it sees its parent gone (:mod:`pathviz.jobs.runner`).

One worker per (workspace, device) holds ``$PATHVIZ_HOME/jobs/worker-<device>.lock`` (``flock``),
so jobs of one device run one at a time. The dashboard starts a worker when none holds the lock
(:func:`ensure_worker`); ``pathviz worker`` runs one by hand.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from pathviz.errors import PathVizError
from pathviz.jobs.queue import JobQueue

POLL_S = 0.2
STARTING_S = 10.0  # ensure_worker starts no second worker for this long after starting one
KILL_GRACE_S = 5.0
_DEVICE = re.compile(r"^[A-Za-z0-9_:-]{1,32}$")


def jobs_dir(home: Path) -> Path:
    """``$PATHVIZ_HOME/jobs``: job logs and worker locks."""
    d = Path(home) / "jobs"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _lock_path(home: Path, device: str) -> Path:
    if not _DEVICE.match(device):
        raise PathVizError(f"Invalid device name {device!r}.", "use letters, digits, ':', '_' or '-' (e.g. default, cuda:0).")
    return jobs_dir(home) / f"worker-{device}.lock"


def kill_tree(pid: int, grace_s: float = KILL_GRACE_S, must_contain: str | None = None) -> None:
    """Terminate process ``pid`` and all its descendants (SIGTERM, then SIGKILL after ``grace_s``).
    With ``must_contain``, only when that text is in the process's command line (guards a reused pid)."""
    import psutil

    try:
        root = psutil.Process(pid)
        if must_contain and must_contain not in " ".join(root.cmdline()):
            return
        procs = [root, *root.children(recursive=True)]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return
    for p in procs:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=grace_s)


def lock_holder(home: Path, device: str = "default") -> int | None:
    """The pid of the worker holding the lock of ``device`` in this workspace, None when no
    worker holds it. (The probe holds the lock for microseconds; a worker starting in that
    instant retries, see :meth:`Worker.acquire`.)"""
    path = _lock_path(home, device)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            text = fh.read().strip()
            return int(text) if text.isdigit() else -1  # held, pid not written yet
        fcntl.flock(fh, fcntl.LOCK_UN)
    return None


def worker_running(home: Path, device: str = "default") -> bool:
    """True when a worker holds the lock of ``device`` in this workspace."""
    return lock_holder(home, device) is not None


def ensure_worker(home: Path, device: str = "default", idle_exit_s: float = 600.0) -> bool:
    """Start a background worker for ``device`` unless one is running. The worker is a detached
    process (own session; survives the page or CLI that started it) that exits after
    ``idle_exit_s`` seconds without jobs. Returns True when one was started."""
    if worker_running(home, device):
        return False
    starting = jobs_dir(home) / f"worker-{device}.starting"
    try:  # one start at a time: a worker takes a second or two to import and lock
        if time.time() - starting.stat().st_mtime < STARTING_S:
            return False
    except FileNotFoundError:
        pass
    starting.touch()
    log = open(jobs_dir(home) / f"worker-{device}.log", "ab")
    env = {**os.environ, "PATHVIZ_HOME": str(home)}
    subprocess.Popen([sys.executable, "-m", "pathviz", "worker", "--device", device, "--idle-exit", str(idle_exit_s), "--quiet-if-running"],
                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True, close_fds=True)
    log.close()
    return True


class Worker:
    """Runs the jobs of one device of one workspace, one at a time.

    Args:
        workspace: the :class:`~pathviz.store.workspace.Workspace`.
        device: queue name; jobs are submitted to it (``default``; e.g. ``cuda:0`` on a multi-GPU host).
        log: ``log(line)`` for the worker's own messages (default: print to stdout).
    """

    def __init__(self, workspace, device: str = "default", log=None):
        self.ws, self.device = workspace, device
        self.queue = JobQueue(workspace.db, workspace.home)
        self.log = log or (lambda line: print(line, flush=True))
        self._lock = None
        self._stop = False

    def acquire(self, patience_s: float = 1.0) -> bool:
        """Take the device lock; False when another worker holds it (a reader probing the lock
        holds it for microseconds, so a busy lock is retried for ``patience_s`` seconds)."""
        fh = open(_lock_path(self.ws.home, self.device), "a+")
        deadline = time.monotonic() + patience_s
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    fh.close()
                    return False
                time.sleep(0.05)
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._lock = fh
        return True

    def release(self) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def run(self, once: bool = False, idle_exit_s: float | None = None) -> int:
        """Serve jobs until stopped (SIGTERM/SIGINT), or after one job with ``once``, or after
        ``idle_exit_s`` seconds with nothing queued. Returns the number of jobs run.

        Raises:
            PathVizError: another worker already serves this device.
        """
        if self._lock is None and not self.acquire():
            raise PathVizError(f"A worker is already running for device {self.device!r} of {self.ws.home}.",
                               "let it run the jobs (see `pathviz jobs list`), or stop it first.")
        handlers = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        done, idle_since = 0, time.monotonic()
        self.log(f"worker {os.getpid()} serving device {self.device!r} of {self.ws.home}")
        try:
            while not self._stop:
                self.queue.reap_interrupted()
                job = self.queue.claim_next(self.device, os.getpid())
                if job is None:
                    if once or (idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s):
                        break
                    time.sleep(POLL_S)
                    continue
                self._run_job(job)
                done += 1
                idle_since = time.monotonic()
                if once:
                    break
        except KeyboardInterrupt:
            self.log(f"worker {os.getpid()} stopping")
        finally:
            self.release()
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        # a job submitted while this worker was deciding to leave found the lock held and started
        # nobody: serve it (unless stopped, or another worker took over)
        waiting = any(j.device == self.device for j in self.queue.list("queued", limit=1000))
        if not self._stop and not once and waiting and self.acquire(0.0):
            return done + self.run(once=once, idle_exit_s=idle_exit_s)
        return done

    def _on_signal(self, signum, _frame) -> None:
        self._stop = True
        raise KeyboardInterrupt  # leave the wait loop at once; _run_job ends the job process

    def _run_job(self, job) -> None:
        log_path = jobs_dir(self.ws.home) / f"{job.id}.log"
        self.log(f"job {job.id} ({job.kind}) started; log {log_path}")
        env = {**os.environ, "PATHVIZ_HOME": str(self.ws.home), "PYTHONUNBUFFERED": "1", "PATHVIZ_WORKER_PID": str(os.getpid())}
        if self.device not in ("default", "auto"):
            env["PATHVIZ_DEVICE"] = self.device.split(":")[0]
            if ":" in self.device:
                env["CUDA_VISIBLE_DEVICES"] = self.device.split(":", 1)[1]
        with open(log_path, "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "pathviz.jobs.runner", str(job.id)], stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        self.queue.set_job_process(job.id, proc.pid, str(log_path))
        deadline = None if not job.timeout_s else time.monotonic() + job.timeout_s
        try:
            while proc.poll() is None:
                if self.queue.cancel_requested(job.id):
                    kill_tree(proc.pid)
                    self.queue.finish(job.id, "cancelled", message="cancelled; its processes were stopped")
                    self.log(f"job {job.id} cancelled")
                    return
                if deadline is not None and time.monotonic() > deadline:
                    kill_tree(proc.pid)
                    self.queue.finish(job.id, "failed", error=f"Timed out after {job.timeout_s:.0f} s.",
                                      message="timed out")
                    self.log(f"job {job.id} timed out")
                    return
                time.sleep(POLL_S)
        except KeyboardInterrupt:
            kill_tree(proc.pid)
            self.queue.finish(job.id, "interrupted", error="The worker was stopped while the job ran; any model version it "
                                                             "was writing was discarded.",
                              message="interrupted; resubmit it to run again")
            self.log(f"job {job.id} interrupted (worker stopping)")
            raise
        code = proc.returncode
        if self.queue.finish(job.id, "failed", error=f"The job process exited with code {code} without reporting a result "
                                                       f"(crash or out of memory?); see its log {log_path}.", message="failed"):
            self.log(f"job {job.id} failed: exit code {code}")
        else:
            self.log(f"job {job.id} {self.queue.get(job.id).status}")
