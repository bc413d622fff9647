"""Model registry speed, in one run: listing 1,000 versions and resolving an alias, against the
unavoidable floor of reading the same 1,000 manifest files with ``json.load``.

Builds a throw-away registry of 10 models x 100 versions (tiny artifacts), then times
``ModelRegistry.versions()`` (the admin page's and ``pathviz models list``'s query) and
``ModelRegistry.get(kind/name@production)`` over repeats. Prints medians, the ratio to the floor,
and ``registry_list_ms_1000_versions: X.X`` (target < 100 ms).

Then the job queue: with a worker already running (``pathviz worker``), submits small real jobs
(``verify_models``) one after another and times submit -> ``running`` (claimed by the worker) and
submit -> first progress from the job process, against the floor of starting a bare Python
process (``python -c pass``) in the same run. Last line ``jobs_start_latency_s: X.XX`` (median
submit -> running; target < 1 s).
Run: ``python bench/registry.py [--repeats 7]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pathviz.store.registry import MANIFEST, ModelRegistry  # noqa: E402

from pathviz.auth.policy import operator

OPERATOR = operator()


def _write(folder: Path) -> dict:
    (folder / "weights.pt").write_bytes(b"\0" * 256)
    (folder / "model.json").write_text("{}")
    return {"c_index": 0.6}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        reg = ModelRegistry(tmp)
        t0 = time.perf_counter()
        for m in range(10):
            for _ in range(100):
                reg.create_version("coxpasnet", f"model-{m:02d}", _write, cohort="bench")
            reg.promote(f"coxpasnet/model-{m:02d}@v0050", actor=OPERATOR)
        build = time.perf_counter() - t0
        files = sorted(Path(tmp).glob(f"*/*/v*/{MANIFEST}"))
        floor, listing, alias = [], [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            for f in files:
                json.loads(f.read_text())
            floor.append(time.perf_counter() - t)
            t = time.perf_counter()
            n = len(reg.versions())
            listing.append(time.perf_counter() - t)
            t = time.perf_counter()
            reg.get("coxpasnet/model-07@production")
            alias.append(time.perf_counter() - t)
        assert n == 1000 and len(files) == 1000
    med = lambda xs: statistics.median(xs) * 1000  # noqa: E731
    print(f"built 1000 versions in {build:.1f} s ({build / 1000 * 1e3:.1f} ms per version incl. hashing and rename)")
    print(f"{'':<34}{'median ms':>10}")
    print(f"{'floor: json.load of 1000 manifests':<34}{med(floor):>10.1f}")
    print(f"{'ModelRegistry.versions()':<34}{med(listing):>10.1f}   ratio vs floor {med(listing) / med(floor):.2f}")
    print(f"{'get(kind/name@production)':<34}{med(alias):>10.2f}")
    print(f"registry_list_ms_1000_versions: {med(listing):.1f}")
    jobs_latency(args.repeats)


def jobs_latency(repeats: int) -> None:
    from pathviz.jobs.queue import JobQueue
    from pathviz.jobs.worker import worker_running
    from pathviz.settings import Settings
    from pathviz.store.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Settings.from_env(Path(tmp) / "ws"))
        env = {**os.environ, "PATHVIZ_HOME": str(ws.home)}
        worker = subprocess.Popen([sys.executable, "-m", "pathviz", "worker"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            t0 = time.monotonic()
            while not worker_running(ws.home):
                if time.monotonic() - t0 > 60:
                    raise SystemExit("the worker did not start")
                time.sleep(0.05)
            queue = JobQueue(ws.db, ws.home)
            claim, first, floor = [], [], []
            for _ in range(repeats):
                t = time.perf_counter()
                subprocess.run([sys.executable, "-c", "pass"], check=True)
                floor.append(time.perf_counter() - t)
                t = time.perf_counter()
                job = queue.submit("verify_models", actor=OPERATOR)
                t_claim = None
                while True:
                    j = queue.get(job.id)
                    if t_claim is None and j.status != "queued":
                        t_claim = time.perf_counter() - t
                    if j.finished:
                        break
                    time.sleep(0.01)
                claim.append(t_claim)
                first.append(((j.finished_at - j.created_at).total_seconds()))
        finally:
            worker.terminate()
            worker.wait(30)
    med = statistics.median
    print(f"{'':<40}{'median s':>10}")
    print(f"{'floor: start a bare python process':<40}{med(floor):>10.3f}")
    print(f"{'submit -> running (claimed by worker)':<40}{med(claim):>10.3f}")
    print(f"{'submit -> finished (a tiny job, own process)':<40}{med(first):>10.3f}   ratio vs floor {med(first) / med(floor):.1f}")
    print(f"jobs_start_latency_s: {med(claim):.2f}")


if __name__ == "__main__":
    main()
