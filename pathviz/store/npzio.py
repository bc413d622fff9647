"""Atomic ``.npz`` files of named arrays plus a JSON header: how grids, masks and layers are stored."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pathviz.errors import PathVizError


def save_npz(path: str | Path, header: dict, **arrays: np.ndarray) -> Path:
    """Write ``arrays`` and ``header`` (JSON-serialisable) to ``path``.

    Written to a temporary name and renamed, so a crash never leaves a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, header=json.dumps(header), **arrays)
    tmp.replace(path)
    return path


def load_npz(path: str | Path, what: str, fix: str) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a file written by :func:`save_npz`; returns ``(header, arrays)``.

    Raises:
        PathVizError: missing or unreadable file, naming ``what`` it should be and the ``fix``.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            arrays = {k: z[k] for k in z.files if k != "header"}
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise PathVizError(f"{path} is not a readable PathViz {what} ({exc}).", fix, path) from exc
    return header, arrays
