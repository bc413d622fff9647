"""The viewer's tile routes (pathviz.viewer.routes) over real HTTP: DZI, slide tiles, overlay tiles,
refusals, caching, the authorize hook, and their wiring into ``streamlit run app.py``."""

from __future__ import annotations

import http.client
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import pytest
import uvicorn
from PIL import Image
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from conftest import TEST_PASSWORD, make_user
from pathviz.auth.policy import Actor
from pathviz.auth.web import SCOPE_ACTOR
from pathviz.viewer import routes, shared
from pathviz.viewer.routes import TcpNoDelayMiddleware, tile_routes

ROOT = Path(__file__).resolve().parents[1]


class _LoggedIn:
    """Stands in for app.py's login gate after a successful login: a pathologist's request (the
    gate itself, cookies and refusals are tested in tests/security/test_accounts_web.py)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        scope[SCOPE_ACTOR] = Actor("tester", frozenset({"pathologist"}))
        await self.app(scope, receive, send)


def tiles_app(*args, nodelay: bool = True, **kwargs) -> Starlette:
    """A Starlette app with the tile routes (and, as app.py, the TCP_NODELAY middleware), as a
    logged-in pathologist reaches them."""
    middleware = [Middleware(TcpNoDelayMiddleware)] if nodelay else []
    return Starlette(routes=tile_routes(*args, **kwargs), middleware=middleware + [Middleware(_LoggedIn)])


def keepalive_median_ms(port: int, path: str, n: int = 15, headers: dict | None = None) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        status, _, _ = get(port, path, conn, headers)
        times.append((time.perf_counter() - t0) * 1e3)
        assert status == 200
    conn.close()
    return float(np.median(times))


class Server:
    """uvicorn serving an ASGI app in a thread of the test process, on a socket bound beforehand
    (as ``streamlit run`` does: ``proto`` 0, so asyncio leaves Nagle's algorithm on)."""

    def __init__(self, app):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "Server":
        self.thread.start()
        deadline = time.time() + 10
        while not self.server.started:
            assert time.time() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def get(port: int, path: str, conn: http.client.HTTPConnection | None = None, headers: dict | None = None):
    """GET a raw path (sent as is: no client-side normalisation of '..' or %-escapes)."""
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    if conn is None:
        c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


@pytest.fixture
def server(demo_ws):
    """The routes as app.py mounts them (default service: the process-wide one of PATHVIZ_HOME)."""
    shared.reset()
    with Server(tiles_app()) as srv:
        yield srv, demo_ws
    shared.reset()


def test_slide_dzi_and_tiles(server):
    srv, ws = server
    sid = ws.slides()[0].slide_id
    status, headers, body = get(srv.port, f"/tiles/slide/{sid}.dzi")
    assert status == 200 and headers["content-type"].startswith("application/xml")
    assert b'Width="2220"' in body and b'TileSize="256"' in body
    top = shared.tile_service().slide_geometry(sid)["levels"] - 1
    for ext in ("jpeg", "jpg"):
        status, headers, body = get(srv.port, f"/tiles/slide/{sid}_files/{top}/4_5.{ext}")
        assert status == 200 and headers["content-type"] == "image/jpeg"
        assert "max-age=3600" in headers["cache-control"]
        assert "access-control-allow-origin" not in headers  # same origin as the app: no CORS at all
        img = Image.open(io.BytesIO(body))
        assert img.format == "JPEG" and img.size == (256, 256)
        assert np.asarray(img).std() > 5  # real tissue, not blank
    status, headers, body = get(srv.port, "/tiles/health")
    assert (status, body) == (200, b"ok") and "access-control-allow-origin" not in headers


def test_overlay_tiles_and_cache(server):
    srv, ws = server
    sid = ws.slides()[0].slide_id
    service = shared.tile_service(ws)  # the pages' workspace object: the routes must use this very service
    top = service.slide_geometry(sid)["levels"] - 1
    url = f"/tiles/overlay/{sid}/haematoxylin/viridis/0.01/0.08_files/{top - 3}/0_0.png"
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)  # keep-alive, as the browser
    status, headers, body = get(srv.port, url, conn)
    assert status == 200 and headers["content-type"] == "image/png" and "max-age=3600" in headers["cache-control"]
    assert "access-control-allow-origin" not in headers
    img = Image.open(io.BytesIO(body))
    assert img.mode == "RGBA" and img.size[0] <= 256
    alpha = np.asarray(img)[..., 3]
    assert (alpha == 255).any() and (alpha == 0).any()  # tissue patches drawn, glass transparent
    hits, misses = service.cache.hits, service.cache.misses
    status, _, again = get(srv.port, url, conn)
    assert status == 200 and again == body
    assert (service.cache.hits, service.cache.misses) == (hits + 1, misses)  # second request: from the cache
    _, _, stats = get(srv.port, "/tiles/stats", conn)
    assert json.loads(stats) == {"tiles_served": service.tiles_served, "cache_hits": hits + 1, "cache_misses": misses}
    status, _, mask = get(srv.port, f"/tiles/overlay/{sid}/tissue_mask/solid:%2300b050/0/1_files/{top - 2}/0_0.png", conn)
    assert status == 200 and Image.open(io.BytesIO(mask)).mode == "RGBA"
    conn.close()


def test_unknown_slide_is_404_naming_no_other_slide(server):
    srv, ws = server
    ids = [r.slide_id for r in ws.slides()]
    near = ids[0][:-1] + ("x" if ids[0][-1] != "x" else "y")  # one letter off: a "did you mean" would name ids[0]
    for path in (f"/tiles/slide/{near}.dzi", f"/tiles/slide/{near}_files/0/0_0.jpeg",
                 f"/tiles/overlay/{near}/haematoxylin/viridis/0/1_files/0/0_0.png"):
        status, headers, body = get(srv.port, path)
        assert status == 404, (path, body)
        text = body.decode()
        assert near in text and "Fix:" in text
        assert not any(i in text for i in ids), text
        assert "access-control-allow-origin" not in headers


@pytest.mark.parametrize(
    ("path", "codes"),
    [
        ("/tiles/slide/../../etc/passwd", (404,)),
        ("/tiles/slide/..%2f..%2fpathviz.db.dzi", (404,)),
        ("/tiles/slide/%2e%2e%2fetc_files/0/0_0.jpeg", (404,)),
        ("/tiles/slide/{sid}%2f..%2f..%2fpathviz.db_files/0/0_0.jpeg", (404,)),
        ("/tiles/overlay/{sid}/..%2f..%2fderived/viridis/0/1_files/0/0_0.png", (404,)),
        ("/tiles/overlay/{sid}/Haematoxylin.npz/viridis/0/1_files/0/0_0.png", (400,)),
        ("/tiles/overlay/{sid}/no_such_layer/viridis/0/1_files/0/0_0.png", (404,)),
        ("/tiles/overlay/{sid}/haematoxylin/notacmap/0/1_files/0/0_0.png", (400,)),
        ("/tiles/overlay/{sid}/haematoxylin/solid:%23zz/0/1_files/0/0_0.png", (400,)),
        ("/tiles/overlay/{sid}/haematoxylin/viridis/nan/1_files/0/0_0.png", (400,)),
        ("/tiles/overlay/{sid}/haematoxylin/viridis/0/1e999_files/0/0_0.png", (400,)),
        ("/tiles/slide/{sid}_files/99/0_0.jpeg", (404,)),
        ("/tiles/slide/{sid}_files/0/5_5.jpeg", (404,)),
        ("/tiles/slide/{sid}_files/-1/0_0.jpeg", (404,)),
    ],
)
def test_bad_requests_are_refused_and_name_no_file(server, path, codes):
    srv, ws = server
    sid = ws.slides()[0].slide_id
    status, headers, body = get(srv.port, path.format(sid=sid))
    assert status in codes, (status, body)
    assert headers["content-type"].startswith("text/plain") and "access-control-allow-origin" not in headers
    assert b"root:" not in body and b"SQLite" not in body and str(ws.home).encode() not in body


def test_authorize_hook_guards_every_tile_route(server, monkeypatch):
    srv, ws = server
    sid = ws.slides()[0].slide_id
    top = shared.tile_service(ws).slide_geometry(sid)["levels"] - 1
    tile = f"/tiles/slide/{sid}_files/{top}/0_0.jpeg"
    assert get(srv.port, tile)[0] == 200  # now in the tile cache
    asked = []

    async def refuse(request, slide_id, accounts):
        asked.append((request.url.path, slide_id))
        raise HTTPException(403, "Not allowed to see this slide. Fix: sign in as a user with access to it.")

    monkeypatch.setattr(routes, "authorize", refuse)
    paths = [f"/tiles/slide/{sid}.dzi", tile, f"/tiles/overlay/{sid}/haematoxylin/viridis/0/1_files/{top}/0_0.png",
             "/tiles/stats"]
    for path in paths:
        status, _, body = get(srv.port, path)
        assert status == 403 and b"Not allowed" in body, (path, status)
    assert asked == [(p, None) for p in paths]  # checked before the slide id is even looked up
    assert get(srv.port, "/tiles/health")[0] == 200


def test_routes_under_base_url_path(demo_ws):
    shared.reset()
    sid = demo_ws.slides()[0].slide_id
    with Server(tiles_app("/pv/")) as srv:
        assert get(srv.port, f"/pv/tiles/slide/{sid}.dzi")[0] == 200
        assert get(srv.port, f"/tiles/slide/{sid}.dzi")[0] == 404
    shared.reset()


class _SlowService:
    """A tile service whose rendering blocks until released."""

    def __init__(self):
        self.release = threading.Event()
        self.tiles_served = 0

    def cached_slide_tile(self, *args):
        return None

    def slide_tile(self, *args):
        assert self.release.wait(20)
        return b"\xff\xd8 fake jpeg"


def test_rendering_does_not_block_the_event_loop():
    svc = _SlowService()
    with Server(tiles_app(service=lambda: svc)) as srv:
        result = {}
        t = threading.Thread(target=lambda: result.update(tile=get(srv.port, "/tiles/slide/abc_files/0/0_0.jpeg")))
        t.start()
        time.sleep(0.3)  # the tile request is now rendering
        t0 = time.perf_counter()
        assert get(srv.port, "/tiles/health")[0] == 200
        assert time.perf_counter() - t0 < 2.0, "a rendering tile blocked the server"
        assert t.is_alive()
        svc.release.set()
        t.join(20)
        assert result["tile"][0] == 200 and result["tile"][2] == b"\xff\xd8 fake jpeg"


def test_keepalive_responses_are_not_delayed_by_nagle(demo_ws):
    """Without TCP_NODELAY every keep-alive response after the first waits ~40 ms for the client's
    delayed ACK (uvicorn writes headers and body separately); the middleware removes that."""
    with Server(tiles_app(nodelay=False)) as srv:
        slow = keepalive_median_ms(srv.port, "/tiles/health")
    with Server(tiles_app()) as srv:
        fast = keepalive_median_ms(srv.port, "/tiles/health")
    print(f"keep-alive median: {slow:.2f} ms without TCP_NODELAY, {fast:.2f} ms with")
    assert fast < 15.0
    if slow > 30.0:  # Linux's delayed ACK: the reason for the middleware
        assert fast < slow / 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_streamlit_run_app_serves_tiles_on_its_own_port(demo_ws, tmp_path):
    """The real wiring: ``streamlit run app.py`` (behind a path prefix, as behind a reverse proxy)
    serves the pages and the tiles on one port; Streamlit's own path checks still apply."""
    port = _free_port()
    env = dict(os.environ, PATHVIZ_HOME=str(demo_ws.home))
    log = open(tmp_path / "streamlit.log", "w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "streamlit"), "run", str(ROOT / "app.py"), "--server.port", str(port),
         "--server.headless", "true", "--browser.gatherUsageStats", "false", "--server.baseUrlPath", "pv"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                if get(port, "/pv/_stcore/health")[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.time() < deadline, (tmp_path / "streamlit.log").read_text()
            time.sleep(0.3)
        sid = demo_ws.slides()[0].slide_id
        assert get(port, f"/pv/tiles/slide/{sid}.dzi")[:3:2] == (401, b"Log in first.")  # no session: refused
        # log in through the app's own form (a real account), as the browser does
        make_user(demo_ws, "pat", ("pathologist",))
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("POST", "/pv/session/login", body=urlencode({"username": "pat", "password": TEST_PASSWORD, "next": "/pv/"}),
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        r.read()
        assert r.status == 303 and r.getheader("location") == "/pv/"
        cookie = r.getheader("set-cookie")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/pv" in cookie
        auth = {"Cookie": cookie.split(";")[0]}
        status, headers, body = get(port, f"/pv/tiles/slide/{sid}.dzi", headers=auth)
        assert status == 200 and b'TileSize="256"' in body
        status, headers, body = get(port, f"/pv/tiles/slide/{sid}_files/8/0_0.jpeg", headers=auth)
        assert status == 200 and headers["content-type"] == "image/jpeg" and body[:2] == b"\xff\xd8"
        assert "access-control-allow-origin" not in headers
        assert get(port, "/pv/tiles/slide/unknown-slide.dzi", headers=auth)[0] == 404
        assert get(port, "/pv/tiles/slide/../../../etc/passwd", headers=auth)[0] in (400, 401, 404)
        status, _, stats = get(port, "/pv/tiles/stats", headers=auth)
        assert status == 200 and json.loads(stats)["tiles_served"] == 1
        assert keepalive_median_ms(port, f"/pv/tiles/slide/{sid}_files/8/0_0.jpeg", headers=auth) < 15.0  # TCP_NODELAY is on
        assert get(port, "/pv/", headers=auth)[0] == 200  # the pages, same port
        status, headers, _ = get(port, "/pv/", headers={"Accept": "text/html"})  # a page without a session
        assert status == 303 and headers["location"].startswith("/pv/session/login?next=")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_shared_service_follows_the_pages_workspace(demo_ws, monkeypatch):
    """The routes' service is the pages' workspace's; a new workspace object for the home (after the
    dashboard's resource cache was cleared) replaces it; without a page, PATHVIZ_HOME's is created."""
    from pathviz.settings import Settings
    from pathviz.store.workspace import Workspace

    shared.reset()
    svc = shared.tile_service()  # no page yet: created lazily for PATHVIZ_HOME
    assert svc.workspace.home == demo_ws.home and shared.tile_service() is svc
    assert shared.tile_service(demo_ws) is not svc  # the pages' object takes over...
    assert shared.tile_service() is shared.tile_service(demo_ws)  # ...and the routes follow it
    again = Workspace(Settings.from_env(demo_ws.home))
    assert shared.tile_service(again).workspace is again and shared.tile_service().workspace is again
    shared.reset()
