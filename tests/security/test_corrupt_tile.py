"""One corrupt tile in an otherwise valid slide (trust issue, item 4): the viewer's tile service
answers that tile with a clear error, reopens the slide (OpenSlide's errors are sticky) and keeps
serving every other tile."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from pathviz.errors import SlideError
from pathviz.slide.writer import write_pyramidal_tiff
from pathviz.viewer.tiles import TileService


@pytest.fixture
def corrupt_slide(tmp_path, ws):
    rng = np.random.default_rng(0)
    rgb = (200 + rng.integers(0, 40, (2048, 2048, 3))).astype(np.uint8)
    (ws.home / "incoming").mkdir()
    path = write_pyramidal_tiff(ws.home / "incoming" / "corrupt.tif", rgb, 0.5, compression="jpeg")
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        tiles_across = -(-page.imagewidth // page.tilewidth)
        index = 2 * tiles_across + 3  # level-0 tile at column 3, row 2 (pixels x 768-1023, y 512-767)
        offset, size = page.dataoffsets[index], page.databytecounts[index]
    with open(path, "r+b") as fh:
        fh.seek(offset + 2)
        fh.write(b"\xff\xd9" + bytes(rng.integers(0, 256, size - 4, dtype=np.uint8)))  # garbage inside the JPEG stream
    rec = ws.add_slide(path)
    return rec.slide_id


def test_a_corrupt_tile_fails_alone_and_the_slide_stays_viewable(ws, corrupt_slide):
    service = TileService(ws)
    top = service.slide_geometry(corrupt_slide)["levels"] - 1  # DeepZoom level with one pixel per level-0 pixel
    assert service.slide_tile(corrupt_slide, top, 0, 0)  # a good tile
    with pytest.raises(SlideError, match="could not be decoded: the slide file has a corrupt region"):
        service.slide_tile(corrupt_slide, top, 3, 2)
    # before the fix every later uncached tile of this slide failed (sticky OpenSlide error)
    for col, row in ((1, 1), (7, 7), (0, 5), (5, 0)):
        assert service.slide_tile(corrupt_slide, top, col, row)[:2] == b"\xff\xd8"  # JPEG
    with pytest.raises(SlideError):
        service.slide_tile(corrupt_slide, top, 3, 2)  # still a clear error, not a crash
    assert service.slide_tile(corrupt_slide, top, 2, 2)
