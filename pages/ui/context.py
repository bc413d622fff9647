"""Process-wide resources for the dashboard: the workspace, its tile service, the viewer's tile URL."""

from __future__ import annotations

import streamlit as st

from pathviz.settings import Settings
from pathviz.store.workspace import Workspace
from pathviz.viewer import shared
from pathviz.viewer.routes import TILES_PATH
from pathviz.viewer.tiles import TileService

#: Base URL of the tile routes (:mod:`pathviz.viewer.routes`) as the viewer component uses it.
#: Relative on purpose: Streamlit serves the component's page from the app's own server, at
#: ``<app base URL>/component/<component name>/index.html`` (an iframe with a ``src``, not a
#: ``srcdoc``, so its document URL is same-origin with the app). The browser resolves this
#: against that URL into ``<app base URL>/tiles``: the host, port and path prefix the browser
#: used to reach the app, whatever a reverse proxy in between calls them.
VIEWER_TILE_URL = f"../../{TILES_PATH}"


@st.cache_resource(show_spinner=False)
def _workspace(home: str) -> Workspace:
    return Workspace(Settings.from_env(home))


def workspace() -> Workspace:
    """The workspace of ``PATHVIZ_HOME`` (one per process and home); the tile routes read it too."""
    ws = _workspace(str(Settings.from_env().home))
    shared.tile_service(ws)  # the routes serve this very workspace object (cheap after the first call)
    return ws


def tile_service() -> TileService:
    """The tile service the app's tile routes use for this workspace (e.g. to ``invalidate`` a
    slide's cached tiles after re-analysing it)."""
    return shared.tile_service(workspace())
