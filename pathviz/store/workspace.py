"""The workspace (``PATHVIZ_HOME``): slide files, derived data, the database, the model registry.

Layout::

    $PATHVIZ_HOME/
        pathviz.db                  SQLite database (slides, reviews)
        slides/                     slides copied into the workspace (demo slides, uploads)
        derived/<slide_id>/         tissue mask, tile grids, score layers of each slide
            tissue_mask.npz
            grid_<key>.npz
            layers/<grid_key>/<layer>.npz
            analysis.json           default grid key of the slide
        models/                     model registry (one folder per model version)

Every write goes to a temporary name first and is renamed into place, and a failed
registration removes only what it created, so bad input never loses what is already stored.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Callable

from pathviz.errors import PathVizError, WorkspaceError
from pathviz.layers.score import ScoreLayer
from pathviz.layers.stain import stain_density_layers, tissue_fraction_layer
from pathviz.store.npzio import load_npz, save_npz
from pathviz.settings import Settings
from pathviz.slide.grid import TileGrid, grid_key, tile_grid
from pathviz.slide.reader import OPENSLIDE_SUFFIXES, PLAIN_SUFFIXES, Slide, open_slide
from pathviz.slide.tissue import TissueMask, tissue_mask
from pathviz.store.db import Database
from pathviz.store.models import SlideRecord

Progress = Callable[[float, str], None]

#: Default analysis grid: 256-px patches at 0.5 mpp (20x), kept at >= 50% tissue.
DEFAULT_MPP = 0.5
DEFAULT_PATCH_SIZE = 256
DEFAULT_MIN_TISSUE = 0.5


class Workspace:
    """A PathViz workspace.

    Args:
        settings: resolved settings (default: from the environment).
    """

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings.from_env()
        self.home = self.settings.home
        try:
            for sub in ("slides", "derived", "models"):
                (self.home / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkspaceError(
                f"Cannot create the workspace at {self.home} ({exc}).",
                "set PATHVIZ_HOME to a writable folder.",
                self.home,
            ) from exc
        self.db = Database(self.settings.database_url)

    # -- paths ----------------------------------------------------------------------------
    @property
    def slides_dir(self) -> Path:
        return self.home / "slides"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    def derived_dir(self, slide_id: str) -> Path:
        return self.home / "derived" / slide_id

    def allowed_roots(self) -> tuple[Path, ...]:
        """Folders from which slides may be registered in place."""
        return (self.home,) + tuple(self.settings.slide_roots)

    def check_allowed(self, path: str | Path) -> Path:
        """Resolve ``path`` (symlinks and ``..`` included) and require it inside an allowed root.

        Raises:
            WorkspaceError: the path is outside the workspace and ``PATHVIZ_SLIDE_ROOTS``.
        """
        resolved = Path(path).expanduser().resolve()
        if not any(resolved.is_relative_to(root) for root in self.allowed_roots()):
            roots = ", ".join(str(r) for r in self.allowed_roots())
            raise WorkspaceError(
                f"{resolved} is outside the workspace and the allowed slide folders ({roots}).",
                "copy it into the workspace (CLI: pathviz slide add PATH --copy) or add its folder "
                "to PATHVIZ_SLIDE_ROOTS.",
                resolved,
            )
        return resolved

    # -- slides ---------------------------------------------------------------------------
    def add_slide_from_ui(self, path: str | Path, mpp: float | None = None) -> SlideRecord:
        """Register, in place, a slide a web user names by path: only files inside the workspace or
        ``PATHVIZ_SLIDE_ROOTS`` (:meth:`allowed_roots`) are accepted, and every path that is not
        allowed or does not exist gets the same error, so the page tells nothing about the rest of
        the server's files. (The CLI, run by someone with shell access, may still ``--copy``.)

        Raises:
            WorkspaceError: not allowed or not found (one message for both), already registered.
            SlideError / MissingMppError / SlideTooLargeError: an allowed file that is not a usable slide.
        """
        refused = WorkspaceError(f"{str(path).strip() or '(empty path)'} is not allowed or not found.",
                                 "choose a file inside the workspace or a folder of PATHVIZ_SLIDE_ROOTS (listed on "
                                 "this page), or upload the file.")
        try:
            src = Path(str(path).strip()).expanduser().resolve()
            allowed = any(src.is_relative_to(root) for root in self.allowed_roots())
            if not allowed or not src.is_file():
                raise refused
        except (OSError, RuntimeError, ValueError):
            raise refused from None
        return self.add_slide(src, mpp=mpp)

    def add_uploaded_slide(self, filename: str, data: bytes, mpp: float | None = None,
                           max_bytes: int = 2 * 1024**3) -> SlideRecord:
        """Register a slide uploaded through the browser: written straight into ``slides/`` (under a
        safe, unique name, through a temporary file), then validated and registered in place; a
        file that is not a usable slide is removed again.

        Args:
            filename: the uploaded file's name (only its suffix and a sanitised stem are used).
            data: the file's bytes; max_bytes: size limit (default 2 GiB).

        Raises:
            WorkspaceError: too large, or not a slide format by its suffix.
            SlideError / MissingMppError / SlideTooLargeError: not a usable slide (nothing is kept).
        """
        if len(data) > max_bytes:
            raise WorkspaceError(f"{filename} is {len(data) / 1e6:.0f} MB; uploads are limited to {max_bytes / 1e6:.0f} MB.",
                                 "put large slides under PATHVIZ_SLIDE_ROOTS and add them by path.")
        suffix = Path(filename).suffix.lower()
        if suffix not in OPENSLIDE_SUFFIXES + PLAIN_SUFFIXES or suffix == ".mrxs":
            raise WorkspaceError(f"{filename}: {suffix or 'no suffix'} is not a slide format that can be uploaded as one file.",
                                 f"upload one of {', '.join(s for s in OPENSLIDE_SUFFIXES + PLAIN_SUFFIXES if s != '.mrxs')}.")
        target = _unique_path(self.slides_dir / _safe_filename(Path(filename).name))
        tmp = target.with_name(target.name + ".partial")
        try:
            tmp.write_bytes(data)
            tmp.replace(target)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise WorkspaceError(f"Saving the upload {filename} failed ({exc.strerror or exc}).", "check free disk space.") from exc
        try:
            return self.add_slide(target, mpp=mpp, name=Path(filename).name)
        except Exception:
            target.unlink(missing_ok=True)
            raise

    def add_slide(
        self,
        path: str | Path,
        mpp: float | None = None,
        name: str | None = None,
        copy: bool = False,
        source: str = "user",
    ) -> SlideRecord:
        """Register a slide: validate it, optionally copy it into ``slides/``, record it.

        Args:
            path: slide file (svs, tif/tiff, ndpi, mrxs, scn, ..., or png/jpg with ``mpp``).
            mpp: declared microns per pixel (required for png/jpg; overrides the file's).
            name: display name (default: the file name).
            copy: copy the file into the workspace instead of registering it in place
                (required for files outside the allowed roots).
            source: ``"user"`` or ``"demo"``.

        Returns:
            The stored :class:`SlideRecord`.

        Raises:
            SlideError / MissingMppError / SlideTooLargeError: the file is not a usable slide.
            WorkspaceError: outside the allowed roots, already registered, or copy failed.
        """
        src = Path(path).expanduser().resolve()
        suffix = src.suffix.lower()
        if suffix and suffix not in OPENSLIDE_SUFFIXES + PLAIN_SUFFIXES:
            raise WorkspaceError(
                f"{src} has suffix {suffix!r}, which is not a slide format PathViz reads.",
                f"use one of {', '.join(OPENSLIDE_SUFFIXES + PLAIN_SUFFIXES)}.",
                src,
            )
        if not copy:
            src = self.check_allowed(src)
        with open_slide(src, mpp=mpp) as slide:  # validates before anything is written
            info = slide.info()
        existing = self.db.find_slide_by_path(str(src))
        if existing is not None:
            raise WorkspaceError(
                f"{src} is already registered as slide {existing.slide_id!r}.",
                "open that slide instead.",
                src,
            )
        target = src
        created: Path | None = None
        if copy:
            if suffix == ".mrxs":
                raise WorkspaceError(
                    f"{src} is a MIRAX slide whose pixels live in a sibling folder; it cannot be copied as one file.",
                    "put the .mrxs and its folder under PATHVIZ_SLIDE_ROOTS and add it without --copy.",
                    src,
                )
            target = _unique_path(self.slides_dir / _safe_filename(src.name))
            tmp = target.with_name(target.name + ".partial")
            try:
                shutil.copyfile(src, tmp)
                tmp.replace(target)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise WorkspaceError(f"Copying {src} into the workspace failed ({exc}).", "check free disk space.", src) from exc
            created = target
        record = SlideRecord(
            slide_id=_slide_id(target, self.home),
            name=name or src.name,
            path=str(target),
            declared_mpp=mpp,
            mpp=(info.mpp_x + info.mpp_y) / 2,
            width=info.width,
            height=info.height,
            vendor=info.vendor,
            source=source,
        )
        try:
            return self.db.add_slide(record)
        except PathVizError:
            if created is not None:
                created.unlink(missing_ok=True)
            raise

    def slides(self) -> list[SlideRecord]:
        """Registered slides, oldest first."""
        return self.db.slides()

    def open(self, slide_id: str) -> Slide:
        """Open a registered slide (with its declared mpp, if any)."""
        rec = self.db.get_slide(slide_id)
        return open_slide(rec.path, mpp=rec.declared_mpp)

    # -- analysis: mask, grid, layers ---------------------------------------------------------
    def analyse(
        self,
        slide_id: str,
        mpp: float = DEFAULT_MPP,
        patch_size: int = DEFAULT_PATCH_SIZE,
        min_tissue: float = DEFAULT_MIN_TISSUE,
        progress: Progress | None = None,
        force: bool = False,
    ) -> TileGrid:
        """Compute (or reuse) the tissue mask, the tile grid and the first score layers
        (tissue fraction, haematoxylin and eosin density) of a slide; make this grid the
        slide's default. Returns the grid.
        """
        report = progress or (lambda f, m: None)
        key = grid_key(mpp, patch_size)
        ddir = self.derived_dir(slide_id)
        layer_dir = ddir / "layers" / key
        names = ("tissue_fraction", "haematoxylin", "eosin")
        if not force and (ddir / f"grid_{key}.npz").exists() and all((layer_dir / f"{n}.npz").exists() for n in names):
            self._set_default_grid(slide_id, key)
            report(1.0, "analysis already stored")
            return self.grid(slide_id, key)
        with self.open(slide_id) as slide:
            report(0.0, "tissue mask")
            mask = tissue_mask(slide)
            save_mask(mask, ddir / "tissue_mask.npz")
            report(0.2, "tile grid")
            grid = tile_grid(slide, mask, mpp=mpp, patch_size=patch_size, min_tissue=min_tissue)
            grid.save(ddir / f"grid_{key}.npz")
            self.save_layer(slide_id, tissue_fraction_layer(grid))
            h, e = stain_density_layers(slide, grid, progress=lambda f: report(0.25 + 0.75 * f, "stain densities"))
            self.save_layer(slide_id, h)
            self.save_layer(slide_id, e)
        self._set_default_grid(slide_id, key)
        report(1.0, "done")
        return grid

    def default_grid_key(self, slide_id: str) -> str | None:
        meta = self.derived_dir(slide_id) / "analysis.json"
        if not meta.exists():
            return None
        return json.loads(meta.read_text()).get("default_grid")

    def _set_default_grid(self, slide_id: str, key: str) -> None:
        _atomic_write_text(self.derived_dir(slide_id) / "analysis.json", json.dumps({"default_grid": key}))

    def grid(self, slide_id: str, key: str | None = None) -> TileGrid:
        """The slide's tile grid (default grid when ``key`` is None).

        Raises:
            WorkspaceError: the slide has not been analysed yet.
        """
        key = key or self.default_grid_key(slide_id)
        path = self.derived_dir(slide_id) / f"grid_{key}.npz"
        if key is None or not path.exists():
            raise WorkspaceError(
                f"Slide {slide_id!r} has no tile grid yet.",
                "analyse it first (dashboard: Workspace page; CLI: pathviz slide analyse SLIDE_ID).",
            )
        return TileGrid.load(path)

    def tissue_mask(self, slide_id: str) -> TissueMask:
        """The stored tissue mask (raises WorkspaceError if not analysed)."""
        path = self.derived_dir(slide_id) / "tissue_mask.npz"
        if not path.exists():
            raise WorkspaceError(f"Slide {slide_id!r} has no tissue mask yet.", "analyse it first.")
        return load_mask(path)

    def save_layer(self, slide_id: str, layer: ScoreLayer) -> Path:
        """Store a score layer next to its grid (later issues add Grad-CAM, survival maps and
        attention layers through this call)."""
        grid = TileGrid.load(self.derived_dir(slide_id) / f"grid_{layer.grid_key}.npz")
        layer.check_grid(grid)
        return layer.save(self.derived_dir(slide_id) / "layers" / layer.grid_key / f"{layer.name}.npz")

    def layer_names(self, slide_id: str, key: str | None = None, model_tags: set[str] | None = None) -> list[str]:
        """Names of the layers stored on a grid (default grid when ``key`` is None).

        Args:
            model_tags: when given, layers written by a model version
                (:func:`model_layer_name`) are listed only if their tag is in the set, i.e. the
                versions the product has chosen (:func:`pathviz.store.registry.chosen_layer_tags`).
        """
        key = key or self.default_grid_key(slide_id)
        if key is None:
            return []
        d = self.derived_dir(slide_id) / "layers" / key
        order = {"tissue_fraction": 0, "haematoxylin": 1, "eosin": 2}
        names = [p.stem for p in d.glob("*.npz") if not p.name.endswith(".tmp.npz")]
        if model_tags is not None:
            names = [n for n in names if split_model_layer_name(n)[1] in (None, *model_tags)]
        return sorted(names, key=lambda n: (order.get(n, 99), n))

    def model_layer(self, slide_id: str, base: str, model_tags: set[str]) -> ScoreLayer:
        """The layer ``base`` (e.g. ``survival_score``) written by one of the chosen model versions.

        Raises:
            WorkspaceError: no chosen version wrote such a layer for this slide.
        """
        for name in self.layer_names(slide_id, model_tags=model_tags):
            layer_base, tag = split_model_layer_name(name)
            if layer_base == base and tag in model_tags:
                return self.layer(slide_id, name)
        raise WorkspaceError(f"Slide {slide_id!r} has no {base!r} layer of the chosen model version.",
                             "train the model (admin page or `pathviz train pagenet`) or promote a version that wrote it.")

    def layer(self, slide_id: str, name: str, key: str | None = None) -> ScoreLayer:
        """Load one stored layer. Raises WorkspaceError naming the available layers."""
        key = key or self.default_grid_key(slide_id)
        path = self.derived_dir(slide_id) / "layers" / str(key) / f"{name}.npz"
        if key is None or not path.exists():
            raise WorkspaceError(
                f"Slide {slide_id!r} has no layer {name!r}.",
                f"available: {', '.join(self.layer_names(slide_id)) or 'none (analyse the slide)'}.",
            )
        return ScoreLayer.load(path)


_MODEL_LAYER = re.compile(r"^(?P<base>[a-z0-9_]+)-m(?P<tag>[0-9a-f]{6,32})$")


def model_layer_name(base: str, tag: str) -> str:
    """Name of a layer written by one trained model version: ``<base>-m<tag>`` (``tag`` is the
    version's ``layer_tag``, lower-case hex), e.g. ``survival_score-m3f2a9c01de``."""
    name = f"{base}-m{tag}"
    if not _MODEL_LAYER.match(name):
        raise ValueError(f"invalid model layer name {name!r}")
    return name


def split_model_layer_name(name: str) -> tuple[str, str | None]:
    """``(base, tag)`` of a model layer name; ``(name, None)`` for any other layer."""
    m = _MODEL_LAYER.match(name)
    return (m["base"], m["tag"]) if m else (name, None)


def layer_label(name: str, refs: dict[str, str]) -> str:
    """How the viewer names a layer: ``survival_score · pagenet/demo@v0002`` for a model layer
    whose tag is in ``refs`` (``{tag: version reference}``), the name itself otherwise."""
    base, tag = split_model_layer_name(name)
    return f"{base} · {refs[tag]}" if tag in refs else name


def save_mask(mask: TissueMask, path: Path) -> None:
    """Store a tissue mask as ``.npz`` (atomically)."""
    header = {"downsample_x": mask.downsample_x, "downsample_y": mask.downsample_y, "threshold": mask.threshold}
    save_npz(path, header, mask=mask.mask)


def load_mask(path: Path) -> TissueMask:
    """Read a mask written by :func:`save_mask`. Raises PathVizError if unreadable."""
    header, arrays = load_npz(path, "tissue mask", "re-analyse the slide.")
    return TissueMask(mask=arrays["mask"], **header)


def _slide_id(path: Path, home: Path) -> str:
    stem = re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-")[:40] or "slide"
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:6]
    return f"{stem}-{digest}"


def _safe_filename(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "slide"


def _unique_path(path: Path) -> Path:
    if not path.exists():
        return path
    for i in range(1, 10_000):
        cand = path.with_name(f"{path.stem}_{i}{path.suffix}")
        if not cand.exists():
            return cand
    raise WorkspaceError(f"Too many files named like {path.name} in the workspace.", "rename the slide.")


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def read_patch_image(workspace: Workspace, slide_id: str, rect: tuple[int, int, int, int], out_size: int):
    """Full-resolution crop of a level-0 rectangle, resampled to ``out_size`` pixels square (RGB)."""
    x, y, w, h = rect
    with workspace.open(slide_id) as slide:
        return slide.read_patch(x, y, float(max(w, h)), out_size)
