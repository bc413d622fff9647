"""Export flagged patches with their reviews: QuPath GeoJSON and CSV.

GeoJSON follows what QuPath (0.3+) imports (File > Import objects): a ``FeatureCollection`` of
``Polygon`` rectangles in level-0 pixel coordinates, each with ``properties.objectType``
(``"annotation"``), ``properties.classification`` (``name`` and RGB ``color``) and
``properties.measurements`` (name -> number).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pathviz.errors import PathVizError
from pathviz.store.db import as_utc_string
from pathviz.store.workspace import Workspace

#: QuPath classification per verdict, with its colour (RGB).
CLASSES = {"agree": ("Flagged: agree", [220, 40, 40]), "disagree": ("Flagged: disagree", [40, 90, 220]),
           None: ("Flagged: unreviewed", [240, 170, 0])}


def flagged_table(workspace: Workspace, slide_id: str, layer_name: str, top_k: int = 20) -> pd.DataFrame:
    """The top-``k`` flagged patches of a layer with their latest reviews.

    Columns: ``rank`` (1 = most flagged), ``patch_index``, ``x, y, width, height`` (level-0 px),
    ``score``, ``tissue_fraction``, ``verdict`` (latest by any reviewer, or empty), ``reviewer``,
    ``comment``, ``reviewed_at`` (UTC ISO-8601), ``n_agree``, ``n_disagree``.
    """
    grid = workspace.grid(slide_id)
    layer = workspace.layer(slide_id, layer_name)
    layer.check_grid(grid)
    reviews = workspace.db.latest_reviews(slide_id, layer_name)
    scores = layer.patch_scores
    rows = []
    for rank, idx in enumerate(layer.top_patches(top_k), start=1):
        rect = grid.rect(int(idx))
        revs = sorted(reviews.get(rect, []), key=lambda r: (r.created_at, r.id))
        last = revs[-1] if revs else None
        rows.append(
            {
                "rank": rank,
                "patch_index": int(idx),
                "x": rect[0],
                "y": rect[1],
                "width": rect[2],
                "height": rect[3],
                "score": float(scores[idx]),
                "tissue_fraction": float(grid.tissue_fraction[idx]),
                "verdict": last.verdict if last else "",
                "reviewer": last.reviewer if last else "",
                "comment": last.comment if last else "",
                "reviewed_at": as_utc_string(last.created_at) if last else "",
                "n_agree": sum(r.verdict == "agree" for r in revs),
                "n_disagree": sum(r.verdict == "disagree" for r in revs),
            }
        )
    return pd.DataFrame(rows)


def review_progress(table: pd.DataFrame) -> tuple[int, int]:
    """``(reviewed, total)``: how many rows of :func:`flagged_table` have a verdict, out of all rows.

    Raises:
        PathVizError: ``table`` has no ``verdict`` column (not a flagged table).
    """
    if "verdict" not in table.columns:
        raise PathVizError("The table has no verdict column.", "pass the table flagged_table() returns.")
    return int((table["verdict"].fillna("") != "").sum()), int(len(table))


def to_geojson(table: pd.DataFrame, layer_name: str, slide_name: str = "") -> dict:
    """QuPath-compatible FeatureCollection from :func:`flagged_table`'s rows."""
    features = []
    for r in table.itertuples(index=False):
        x0, y0, x1, y1 = int(r.x), int(r.y), int(r.x + r.width), int(r.y + r.height)
        cls_name, colour = CLASSES.get(r.verdict or None, CLASSES[None])
        features.append(
            {
                "type": "Feature",
                "id": f"{layer_name}-{int(r.patch_index)}",
                "geometry": {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]},
                "properties": {
                    "objectType": "annotation",
                    "name": f"{layer_name} #{int(r.rank)}" + (f": {r.comment}" if r.comment else ""),
                    "classification": {"name": cls_name, "color": colour},
                    "isLocked": False,
                    "measurements": {
                        "rank": int(r.rank),
                        "score": float(r.score),
                        "tissue_fraction": float(r.tissue_fraction),
                        "n_agree": int(r.n_agree),
                        "n_disagree": int(r.n_disagree),
                    },
                    "layer": layer_name,
                    "slide": slide_name,
                    "verdict": r.verdict or "unreviewed",
                    "reviewer": r.reviewer,
                    "comment": r.comment,
                    "reviewed_at": r.reviewed_at,
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def export_geojson(workspace: Workspace, slide_id: str, layer_name: str, out: str | Path, top_k: int = 20) -> int:
    """Write flagged patches of a layer as QuPath GeoJSON; returns the number of features."""
    rec = workspace.db.get_slide(slide_id)
    gj = to_geojson(flagged_table(workspace, slide_id, layer_name, top_k), layer_name, rec.name)
    _write_atomic(Path(out), json.dumps(gj, indent=1))
    return len(gj["features"])


def export_csv(workspace: Workspace, slide_id: str, layer_name: str, out: str | Path, top_k: int = 20) -> int:
    """Write flagged patches of a layer with reviews as CSV; returns the number of rows."""
    table = flagged_table(workspace, slide_id, layer_name, top_k)
    _write_atomic(Path(out), table.to_csv(index=False))
    return len(table)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text)
    tmp.replace(path)
