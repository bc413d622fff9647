"""Network surface (trust issue, item 3): README's run command listens on this machine only unless
told otherwise, and the Workspace page never prints a database password."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from pathviz.settings import safe_database_url

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(pid: int, port: int, timeout: float = 90.0) -> set[str]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            addrs = {c.laddr.ip for c in psutil.Process(pid).net_connections(kind="tcp")
                     if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
        except psutil.NoSuchProcess:
            raise AssertionError("the app exited") from None
        if addrs:
            return addrs
        time.sleep(0.5)
    raise AssertionError("the app did not listen")


@pytest.mark.parametrize("env, expected", [({}, {"127.0.0.1"}), ({"PATHVIZ_LISTEN_ADDRESS": "0.0.0.0"}, {"0.0.0.0"})])
def test_app_listens_on_localhost_by_default(ws, tmp_path, env, expected):
    port = _free_port()
    log = open(tmp_path / "app.log", "w")
    proc = subprocess.Popen(["bash", str(ROOT / "scripts" / "app.sh"), "--server.port", str(port), "--server.headless", "true",
                             "--browser.gatherUsageStats", "false"], cwd=ROOT, env={**os.environ, "PATHVIZ_WITH_TEST_TOOLS": "1", **env},
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        assert _listening(proc.pid, port) == expected
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
    if env:
        assert "WARNING: listening on 0.0.0.0" in (tmp_path / "app.log").read_text()


def test_database_password_is_never_shown():
    assert safe_database_url("postgresql://ana:s3cret@db.example/pathviz") == "postgresql://ana:***@db.example/pathviz"
    assert safe_database_url("sqlite:////data/pathviz.db") == "sqlite:////data/pathviz.db"
    assert "s3cret" not in safe_database_url("mysql+pymysql://u:s3cret@h/x?charset=utf8")


def test_tile_rendering_is_bounded_and_overflow_gets_503(monkeypatch):
    """At most ``max_renders`` tiles render at once; a request that cannot get a slot within the
    queue timeout is answered 503 + Retry-After instead of queueing without bound, and the server
    keeps answering other requests."""
    import threading

    from test_tileserver import Server, _SlowService, get, tiles_app

    svc = _SlowService()
    with Server(tiles_app(service=lambda: svc, max_renders=2, queue_timeout_s=0.5)) as srv:
        results = []
        threads = [threading.Thread(target=lambda i=i: results.append(get(srv.port, f"/tiles/slide/abc_files/0/{i}_0.jpeg")))
                   for i in range(5)]
        for t in threads:
            t.start()
        time.sleep(1.5)  # two render (blocked), three waited 0.5 s and were refused
        assert get(srv.port, "/tiles/health")[0] == 200
        busy = [r for r in results if r[0] == 503]
        assert len(busy) == 3 and all(r[1]["retry-after"] == "1" and b"busy" in r[2] for r in busy)
        svc.release.set()
        for t in threads:
            t.join(20)
        assert sorted(r[0] for r in results) == [200, 200, 503, 503, 503]
