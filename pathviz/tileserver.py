"""A small HTTP server in front of :class:`~pathviz.tiles.TileService` for the viewer.

Routes (GET):
    /health                                             -> ``ok``
    /stats                                              -> JSON: tiles served, cache hits/misses
    /slide/<slide_id>.dzi                               -> DZI XML
    /slide/<slide_id>_files/<level>/<col>_<row>.jpeg    -> slide tile
    /overlay/<slide_id>/<layer>/<cmap>/<vmin>/<vmax>_files/<level>/<col>_<row>.png -> overlay tile

Only registered slide ids and well-formed layer names are accepted (no request ever names a file).
Responses carry ``Access-Control-Allow-Origin: *`` because the viewer runs in Streamlit's
component iframe, on another origin. The server runs in a daemon thread of the dashboard process.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from pathviz.errors import PathVizError
from pathviz.tiles import TileService

_SLIDE_DZI = re.compile(r"^/slide/([a-z0-9\-]{1,64})\.dzi$")
_SLIDE_TILE = re.compile(r"^/slide/([a-z0-9\-]{1,64})_files/(\d+)/(\d+)_(\d+)\.jpe?g$")
_OVERLAY_TILE = re.compile(
    r"^/overlay/([a-z0-9\-]{1,64})/([a-z0-9_\-]{1,64})/([A-Za-z0-9_:#]{1,32})/"
    r"(-?[0-9.eE+\-]{1,32})/(-?[0-9.eE+\-]{1,32})_files/(\d+)/(\d+)_(\d+)\.png$"
)


def _handler_for(service: TileService):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as browsers use for tiles
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and
        # the client's delayed ACK add ~40 ms to every keep-alive response (bench/viewer_tiles.py).
        disable_nagle_algorithm = True

        def log_message(self, *args):  # quiet
            pass

        def _send(self, code: int, body: bytes, ctype: str, cache: bool = False) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Cache-Control", "public, max-age=3600" if cache else "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802 (http.server API)
            path = unquote(self.path.split("?", 1)[0])
            try:
                if path == "/health":
                    return self._send(200, b"ok", "text/plain")
                if path == "/stats":
                    stats = {"tiles_served": service.tiles_served, "cache_hits": service.cache.hits,
                             "cache_misses": service.cache.misses}
                    return self._send(200, json.dumps(stats).encode(), "application/json")
                m = _SLIDE_TILE.match(path)
                if m:
                    sid, lvl, col, row = m.group(1), *map(int, m.groups()[1:])
                    return self._send(200, service.slide_tile(sid, lvl, col, row), "image/jpeg", cache=True)
                m = _OVERLAY_TILE.match(path)
                if m:
                    sid, layer, cmap = m.group(1), m.group(2), m.group(3)
                    vmin, vmax = float(m.group(4)), float(m.group(5))
                    lvl, col, row = map(int, m.groups()[5:])
                    body = service.overlay_tile(sid, layer, lvl, col, row, cmap, vmin, vmax)
                    return self._send(200, body, "image/png", cache=True)
                m = _SLIDE_DZI.match(path)
                if m:
                    return self._send(200, service.slide_dzi(m.group(1)).encode(), "application/xml")
                return self._send(404, b"not found", "text/plain")
            except (ValueError, PathVizError) as exc:
                return self._send(404, str(exc).encode(), "text/plain")
            except BrokenPipeError:
                return None

    return Handler


class TileServer:
    """Runs the HTTP tile server in a daemon thread.

    Args:
        service: the tile service.
        host, port: where to listen (port 0 picks a free port).
        public_url: base URL the browser should use (default ``http://host:port``).
    """

    def __init__(self, service: TileService, host: str = "127.0.0.1", port: int = 0, public_url: str | None = None):
        self.service = service
        self.httpd = ThreadingHTTPServer((host, port), _handler_for(service))
        self.httpd.daemon_threads = True
        self.host, self.port = self.httpd.server_address[:2]
        self.url = (public_url or f"http://{self.host}:{self.port}").rstrip("/")
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="pathviz-tiles", daemon=True)

    def start(self) -> "TileServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "TileServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
