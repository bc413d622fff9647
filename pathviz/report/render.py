"""Static renderings of slides with a score layer (for reports and the ``pathviz heatmap`` command)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from pathviz.layers.colormap import colorize
from pathviz.layers.score import layer_raster
from pathviz.store.workspace import Workspace


def render_layer_png(workspace: Workspace, slide_id: str, layer_name: str, out: str | Path, cmap: str = "inferno",
                     max_size: int = 1024, opacity: float = 0.55) -> Path:
    """Thumbnail of the slide with the layer blended on top (aligned in level-0 coordinates).

    Returns the written PNG path.
    """
    layer = workspace.layer(slide_id, layer_name)
    raster = layer_raster(layer, workspace.grid(slide_id))
    with workspace.open(slide_id) as slide:
        thumb = slide.get_thumbnail(max_size)
        w0, h0 = slide.dimensions
    tw, th = thumb.size
    # raster cell of each thumbnail pixel centre
    xs = ((np.arange(tw) + 0.5) * w0 / tw / raster.cell_w).astype(int)
    ys = ((np.arange(th) + 0.5) * h0 / th / raster.cell_h).astype(int)
    vals = np.full((th, tw), np.nan, np.float32)
    ok_x, ok_y = xs < raster.values.shape[1], ys < raster.values.shape[0]
    vals[np.ix_(ok_y, ok_x)] = raster.values[np.ix_(ys[ok_y], xs[ok_x])]
    lo, hi = layer.value_range()
    rgba = colorize(vals, cmap, lo, hi, alpha=int(255 * opacity))
    base = thumb.convert("RGBA")
    base.alpha_composite(Image.fromarray(rgba, "RGBA"))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    base.convert("RGB").save(out)
    return out
