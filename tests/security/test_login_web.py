"""The login wall (trust issue, items 1 and 3) on a real server: only Streamlit's static files, its
health checks and the login form are public; pages redirect to the form, the websocket and tiles
are refused without a live session; the session cookie is HttpOnly/SameSite=Strict; the form
refuses cross-site posts and open redirects; logout ends the session server-side."""

from __future__ import annotations

import http.client
import socket
from urllib.parse import urlencode

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute

from conftest import TEST_PASSWORD, make_user
from pathviz.auth.web import COOKIE, LoginGateMiddleware, login_routes
from pathviz.viewer import shared
from pathviz.viewer.routes import tile_routes
from test_tileserver import Server, get


async def _page(request):
    return PlainTextResponse("the app")


async def _ws(websocket):
    await websocket.accept()
    await websocket.send_text("hello")
    await websocket.close()


@pytest.fixture
def app_server(demo_ws):
    shared.reset()
    shared.tile_service(demo_ws)
    routes = login_routes() + tile_routes() + [Route("/static/app.js", _page), Route("/_stcore/health", _page),
                                                Route("/_stcore/agent/interact", _page, methods=["GET", "POST"]),
                                                WebSocketRoute("/_stcore/stream", _ws), Route("/{rest:path}", _page)]
    app = Starlette(routes=routes, middleware=[Middleware(LoginGateMiddleware)])
    make_user(demo_ws, "pat", ("pathologist",))
    make_user(demo_ws, "onc", ("oncologist",))
    with Server(app) as srv:
        yield srv, demo_ws
    shared.reset()


def post_login(port: int, username: str, password: str, next_url: str = "/", origin: str | None = None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Host": f"127.0.0.1:{port}"}
    if origin:
        headers["Origin"] = origin
    c.request("POST", "/session/login", body=urlencode({"username": username, "password": password, "next": next_url}),
              headers=headers)
    r = c.getresponse()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()


def cookie_of(headers) -> dict:
    return {"Cookie": headers["set-cookie"].split(";")[0]}


def websocket_status(port: int, headers: dict | None = None) -> int:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    s.sendall((f"GET /_stcore/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n").encode())
    status = int(s.recv(1024).split(b" ")[1])
    s.close()
    return status


def test_everything_but_static_files_and_the_form_needs_a_session(app_server):
    srv, ws = app_server
    sid = ws.slides()[0].slide_id
    assert get(srv.port, "/static/app.js")[0] == 200 and get(srv.port, "/_stcore/health")[0] == 200
    assert get(srv.port, "/session/login")[0] == 200
    status, headers, _ = get(srv.port, "/slide_viewer?x=1", headers={"Accept": "text/html"})
    assert status == 303 and headers["location"] == "/session/login?next=%2Fslide_viewer%3Fx%3D1"
    for path in (f"/tiles/slide/{sid}.dzi", f"/tiles/slide/{sid}_files/8/0_0.jpeg", "/tiles/slide/no-such-slide.dzi",
                 "/tiles/stats", "/_stcore/agent/interact", "/media/abc.png"):
        status, headers, body = get(srv.port, path)
        assert (status, body) == (401, b"Log in first."), path  # the same answer for known and unknown slides
        assert "access-control-allow-origin" not in headers
    assert websocket_status(srv.port) == 403
    bogus = {"Cookie": f"{COOKIE}=forged-token"}
    assert get(srv.port, f"/tiles/slide/{sid}.dzi", headers=bogus)[0] == 401
    assert websocket_status(srv.port, bogus) == 403


def test_login_sets_a_strict_httponly_cookie_and_roles_gate_tiles(app_server):
    srv, ws = app_server
    sid = ws.slides()[0].slide_id
    status, headers, body = post_login(srv.port, "pat", "wrong password!")
    assert status == 401 and b"Wrong username or password" in body and "set-cookie" not in headers
    status, headers, _ = post_login(srv.port, "pat", TEST_PASSWORD, "/slide_viewer")
    assert status == 303 and headers["location"] == "/slide_viewer"
    cookie = headers["set-cookie"]
    assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    auth = cookie_of(headers)
    assert get(srv.port, f"/tiles/slide/{sid}.dzi", headers=auth)[0] == 200
    assert get(srv.port, "/tiles/slide/no-such-slide.dzi", headers=auth)[2].count(b"slide-") == 0  # names nothing
    assert websocket_status(srv.port, auth) == 101
    # an oncologist is logged in but may not read slides
    _, headers, _ = post_login(srv.port, "onc", TEST_PASSWORD)
    assert get(srv.port, f"/tiles/slide/{sid}.dzi", headers=cookie_of(headers))[:3:2] == (403, b"Not allowed.")
    # logout ends the session on the server: the old cookie no longer opens anything
    status, headers, _ = get(srv.port, "/session/logout", headers=auth)
    assert status == 303 and f'{COOKIE}=""' in headers["set-cookie"]
    ws.accounts._forget_sessions()
    shared.tile_service().workspace.accounts._forget_sessions()
    assert get(srv.port, f"/tiles/slide/{sid}.dzi", headers=auth)[0] == 401


def test_cross_site_posts_and_open_redirects_are_refused(app_server):
    srv, _ = app_server
    status, _, body = post_login(srv.port, "pat", TEST_PASSWORD, origin="https://evil.example")
    assert status == 403 and b"Cross-site" in body
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "/session/logout"):
        status, headers, _ = post_login(srv.port, "pat", TEST_PASSWORD, target)
        assert status == 303 and headers["location"] == "/", target
    status, _, body = get(srv.port, "/session/login?next=%22%3E%3Cscript%3Ealert(1)%3C/script%3E")
    assert status == 200 and b"<script>alert(1)" not in body


def test_head_is_no_attempt_oversized_forms_are_not_read_and_one_time_passwords_open_no_tiles(app_server):
    srv, ws = app_server
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    c.request("HEAD", "/session/login?username=pat&password=x")
    assert c.getresponse().status == 200
    assert not ws.audit.search(make_admin(ws), action="login.failed")  # HEAD made no login attempt
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    c.putrequest("POST", "/session/login")
    c.putheader("Content-Type", "application/x-www-form-urlencoded")
    c.putheader("Content-Length", str(200 * 2**20))  # announces 200 MB, sends none of it
    c.endheaders()
    r = c.getresponse()
    assert r.status == 413
    from pathviz.auth.policy import operator

    ws.accounts.reset_password(operator(), "pat", "a one time passphrase")
    status, headers, _ = post_login(srv.port, "pat", "a one time passphrase")
    sid = ws.slides()[0].slide_id
    assert status == 303 and get(srv.port, f"/tiles/slide/{sid}.dzi", headers=cookie_of(headers))[0] == 403


def make_admin(ws):
    from pathviz.auth.policy import operator

    return operator()
