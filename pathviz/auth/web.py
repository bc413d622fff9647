"""The app's login wall: login/logout routes and the middleware that guards every other route.

``app.py`` adds :func:`login_routes` to ``st.App(routes=...)`` and :class:`LoginGateMiddleware`
to its middleware, so one server serves:

* ``PREFIX/session/login`` (GET: the form; POST: check the password, set the session cookie,
  redirect to the page asked for) and ``PREFIX/session/logout`` (end the session, clear the cookie);
  ``PREFIX`` is ``/<server.baseUrlPath>`` or empty. (Streamlit's own ``/auth/login`` is left to
  ``st.login``.)
* everything else (Streamlit's pages and websocket, uploads, media, components, the tile routes)
  only to requests carrying a live session cookie (:data:`COOKIE`): a page request without one is
  redirected to the login form, a websocket is closed with code 1008 (policy violation), any other
  request gets ``401`` with a body that names nothing. Only Streamlit's static files (JavaScript,
  CSS, fonts), its health checks and the login routes are public.

The cookie holds a random token (:meth:`pathviz.auth.accounts.Accounts.login`); it is
``HttpOnly`` (no script can read it), ``SameSite=Strict`` (no other site's page can make the
browser send it, so no cross-site request forgery of tiles or actions), ``Secure`` when the app is
reached over HTTPS, and scoped to the app's path. The login form refuses POSTs whose ``Origin``
is another site.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Callable
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, quote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pathviz.auth.accounts import INITIAL_PASSWORD_FILE, SESSION_HOURS, Accounts
from pathviz.auth.policy import Actor, AuthError

_LOG = logging.getLogger(__name__)

COOKIE = "pathviz_session"
SESSION_PATH = "session"
#: Public paths under the prefix (Streamlit's static assets and health checks, the login routes).
PUBLIC_PREFIXES = ("static/", f"{SESSION_PATH}/", "_stcore/health", "_stcore/host-config", "_stcore/script-health-check",
                   "favicon.png", "manifest.json", "robots.txt", "tiles/health")
#: Largest login form body accepted (bytes).
MAX_FORM_BYTES = 4096
#: Key of the actor in the ASGI scope once the gate let a request through.
SCOPE_ACTOR = "pathviz.actor"
#: ``PATHVIZ_COOKIE_SECURE=1``: always mark the session cookie ``Secure`` (behind an HTTPS reverse
#: proxy the app itself sees plain HTTP, so it cannot tell on its own).
COOKIE_SECURE = os.environ.get("PATHVIZ_COOKIE_SECURE", "") in ("1", "true", "yes")


def default_accounts() -> Accounts:
    """The process-wide accounts of ``PATHVIZ_HOME`` (the same workspace object the pages use)."""
    from pathviz.viewer.shared import tile_service

    return tile_service().workspace.accounts


def _prefix(base_url_path: str) -> str:
    base = (base_url_path or "").strip("/")
    return f"/{base}" if base else ""


def cookie_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The session token from raw ASGI headers' ``Cookie`` (None when absent)."""
    for k, v in headers:
        if k == b"cookie":
            jar = SimpleCookie()
            try:
                jar.load(v.decode("latin-1"))
            except Exception:  # noqa: BLE001 - a malformed cookie header is no session
                continue
            if COOKIE in jar:
                return jar[COOKIE].value
    return None


def _safe_next(value: str, prefix: str) -> str:
    """A same-site path to go to after login (anything else: the app's root; no open redirect)."""
    root = prefix + "/"
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return root
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith(prefix or "/"):
        return root
    if parts.path.startswith(f"{prefix}/{SESSION_PATH}/"):
        return root
    return value


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>PathViz: log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;background:#f6f7f9;margin:0}}main{{max-width:380px;margin:12vh auto;
background:#fff;padding:2rem 2.2rem;border-radius:10px;box-shadow:0 1px 6px #0002}}h1{{font-size:1.5rem;margin:0 0 .2rem}}
label{{display:block;margin:.9rem 0 .3rem;font-size:.9rem}}input{{width:100%;box-sizing:border-box;padding:.55rem;font-size:1rem;
border:1px solid #bbb;border-radius:6px}}button{{margin-top:1.2rem;width:100%;padding:.6rem;font-size:1rem;border:0;
border-radius:6px;background:#ff4b4b;color:#fff;cursor:pointer}}.err{{background:#fde8e8;color:#8a1c1c;padding:.6rem;
border-radius:6px;font-size:.9rem}}.note{{color:#666;font-size:.8rem;margin-top:1.2rem}}</style></head>
<body><main><h1>🔬 PathViz</h1><p style="color:#555;margin-top:0">Log in to continue.</p>{error}
<form method="post" action="{action}"><input type="hidden" name="next" value="{next}">
<label for="username">Username</label><input id="username" name="username" autocomplete="username" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Log in</button></form>
<p class="note">First start: the admin's password is the one set in PATHVIZ_ADMIN_PASSWORD; without it, a one-time
password was printed in the console that started PathViz and written to {pwfile} in the workspace folder. Accounts are created by an admin (Admin &gt; Users and audit, or <code>pathviz users add</code>).</p>
</main></body></html>"""


def login_page(action: str, next_url: str, error: str = "", status: int = 200) -> HTMLResponse:
    err = f'<p class="err" role="alert">{html.escape(error)}</p>' if error else ""
    body = _PAGE.format(error=err, action=html.escape(action), next=html.escape(next_url), pwfile=INITIAL_PASSWORD_FILE)
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"})


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it (or its declared Content-Length) exceeds ``limit``
    bytes: an oversized login form is never held in memory."""
    try:
        if int(request.headers.get("content-length", "0")) > limit:
            return None
    except ValueError:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None  # a missing Origin (old browsers, curl) passes; the literal "null" does not
    return urlsplit(origin).netloc == request.headers.get("host", "")


def login_routes(base_url_path: str = "", accounts: Callable[[], Accounts] | None = None) -> list[BaseRoute]:
    """The login and logout routes (see the module docstring).

    Args:
        base_url_path: Streamlit's ``server.baseUrlPath``.
        accounts: returns the :class:`Accounts` to check (default: :func:`default_accounts`).
    """
    get_accounts = accounts or default_accounts
    prefix = _prefix(base_url_path)
    action = f"{prefix}/{SESSION_PATH}/login"

    async def login(request: Request) -> Response:
        if request.method != "POST":  # GET, and the HEAD Starlette adds to it: the form, never an attempt
            return login_page(action, _safe_next(request.query_params.get("next", ""), prefix))
        if not _same_origin(request):
            return PlainTextResponse("Cross-site login refused.", status_code=403)
        body = await _read_capped(request, MAX_FORM_BYTES)
        if body is None:
            return PlainTextResponse("Form too large.", status_code=413)
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        next_url = _safe_next(form.get("next", ""), prefix)
        try:
            token, _actor = await run_in_threadpool(get_accounts().login, form.get("username", ""),
                                                    form.get("password", ""), _client(request))
        except AuthError as exc:
            return login_page(action, next_url, exc.message, status=401)
        resp = RedirectResponse(next_url, status_code=303)
        resp.set_cookie(COOKIE, token, max_age=int(SESSION_HOURS * 3600), path=prefix or "/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https" or COOKIE_SECURE)
        return resp

    async def logout(request: Request) -> Response:
        token = request.cookies.get(COOKIE)
        if token:
            await run_in_threadpool(get_accounts().logout, token)
        resp = RedirectResponse(f"{action}", status_code=303)
        resp.delete_cookie(COOKIE, path=prefix or "/", httponly=True, samesite="strict")
        return resp

    return [Route(action, login, methods=["GET", "POST"]),
            Route(f"{prefix}/{SESSION_PATH}/logout", logout, methods=["GET", "POST"])]


class LoginGateMiddleware:
    """ASGI middleware: only requests with a live session reach the app (see the module docstring).

    Args:
        app: the wrapped ASGI app.
        base_url_path: Streamlit's ``server.baseUrlPath``.
        accounts: returns the :class:`Accounts` to check sessions against (default:
            :func:`default_accounts`).

    The actor of a let-through request is put in ``scope["pathviz.actor"]`` (:data:`SCOPE_ACTOR`)
    for the routes behind (the tile routes' :func:`pathviz.viewer.routes.authorize`).
    """

    def __init__(self, app, base_url_path: str = "", accounts: Callable[[], Accounts] | None = None):
        self.app = app
        self.prefix = _prefix(base_url_path)
        self.accounts = accounts or default_accounts

    def _public(self, path: str) -> bool:
        if self.prefix:
            if not path.startswith(self.prefix + "/"):
                return False
            path = path[len(self.prefix):]
        rel = path.lstrip("/")
        return any(rel == p.rstrip("/") or rel.startswith(p) for p in PUBLIC_PREFIXES)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket") or self._public(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        token = cookie_token(scope.get("headers") or [])
        actor: Actor | None = None
        if token:
            try:
                accounts = self.accounts()
                actor = accounts.cached_actor(token) or await run_in_threadpool(accounts.session_actor, token)
            except Exception:  # noqa: BLE001 - a broken database refuses, it does not open the door
                _LOG.exception("session check failed")
                actor = None
        if actor is not None:
            scope[SCOPE_ACTOR] = actor
            await self.app(scope, receive, send)
            return
        await self._refuse(scope, receive, send)

    async def _refuse(self, scope, receive, send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "log in first"})
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        if scope.get("method") in ("GET", "HEAD") and "text/html" in headers.get("accept", ""):
            path = scope.get("path", "/")
            qs = scope.get("query_string", b"").decode("latin-1")
            target = path + (f"?{qs}" if qs else "")
            resp: Response = RedirectResponse(f"{self.prefix}/{SESSION_PATH}/login?next={quote(target, safe='')}",
                                              status_code=303, headers={"Cache-Control": "no-store"})
        else:
            resp = PlainTextResponse("Log in first.", status_code=401, headers={"Cache-Control": "no-store"})
        await resp(scope, receive, send)
