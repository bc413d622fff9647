"""Tile routes of the slide viewer, served by the dashboard's own server (same origin, same port).

``app.py`` passes :func:`tile_routes` to ``st.App(..., routes=...)``, so ``streamlit run app.py``
serves these next to Streamlit's own routes; there is no second server or port, and no CORS header
(the viewer's component iframe is served by the same server, so its requests are same-origin).

Routes (GET and HEAD; ``PREFIX`` is ``/tiles``, or ``/<server.baseUrlPath>/tiles``):
    PREFIX/health                                           -> ``ok``
    PREFIX/stats                                            -> JSON: tiles served, cache hits/misses
    PREFIX/slide/<slide_id>.dzi                             -> DZI XML
    PREFIX/slide/<slide_id>_files/<level>/<col>_<row>.jpeg  -> slide tile (JPEG; ``.jpg`` too)
    PREFIX/overlay/<slide_id>/<layer>/<cmap>/<scale>-<floor>/<vmin>/<vmax>_files/<level>/<col>_<row>.png
                                                            -> overlay tile (RGBA PNG)
    PREFIX/overlay/<slide_id>/<layer>/<cmap>/<vmin>/<vmax>_files/<level>/<col>_<row>.png
                                                            -> the same with scale ``value``, floor 0

``scale`` is ``value`` (``vmin``/``vmax`` in the layer's units) or ``percentile`` (each patch
coloured by its percentile rank within the slide; ``vmin``/``vmax`` are percentiles 0-100);
``floor`` (integer 0-99, 0 = off) draws the patches ranked below that percentile transparent; e.g.
``.../haematoxylin/viridis/percentile-50/0/100_files/12/3_4.png``. (Scale and floor share one path
segment so that no decoded ``..%2f`` path of the shorter form reaches this one.)

Only registered slide ids and well-formed names reach the tile service: each path parameter must
match a strict pattern (slide ids and layer names: lowercase letters, digits, ``_``, ``-``; value
bounds: decimal numbers; colour maps: a name or ``solid:#RRGGBB``; scales: ``value`` or
``percentile``; floors: an integer 0-99), and no request ever names a file (a slide id is looked
up in the workspace's database). Refusals:
404 for an unknown slide, layer or tile address (the body never lists other slide ids), 400 for a
malformed layer, colour map, value range (a percentile range outside 0-100), scale or floor; 401
without a logged-in session and 403 for a user whose roles do not include viewing slides (:func:`authorize`, called first by every tile route,
before any slide id is looked up); 503 with ``Retry-After`` when every rendering slot stayed busy for
:data:`RENDER_QUEUE_TIMEOUT_S` (at most :data:`MAX_RENDERS` tiles render at once). Rendering a tile (OpenSlide read, JPEG/PNG encoding) runs in Starlette's worker threads, never
on the event loop; a tile found in the tile cache is answered directly.

:class:`TcpNoDelayMiddleware` (also in ``app.py``'s App) turns Nagle's algorithm off on the app's
connections; without it every keep-alive tile response waits ~40 ms (see its docstring).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import math
import re
import socket
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from pathviz.errors import PathVizError, SlideError, WorkspaceError
from pathviz.layers.overlay import MAX_FLOOR, SCALES
from pathviz.viewer.tiles import TileService

if TYPE_CHECKING:
    from pathviz.auth.accounts import Accounts

_LOG = logging.getLogger(__name__)

#: Path segment, under the app's base URL, of the tile routes.
TILES_PATH = "tiles"
#: Tiles may be cached by the browser for an hour; ``private``: only by the browser, never by a
#: shared proxy, since tiles are per-user data once :func:`authorize` checks sessions.
TILE_CACHE_CONTROL = "private, max-age=3600"

#: Tiles rendered at once per app (threads reading OpenSlide and encoding), and how long an
#: uncached request may wait for a slot before a 503 (bounded request handling).
MAX_RENDERS = max(4, 2 * len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 8)
RENDER_QUEUE_TIMEOUT_S = 15.0

_SLIDE_ID = re.compile(r"[a-z0-9\-]{1,64}")
_LAYER = re.compile(r"[a-z0-9_\-]{1,64}")
_CMAP = re.compile(r"[A-Za-z0-9_:#]{1,32}")
_SOLID = re.compile(r"solid:#?[0-9A-Fa-f]{6}")
_NUMBER = re.compile(r"-?[0-9.eE+\-]{1,32}")
_FLOOR = re.compile(r"[0-9]{1,2}")
_DISPLAY = re.compile(r"([a-z]{1,16})-([^/]{0,16})")


class TcpNoDelayMiddleware:
    """ASGI middleware: sets ``TCP_NODELAY`` (Nagle's algorithm off) on each request's connection.

    Why: ``streamlit run`` serves an ``st.App`` with uvicorn on a listening socket that Streamlit
    binds itself, with ``proto`` 0; asyncio only sets ``TCP_NODELAY`` on accepted sockets whose
    ``proto`` is ``IPPROTO_TCP`` (uvicorn issue #3149), so Nagle's algorithm stays on. uvicorn
    writes a response's headers and body separately, so on a keep-alive connection every response
    after the first waits for the client's delayed ACK: ~40 ms per tile on Linux, for any route of
    the app (bench/viewer_tiles.py; the former tile server set ``disable_nagle_algorithm`` for the
    same reason).

    How: the connection's socket is reached through uvicorn's request cycle (the ``transport`` of
    the object ``receive`` is bound to). Under a server that does not expose it, this does nothing.

    Args:
        app: the ASGI app to wrap (Starlette passes it when given ``Middleware(TcpNoDelayMiddleware)``).
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] in ("http", "websocket"):
            transport = getattr(getattr(receive, "__self__", None), "transport", None)
            sock = transport.get_extra_info("socket") if transport is not None else None
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:  # closed meanwhile, or not TCP after all
                    pass
        await self.app(scope, receive, send)


async def authorize(request: Request, slide_id: str | None, accounts: Callable[[], "Accounts"]) -> None:
    """Let ``request`` read the tiles of ``slide_id`` only for a logged-in user allowed to view slides.

    The user is the one :class:`~pathviz.auth.web.LoginGateMiddleware` put in the request's scope,
    or, where the routes run without the gate, the one of the request's session cookie
    (:data:`~pathviz.auth.web.COOKIE`) checked against ``accounts``. Every tile route calls this
    first, before the slide id is looked up, so a refused request learns nothing about which
    slides exist.

    Args:
        request: the tile request.
        slide_id: the (well-formed) slide id asked for; None for service-wide data (``/stats``).
        accounts: returns the workspace's :class:`~pathviz.auth.accounts.Accounts`.

    Raises:
        HTTPException: 401 ``Log in first.`` without a live session; 403 ``Not allowed.`` when the
            user's roles do not include viewing slides (``slides.view``: pathologist, admin) or the
            user still has to replace a one-time password.
    """
    from pathviz.auth.web import COOKIE, SCOPE_ACTOR

    actor = request.scope.get(SCOPE_ACTOR)
    if actor is None:
        token = request.cookies.get(COOKIE)
        if token:
            acc = accounts()
            actor = acc.cached_actor(token) or await run_in_threadpool(acc.session_actor, token)
    if actor is None:
        raise HTTPException(401, "Log in first.")
    if actor.must_change_password or not actor.can("slides.view"):  # a one-time password opens nothing but its change
        raise HTTPException(403, "Not allowed.")


def _refuse(status: int, what: str, fix: str) -> PlainTextResponse:
    return PlainTextResponse(f"{what} Fix: {fix}", status_code=status, headers={"Cache-Control": "no-store"})


class _Refused(Exception):
    def __init__(self, status: int, what: str, fix: str):
        super().__init__(what)
        self.status, self.what, self.fix = status, what, fix


def _endpoint(fn):
    """Turn refusals (``_Refused``, ``HTTPException`` from :func:`authorize`) into plain-text answers."""

    @wraps(fn)
    async def wrapper(request: Request) -> Response:
        try:
            return await fn(request)
        except _Refused as exc:
            resp = _refuse(exc.status, exc.what, exc.fix)
            if exc.status == 503:
                resp.headers["Retry-After"] = "1"
            return resp
        except HTTPException as exc:
            return PlainTextResponse(str(exc.detail), status_code=exc.status_code,
                                     headers={"Cache-Control": "no-store", **(exc.headers or {})})

    return wrapper


def _slide_id(value: str) -> str:
    if not _SLIDE_ID.fullmatch(value):
        raise _Refused(404, "No such slide.", "use the id of a slide registered in the workspace (the dashboard's slide list).")
    return value


def _name(value: str, what: str) -> str:
    if not _LAYER.fullmatch(value):
        raise _Refused(400, f"Malformed {what} name.", f"a {what} name is 1-64 lowercase letters, digits, '_' or '-'.")
    return value


def _cmap(value: str) -> str:
    if not _CMAP.fullmatch(value) or (value.startswith("solid:") and not _SOLID.fullmatch(value)):
        raise _Refused(400, "Malformed colour map.", "use a colour map name (e.g. viridis) or solid:#RRGGBB.")
    return value


def _value(value: str, what: str) -> float:
    try:
        x = float(value) if _NUMBER.fullmatch(value) else math.nan
    except ValueError:
        x = math.nan
    if not math.isfinite(x):
        raise _Refused(400, f"Malformed {what} of the value range.", f"give {what} as a finite decimal number, e.g. 0.25.")
    return x


def _display(value: str, vmin: float, vmax: float) -> tuple[str, int]:
    """The checked ``(scale, floor)`` of an overlay request's ``<scale>-<floor>`` segment (with
    scale ``percentile`` the range must lie in 0-100)."""
    m = _DISPLAY.fullmatch(value)
    if m is None:
        raise _Refused(400, "Malformed display setting.", "give <scale>-<floor>, e.g. percentile-50 or value-0.")
    scale, floor = m.groups()
    if scale not in SCALES:
        raise _Refused(400, "Unknown display scale.", f"use one of {', '.join(SCALES)}.")
    if not _FLOOR.fullmatch(floor) or int(floor) > MAX_FLOOR:
        raise _Refused(400, "Malformed transparency floor.", f"give the floor as a whole percentile 0-{MAX_FLOOR} (0 = off).")
    if scale == "percentile" and not (0 <= vmin <= 100 and 0 <= vmax <= 100):
        raise _Refused(400, "Percentile range outside 0-100.", "give the minimum and maximum as percentiles 0-100.")
    return scale, int(floor)


def _render(fn: Callable[..., bytes | str], slide_id: str, *args) -> bytes | str:
    """Call the tile service (in a worker thread); its errors become refusals that name no other slide."""
    try:
        return fn(slide_id, *args)
    except SlideError as exc:  # the message names the file (maybe a patient identifier): the log gets the type only
        _LOG.error("slide %s could not be read (%s)", slide_id, type(exc).__name__)
        raise _Refused(500, f"Slide {slide_id!r} could not be read.", "check the slide file on the Workspace page.") from None
    except WorkspaceError as exc:  # unknown slide or layer; .message never lists other ids, .fix might
        raise _Refused(404, exc.message, "use a slide and layer the dashboard lists for this workspace.") from None
    except ValueError:  # level or tile address outside the pyramid
        raise _Refused(404, "No such tile.", "ask for a level and tile address inside the slide's DZI pyramid.") from None
    except PathVizError as exc:  # unknown colour map, bad value range, or an unreadable stored layer
        _LOG.warning("tile request for %s refused (%s)", slide_id, type(exc).__name__)  # no file paths in the log
        raise _Refused(400, "The tile cannot be drawn with these parameters.", "check the colour map, value range and "
                       "layer, or re-analyse the slide on the Workspace page.") from None


def tile_routes(base_url_path: str = "", service: Callable[[], TileService] | None = None,
                accounts: Callable[[], "Accounts"] | None = None, max_renders: int = MAX_RENDERS,
                queue_timeout_s: float = RENDER_QUEUE_TIMEOUT_S) -> list[BaseRoute]:
    """The viewer's tile routes, for ``st.App(..., routes=tile_routes(...))`` or any Starlette app.

    Args:
        base_url_path: Streamlit's ``server.baseUrlPath`` (e.g. ``"pathviz"``, slashes optional):
            the routes live under ``/<base_url_path>/tiles``, next to Streamlit's own routes.
            Streamlit does not prefix routes given to ``st.App``, hence this argument.
        service: returns the tile service to read (called per request). Default: the process-wide
            service of ``PATHVIZ_HOME`` that the pages share (:func:`pathviz.viewer.shared.tile_service`),
            created on first use.
        accounts: returns the accounts that session cookies are checked against (default: the
            served workspace's, ``service().workspace.accounts``).
        max_renders: tiles rendered at once (OpenSlide reads and encoding in worker threads);
            further uncached requests wait for a slot.
        queue_timeout_s: a request that waited this long for a slot is answered 503 with
            ``Retry-After: 1`` instead of queueing without bound (cached tiles never wait).

    Returns:
        Starlette routes (GET and HEAD) of the URL scheme in this module's docstring.
    """
    if service is None:
        from pathviz.viewer.shared import tile_service as service
    get_accounts = accounts or (lambda: service().workspace.accounts)
    base = base_url_path.strip("/")
    prefix = (f"/{base}" if base else "") + f"/{TILES_PATH}"
    slots = asyncio.Semaphore(max_renders)

    async def render(fn: Callable[..., bytes | str], sid: str, *args) -> bytes | str:
        try:
            await asyncio.wait_for(slots.acquire(), queue_timeout_s)
        except asyncio.TimeoutError:
            raise _Refused(503, "The tile server is busy.", "retry in a moment (the viewer does so by itself).") from None
        try:
            return await run_in_threadpool(_render, fn, sid, *args)
        finally:
            slots.release()

    tile_headers = {"Cache-Control": TILE_CACHE_CONTROL}

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok", headers={"Cache-Control": "no-store"})

    @_endpoint
    async def stats(request: Request) -> Response:
        await authorize(request, None, get_accounts)
        svc = service()
        body = {"tiles_served": svc.tiles_served, "cache_hits": svc.cache.hits, "cache_misses": svc.cache.misses}
        return Response(json.dumps(body), media_type="application/json", headers={"Cache-Control": "no-store"})

    @_endpoint
    async def slide_dzi(request: Request) -> Response:
        await authorize(request, None, get_accounts)
        sid = _slide_id(request.path_params["slide_id"])
        svc = service()
        xml = await render(svc.slide_dzi, sid)
        return Response(xml, media_type="application/xml", headers={"Cache-Control": "no-store"})

    @_endpoint
    async def slide_tile(request: Request) -> Response:
        p = request.path_params
        await authorize(request, None, get_accounts)
        sid = _slide_id(p["slide_id"])
        svc = service()
        addr = (p["level"], p["col"], p["row"])
        data = svc.cached_slide_tile(sid, *addr)
        if data is None:
            data = await render(svc.slide_tile, sid, *addr)
        return Response(data, media_type="image/jpeg", headers=tile_headers)

    @_endpoint
    async def overlay_tile(request: Request) -> Response:
        p = request.path_params
        await authorize(request, None, get_accounts)
        sid = _slide_id(p["slide_id"])
        layer, cmap = _name(p["layer"], "layer"), _cmap(p["cmap"])
        vmin, vmax = _value(p["vmin"], "the minimum"), _value(p["vmax"], "the maximum")
        scale, floor = _display(p.get("display", "value-0"), vmin, vmax)
        svc = service()
        args = (layer, p["level"], p["col"], p["row"], cmap, vmin, vmax, scale, floor)
        data = svc.cached_overlay_tile(sid, *args)
        if data is None:
            data = await render(svc.overlay_tile, sid, *args)
        return Response(data, media_type="image/png", headers=tile_headers)

    tile = "{level:int}/{col:int}_{row:int}"
    return [
        Route(f"{prefix}/health", health, methods=["GET"]),
        Route(f"{prefix}/stats", stats, methods=["GET"]),
        Route(f"{prefix}/slide/{{slide_id}}.dzi", slide_dzi, methods=["GET"]),
        Route(f"{prefix}/slide/{{slide_id}}_files/{tile}.jpeg", slide_tile, methods=["GET"]),
        Route(f"{prefix}/slide/{{slide_id}}_files/{tile}.jpg", slide_tile, methods=["GET"]),
        Route(f"{prefix}/overlay/{{slide_id}}/{{layer}}/{{cmap}}/{{vmin}}/{{vmax}}_files/{tile}.png",
              overlay_tile, methods=["GET"]),
        Route(f"{prefix}/overlay/{{slide_id}}/{{layer}}/{{cmap}}/{{display}}/{{vmin}}/{{vmax}}_files/{tile}.png",
              overlay_tile, methods=["GET"]),
    ]
