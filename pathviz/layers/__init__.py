"""Score layers on tile grids, their slide-aligned rasters, colour maps and DeepZoom overlays."""

from pathviz.layers.colormap import COLORMAPS, colorize, colormap_lut, legend_colors
from pathviz.layers.overlay import OverlayDeepZoom, deepzoom_level_dimensions
from pathviz.layers.score import Raster, ScoreLayer, layer_raster, mask_raster
from pathviz.layers.stain import stain_density_layers, tissue_fraction_layer

__all__ = [
    "COLORMAPS",
    "OverlayDeepZoom",
    "Raster",
    "ScoreLayer",
    "colorize",
    "colormap_lut",
    "deepzoom_level_dimensions",
    "layer_raster",
    "legend_colors",
    "mask_raster",
    "stain_density_layers",
    "tissue_fraction_layer",
]
