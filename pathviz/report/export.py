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


#: Longest comment / reviewer name the review form accepts (characters).
MAX_COMMENT_CHARS, MAX_REVIEWER_CHARS = 2000, 128

#: Characters that make a spreadsheet treat a cell as a formula (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(table: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells cannot run as spreadsheet formulas: a cell starting with
    ``= + - @``, tab or carriage return gets a leading apostrophe (OWASP CSV injection advice);
    numbers are left as they are."""
    out = table.copy()
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = out[col].map(lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v)
    return out


def flagged_csv(table: pd.DataFrame) -> str:
    """The flagged-patch table as CSV text, formula-safe (:func:`csv_safe`)."""
    return csv_safe(table).to_csv(index=False)


def review_line(review) -> str:
    """One saved review as plain text (never Markdown or HTML: a comment such as
    ``![x](http://host/img.png)`` is shown, not fetched): ``agree by ana (2026-11-22 10:01 UTC): text``."""
    when = f"{review.created_at:%Y-%m-%d %H:%M} UTC"
    return f"{review.verdict} by {review.reviewer} ({when})" + (f": {review.comment}" if review.comment else "")


def export_geojson(workspace: Workspace, slide_id: str, layer_name: str, out: str | Path, top_k: int = 20) -> int:
    """Write flagged patches of a layer as QuPath GeoJSON; returns the number of features. The
    slide is named by its id, never by its original file name (often a patient identifier)."""
    workspace.db.get_slide(slide_id)
    gj = to_geojson(flagged_table(workspace, slide_id, layer_name, top_k), layer_name, slide_id)
    _write_atomic(Path(out), json.dumps(gj, indent=1))
    return len(gj["features"])


def export_csv(workspace: Workspace, slide_id: str, layer_name: str, out: str | Path, top_k: int = 20) -> int:
    """Write flagged patches of a layer with reviews as CSV (formula-safe, :func:`csv_safe`);
    returns the number of rows."""
    table = flagged_table(workspace, slide_id, layer_name, top_k)
    _write_atomic(Path(out), flagged_csv(table))
    return len(table)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text)
    tmp.replace(path)
