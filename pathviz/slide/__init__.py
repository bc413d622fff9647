"""Slides: reading (OpenSlide / Pillow), tissue masks, tile grids and patch reads."""

from pathviz.slide.grid import TileGrid, grid_key, tile_grid
from pathviz.slide.reader import OPENSLIDE_SUFFIXES, PLAIN_SUFFIXES, Slide, SlideInfo, open_slide
from pathviz.slide.tissue import TissueMask, tissue_mask
from pathviz.slide.writer import write_pyramidal_tiff

__all__ = [
    "OPENSLIDE_SUFFIXES",
    "PLAIN_SUFFIXES",
    "Slide",
    "SlideInfo",
    "TileGrid",
    "TissueMask",
    "grid_key",
    "open_slide",
    "tile_grid",
    "tissue_mask",
    "write_pyramidal_tiff",
]
