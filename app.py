"""PathViz dashboard entry point: ``streamlit run app.py`` (what ``bash scripts/app.sh`` runs).

``streamlit run`` finds the ``st.App`` below (Streamlit 1.67 looks for an ``app = st.App(...)``
assignment in the script, imports this module and serves the App with uvicorn). The App runs
``dashboard.py`` for every browser session (first-start demo build, pages by role) and adds the
slide viewer's tile routes (:mod:`pathviz.viewer.routes`), so tiles come from the same host and
port as the pages, under ``/tiles/`` (``/<server.baseUrlPath>/tiles/`` when a base path is set).

This module is imported, not run as a page: put page code in ``dashboard.py``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware

from pathviz.viewer.routes import TcpNoDelayMiddleware, tile_routes

# Streamlit does not prefix the routes given to st.App with server.baseUrlPath, so tile_routes does.
# TcpNoDelayMiddleware: without it every keep-alive response waits ~40 ms (see its docstring).
app = st.App(
    Path(__file__).resolve().with_name("dashboard.py"),
    routes=tile_routes(st.get_option("server.baseUrlPath") or ""),
    middleware=[Middleware(TcpNoDelayMiddleware)],
)
