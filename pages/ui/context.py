"""Process-wide resources for the dashboard: the workspace and the tile server."""

from __future__ import annotations

import streamlit as st

from pathviz.settings import Settings
from pathviz.tiles import TileService
from pathviz.tileserver import TileServer
from pathviz.workspace import Workspace


@st.cache_resource(show_spinner=False)
def _workspace(home: str) -> Workspace:
    return Workspace(Settings.from_env(home))


def workspace() -> Workspace:
    """The workspace of ``PATHVIZ_HOME`` (one per process and home)."""
    return _workspace(str(Settings.from_env().home))


@st.cache_resource(show_spinner=False)
def _tile_server(home: str) -> TileServer:
    ws = _workspace(home)
    s = ws.settings
    return TileServer(TileService(ws), host=s.tile_host, port=s.tile_port, public_url=s.tile_public_url).start()


def tile_server() -> TileServer:
    """The running tile server of this workspace (started on first use)."""
    return _tile_server(str(Settings.from_env().home))
