"""The process-wide :class:`~pathviz.viewer.tiles.TileService`, shared by the tile routes and the pages.

The dashboard's pages and the tile routes (:mod:`pathviz.viewer.routes`) run in the same process
(the app's own server), so they must read the same workspace through the same tile service: a page
that re-analyses a slide calls ``tile_service(ws).invalidate(slide_id)`` and the next tile request
sees the new layers.

One service is kept per workspace home (``PATHVIZ_HOME``; the :data:`MAX_HOMES` most recently
created ones). The pages hand in their workspace object (``tile_service(ws)``); the routes ask for
the current home's (``tile_service()``), which creates the workspace lazily when no page has run
yet (e.g. a tile request right after the server started).
"""

from __future__ import annotations

import threading
from pathlib import Path

from pathviz.settings import Settings
from pathviz.store.workspace import Workspace
from pathviz.viewer.tiles import TileService

_lock = threading.Lock()
_services: dict[Path, TileService] = {}  # newest last
#: Homes kept: a dashboard serves one; tests go through many (each service holds a database engine).
MAX_HOMES = 8


def _keep(home: Path, svc: TileService) -> TileService:
    _services.pop(home, None)
    _services[home] = svc
    while len(_services) > MAX_HOMES:
        del _services[next(iter(_services))]
    return svc


def tile_service(workspace: Workspace | None = None) -> TileService:
    """The process-wide tile service of a workspace.

    Args:
        workspace: the workspace to serve. None: the workspace of ``PATHVIZ_HOME`` as it is now,
            created on first use. A workspace object other than the one served for its home so far
            replaces it, with a fresh tile cache (e.g. after the dashboard's resource cache was
            cleared), so the routes always read the pages' workspace.

    Returns:
        The :class:`TileService` (thread-safe; its tile cache is shared by all requests).

    Raises:
        WorkspaceError: ``PATHVIZ_HOME`` cannot be created (only when ``workspace`` is None).
    """
    if workspace is None:
        home = Settings.from_env().home
        with _lock:
            svc = _services.get(home)
        if svc is not None:
            return svc
        ws = Workspace(Settings.from_env(home))  # outside the lock: may create folders and the database
        with _lock:
            svc = _services.get(home)
            return svc if svc is not None else _keep(home, TileService(ws))
    with _lock:
        svc = _services.get(workspace.home)
        if svc is None or svc.workspace is not workspace:
            svc = _keep(workspace.home, TileService(workspace))
        return svc


def reset() -> None:
    """Forget every shared service (tests; the next call creates fresh ones)."""
    with _lock:
        _services.clear()
