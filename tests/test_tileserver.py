"""The HTTP tile server the viewer reads: DZI, slide tiles, overlay tiles, refusals, caching."""

from __future__ import annotations

import io
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from pathviz.tiles import TileService
from pathviz.tileserver import TileServer


@pytest.fixture
def server(demo_ws):
    with TileServer(TileService(demo_ws)) as srv:
        yield srv, demo_ws


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.headers, r.read()


def test_slide_dzi_and_tiles(server):
    srv, ws = server
    sid = ws.slides()[0].slide_id
    status, _, body = get(f"{srv.url}/slide/{sid}.dzi")
    assert status == 200 and b'Width="2220"' in body and b'TileSize="256"' in body
    geo = srv.service.slide_geometry(sid)
    top = geo["levels"] - 1
    status, headers, body = get(f"{srv.url}/slide/{sid}_files/{top}/4_5.jpeg")
    img = Image.open(io.BytesIO(body))
    assert img.format == "JPEG" and img.size == (256, 256)
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert np.asarray(img).std() > 5  # real tissue, not blank


def test_overlay_tiles_and_cache(server):
    srv, ws = server
    sid = ws.slides()[0].slide_id
    top = srv.service.slide_geometry(sid)["levels"] - 1
    url = f"{srv.url}/overlay/{sid}/haematoxylin/viridis/0.01/0.08_files/{top - 3}/0_0.png"
    _, _, body = get(url)
    img = Image.open(io.BytesIO(body))
    assert img.mode == "RGBA" and img.size[0] <= 256
    alpha = np.asarray(img)[..., 3]
    assert (alpha == 255).any() and (alpha == 0).any()  # tissue patches drawn, glass transparent
    hits = srv.service.cache.hits
    get(url)
    assert srv.service.cache.hits == hits + 1
    _, _, mask = get(f"{srv.url}/overlay/{sid}/tissue_mask/solid:%2300b050/0/1_files/{top - 2}/0_0.png")
    assert Image.open(io.BytesIO(mask)).mode == "RGBA"


@pytest.mark.parametrize(
    "path",
    [
        "/slide/../../etc/passwd",
        "/slide/unknown-slide_files/0/0_0.jpeg",
        "/slide/%2e%2e%2fetc_files/0/0_0.jpeg",
        "/overlay/{sid}/no_such_layer/viridis/0/1_files/0/0_0.png",
        "/overlay/{sid}/haematoxylin/notacmap/0/1_files/0/0_0.png",
        "/slide/{sid}_files/99/0_0.jpeg",
        "/slide/{sid}_files/0/5_5.jpeg",
    ],
)
def test_bad_requests_get_404_not_files(server, path):
    srv, ws = server
    sid = ws.slides()[0].slide_id
    with pytest.raises(urllib.error.HTTPError) as err:
        get(srv.url + path.format(sid=sid))
    assert err.value.code == 404
