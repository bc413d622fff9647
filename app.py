"""PathViz dashboard entry point: ``streamlit run app.py`` (what ``bash scripts/app.sh`` runs).

``streamlit run`` finds the ``st.App`` below (Streamlit 1.67 looks for an ``app = st.App(...)``
assignment in the script, imports this module and serves the App with uvicorn). The App runs
``dashboard.py`` for every browser session (first-start demo build, pages by role) and adds:

* the login and logout routes (:mod:`pathviz.auth.web`, under ``/session/``) and
  :class:`~pathviz.auth.web.LoginGateMiddleware`, which lets only requests with a live session
  reach the pages, the websocket and the tiles;
* the slide viewer's tile routes (:mod:`pathviz.viewer.routes`), so tiles come from the same host
  and port as the pages, under ``/tiles/`` (``/<server.baseUrlPath>/tiles/`` when a base path is set).

At import (server start) a workspace without any account gets its first admin; the one-time
password is printed to this console and written to ``$PATHVIZ_HOME/admin-initial-password.txt``
(owner-only), unless ``PATHVIZ_ADMIN_PASSWORD`` gives it.

This module is imported, not run as a page: put page code in ``dashboard.py``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware

from pathviz.auth.web import LoginGateMiddleware, login_routes
from pathviz.viewer.routes import TcpNoDelayMiddleware, tile_routes
from pathviz.viewer.shared import tile_service

BASE = st.get_option("server.baseUrlPath") or ""
_ws = tile_service().workspace
_ws.accounts.ensure_first_admin(_ws.home)

# Streamlit does not prefix the routes given to st.App with server.baseUrlPath, so ours do.
# TcpNoDelayMiddleware: without it every keep-alive response waits ~40 ms (see its docstring).
app = st.App(
    Path(__file__).resolve().with_name("dashboard.py"),
    routes=login_routes(BASE) + tile_routes(BASE),
    middleware=[Middleware(TcpNoDelayMiddleware), Middleware(LoginGateMiddleware, base_url_path=BASE)],
)
