"""One settings object, read from environment variables.

Variables:
    PATHVIZ_HOME: workspace folder (default ``./workspace``): slides, derived data, the
        database and the model registry live under it.
    PATHVIZ_DATABASE_URL: SQLAlchemy URL (default ``sqlite:///$PATHVIZ_HOME/pathviz.db``).
    PATHVIZ_SLIDE_ROOTS: extra folders (``os.pathsep``-separated) from which slides may be
        registered in place, besides the workspace itself.
    PATHVIZ_DEVICE: ``cuda``, ``cpu`` or ``auto`` (default: CUDA when present).
    PATHVIZ_CACHE: download cache for demo data (default ``~/.cache/pathviz``).
    PATHVIZ_DEMO_PATIENTS: patients of the demo cohort a first start builds (default 200,
        :data:`pathviz.cohort.demo.DEMO_PATIENTS`; at least 20).

The viewer's tiles are served by the dashboard's own server (:mod:`pathviz.viewer.routes`), on its
host and port, so there is nothing to configure for them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Build with :meth:`from_env`; paths are absolute."""

    home: Path
    database_url: str
    slide_roots: tuple[Path, ...] = field(default_factory=tuple)
    device: str = "auto"
    cache_dir: Path = Path.home() / ".cache" / "pathviz"
    demo_patients: int | None = None

    @classmethod
    def from_env(cls, home: str | Path | None = None) -> "Settings":
        """Read the environment; ``home`` overrides ``PATHVIZ_HOME`` when given."""
        home_path = Path(home or os.environ.get("PATHVIZ_HOME", "workspace")).expanduser().resolve()
        db = os.environ.get("PATHVIZ_DATABASE_URL") or f"sqlite:///{home_path / 'pathviz.db'}"
        roots = tuple(
            Path(p).expanduser().resolve()
            for p in os.environ.get("PATHVIZ_SLIDE_ROOTS", "").split(os.pathsep)
            if p.strip()
        )
        cache = Path(os.environ.get("PATHVIZ_CACHE", Path.home() / ".cache" / "pathviz")).expanduser()
        demo_patients = os.environ.get("PATHVIZ_DEMO_PATIENTS", "").strip()
        if demo_patients and (not demo_patients.isdigit() or int(demo_patients) < 20):
            raise ValueError(f"PATHVIZ_DEMO_PATIENTS={demo_patients!r} is not a whole number of at least 20; "
                             "unset it (200 patients) or set e.g. PATHVIZ_DEMO_PATIENTS=100.")
        return cls(
            home=home_path,
            database_url=db,
            slide_roots=roots,
            device=os.environ.get("PATHVIZ_DEVICE", "auto"),
            cache_dir=cache,
            demo_patients=int(demo_patients) if demo_patients else None,
        )


def safe_database_url(url: str) -> str:
    """The database URL with any password replaced by ``***`` (for display and logs)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 (an unparsable URL: show nothing of it)
        return "(unparsable URL)"


def torch_device(preference: str = "auto") -> str:
    """Return ``"cuda"`` when a GPU is present (or requested), else ``"cpu"``.

    Raises:
        ValueError: ``preference`` is ``"cuda"`` but no CUDA device is available.
    """
    import torch

    if preference == "cpu":
        return "cpu"
    available = torch.cuda.is_available()
    if preference == "cuda" and not available:
        raise ValueError("PATHVIZ_DEVICE=cuda but no CUDA device is visible; unset it or use 'auto'.")
    return "cuda" if available else "cpu"


def torch_threads() -> int:
    """CPU threads for torch/BLAS in training code: ``PATHVIZ_THREADS`` when set (an integer >= 1),
    else the cores this process may run on (``len(os.sched_getaffinity(0))``, falling back to
    ``os.cpu_count()``; at least 1). More threads than cores oversubscribes a busy machine (one
    Cox-PASNet fit took 138.8 s with 2 threads on a busy 2-core machine vs 11.7 s with 1).

    Raises:
        ValueError: ``PATHVIZ_THREADS`` is set but not an integer >= 1.
    """
    raw = os.environ.get("PATHVIZ_THREADS", "").strip()
    if raw:
        try:
            n = int(raw)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"PATHVIZ_THREADS={raw!r} is not a number of threads; give an integer >= 1 or unset it.")
        return n
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no sched_getaffinity (macOS, Windows)
        return max(1, os.cpu_count() or 1)
