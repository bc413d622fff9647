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

from pathviz.auth.policy import require
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
        self._accounts = None

    # -- accounts, audit, registry ----------------------------------------------------------------
    @property
    def accounts(self):
        """The workspace's :class:`~pathviz.auth.accounts.Accounts` (one per workspace object: its
        session cache is shared by the pages and the app's routes)."""
        if self._accounts is None:
            from pathviz.auth.accounts import Accounts

            self._accounts = Accounts(self.db)
        return self._accounts

    @property
    def audit(self):
        """The workspace's :class:`~pathviz.auth.audit.AuditLog`."""
        return self.accounts.audit

    def registry(self):
        """The model registry of this workspace, recording alias moves in the audit log."""
        from pathviz.store.registry import ModelRegistry

        return ModelRegistry(self.models_dir, audit=self.audit)

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
    def add_slide_from_ui(self, actor, path: str | Path, mpp: float | None = None) -> SlideRecord:
        """Register, in place, a slide a web user names by path: only files inside the workspace or
        ``PATHVIZ_SLIDE_ROOTS`` (:meth:`allowed_roots`) are accepted, and every path that is not
        allowed or does not exist gets the same error, so the page tells nothing about the rest of
        the server's files. (The CLI, run by someone with shell access, may still ``--copy``.)

        Args:
            actor: who adds it (needs ``slides.manage``); audited as ``slide.added``.

        Raises:
            PermissionDeniedError: the actor may not manage slides.
            WorkspaceError: not allowed or not found (one message for both), already registered.
            SlideError / MissingMppError / SlideTooLargeError: an allowed file that is not a usable slide.
        """
        require(actor, "slides.manage", "add slides")
        refused = WorkspaceError(f"{str(path).strip() or '(empty path)'} is not allowed or not found.",
                                 "choose a file inside the workspace or a folder of PATHVIZ_SLIDE_ROOTS (listed on "
                                 "this page), or upload the file.")
        src = resolve_allowed(path, self.allowed_roots(), refused, Path.is_file)
        rec = self.add_slide(src, mpp=mpp, added_by=actor.username)
        self.audit.record(actor, "slide.added", "slide", rec.slide_id, {"how": "path", "mpp": rec.mpp})
        return rec

    def add_uploaded_slide(self, actor, filename: str, data: bytes, mpp: float | None = None,
                           max_bytes: int = 2 * 1024**3) -> SlideRecord:
        """Register a slide uploaded through the browser: written straight into ``slides/`` (under a
        safe, unique name, through a temporary file), then validated and registered in place; a
        file that is not a usable slide is removed again.

        Args:
            actor: who uploads (needs ``slides.manage``); audited as ``slide.added``.
            filename: the uploaded file's name (only its suffix and a sanitised stem are used).
            data: the file's bytes; max_bytes: size limit (default 2 GiB).

        Raises:
            PermissionDeniedError: the actor may not manage slides.
            WorkspaceError: too large, or not a slide format by its suffix.
            SlideError / MissingMppError / SlideTooLargeError: not a usable slide (nothing is kept).
        """
        require(actor, "slides.manage", "upload slides")
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
            rec = self.add_slide(target, mpp=mpp, name=Path(filename).name, added_by=actor.username)
        except Exception:
            target.unlink(missing_ok=True)
            raise
        self.audit.record(actor, "slide.added", "slide", rec.slide_id, {"how": "upload", "bytes": len(data), "mpp": rec.mpp})
        return rec

    def add_slide(
        self,
        path: str | Path,
        mpp: float | None = None,
        name: str | None = None,
        copy: bool = False,
        source: str = "user",
        added_by: str = "",
    ) -> SlideRecord:
        """Register a slide: validate it, optionally copy it into ``slides/``, record it.

        Args:
            path: slide file (svs, tif/tiff, ndpi, mrxs, scn, ..., or png/jpg with ``mpp``).
            mpp: declared microns per pixel (required for png/jpg; overrides the file's).
            name: display name (default: the file name).
            copy: copy the file into the workspace instead of registering it in place
                (required for files outside the allowed roots).
            source: ``"user"`` or ``"demo"``.
            added_by: the username recorded on the row (the page's and CLI's callers audit the addition).

        Validation decodes a sample of tiles at every pyramid level
        (:func:`~pathviz.slide.integrity.check_pyramid`): a level where every sampled tile fails is
        refused; isolated corrupt tiles are stored in ``derived/<slide_id>/integrity.json`` and
        returned by :meth:`integrity`. The file's content hash (:func:`content_sha256`, computed
        before any copy) is stored on the record and must not match an already registered slide.

        Returns:
            The stored :class:`SlideRecord` (``content_sha256`` set).

        Raises:
            SlideError / MissingMppError / SlideTooLargeError: the file is not a usable slide
                (including a pyramid level that cannot be decoded at all).
            WorkspaceError: outside the allowed roots, already registered (same path, or same
                content under another path), or copy failed.
        """
        from pathviz.slide.integrity import check_pyramid

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
            corrupt = check_pyramid(slide)  # raises SlideError on a level that cannot be decoded at all
        existing = self.db.find_slide_by_path(str(src))
        if existing is not None:
            raise WorkspaceError(
                f"{src} is already registered as slide {existing.slide_id!r}.",
                "open that slide instead.",
                src,
            )
        if copy and suffix == ".mrxs":
            raise WorkspaceError(
                f"{src} is a MIRAX slide whose pixels live in a sibling folder; it cannot be copied as one file.",
                "put the .mrxs and its folder under PATHVIZ_SLIDE_ROOTS and add it without --copy.",
                src,
            )
        try:
            digest = content_sha256(src)
        except OSError as exc:
            raise WorkspaceError(f"Reading {src} to compute its content hash failed ({exc.strerror or exc}).",
                                 "check that the file (and a MIRAX slide's folder) is readable.", src) from exc
        same = self.db.find_slide_by_hash(digest)
        if same is not None:
            raise WorkspaceError(
                f"{src.name} has the same content as slide {same.slide_id!r} (already registered).",
                f"open slide {same.slide_id!r} instead (pathviz slide list); the same bytes give the same analysis.",
                src,
            )
        target = src
        created: Path | None = None
        if copy:
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
            content_sha256=digest,
            added_by=added_by,
        )
        try:
            record = self.db.add_slide(record)
        except PathVizError:
            if created is not None:
                created.unlink(missing_ok=True)
            raise
        self._record_integrity(record.slide_id, corrupt, replace=lambda r: True)
        return record

    # -- reviews -------------------------------------------------------------------------------
    def save_review(self, actor, slide_id: str, layer: str, grid_key: str, rect: tuple[int, int, int, int],
                    verdict: str | None, comment: str = "", score: float | None = None):
        """Record the logged-in pathologist's verdict on a patch (the reviewer is the actor, never
        a typed name); audited as ``review.saved`` (the comment's length, not its text).

        Args: as :meth:`pathviz.store.db.Database.add_review`, with ``actor`` (needs ``reviews.write``).

        Raises:
            PermissionDeniedError: the actor may not write reviews. PathVizError / WorkspaceError:
            as ``Database.add_review``.
        """
        require(actor, "reviews.write", "save reviews")
        row = self.db.add_review(slide_id, layer, grid_key, rect, verdict, actor.username, comment, score)
        self.audit.record(actor, "review.saved", "slide", slide_id, {"layer": layer, "rect": list(rect), "verdict": verdict,
                                                                     "review_id": row.id, "comment_chars": len(comment or "")})
        return row

    def record_export(self, actor, slide_id: str, fmt: str, rows: int) -> None:
        """Audit a download of a slide's flagged patches and reviews (``export.downloaded``).

        Raises:
            PermissionDeniedError: the actor may not export reviews.
        """
        require(actor, "reviews.export", "export reviews")
        self.audit.record(actor, "export.downloaded", "slide", slide_id, {"format": fmt, "rows": int(rows)})

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

        Patches whose pixels cannot be decoded (corrupt regions of the file) are skipped: their
        stain scores are NaN, they are recorded in ``derived/<slide_id>/integrity.json``
        (``found_by="analysis"``, replacing those of an earlier analysis of the same grid) and
        named in the final progress message; read them back with
        ``integrity(slide_id, found_by="analysis", grid_key=grid.key)``.

        Raises:
            SlideError: the slide cannot be read at all, or its thumbnail (tissue mask) cannot be
                decoded at any level; EmptyTissueMaskError: no tissue; WorkspaceError: unknown slide.
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
            skipped: list = []
            h, e = stain_density_layers(slide, grid, progress=lambda f: report(0.25 + 0.75 * f, "stain densities"),
                                        skipped=skipped)
            self.save_layer(slide_id, h)
            self.save_layer(slide_id, e)
        self._record_integrity(slide_id, skipped, replace=lambda r: r.found_by == "analysis" and r.grid_key == key)
        self._set_default_grid(slide_id, key)
        report(1.0, "done" if not skipped else f"done; {skipped_summary(skipped)}")
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

    # -- integrity: corrupt regions found at registration and analysis -------------------------
    def integrity(self, slide_id: str, found_by: str | None = None, grid_key: str | None = None) -> list:
        """Corrupt regions recorded for a slide (``derived/<slide_id>/integrity.json``).

        Args:
            slide_id: a slide id (an unknown or never-checked one has none).
            found_by: keep only ``"registration"`` (tiles sampled by
                :func:`~pathviz.slide.integrity.check_pyramid`) or ``"analysis"`` (skipped patches).
            grid_key: keep only skipped patches of this tile grid.

        Returns:
            ``list[CorruptRegion]`` (level, level-0 ``rect`` in pixels, error text, ...), in the
            order found; empty when none were found.

        Raises:
            WorkspaceError: the file exists but is not a readable integrity record.
        """
        path = self.derived_dir(slide_id) / "integrity.json"
        try:
            regions = _load_integrity(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise WorkspaceError(f"The integrity record {path} cannot be read ({exc}).",
                                 "delete it and analyse the slide again (it is rebuilt).", path) from exc
        return [r for r in regions
                if (found_by is None or r.found_by == found_by) and (grid_key is None or r.grid_key == grid_key)]

    def _record_integrity(self, slide_id: str, regions: list, replace: Callable) -> None:
        """Merge ``regions`` into the slide's integrity record, dropping stored ones for which
        ``replace(region)`` is true (an unreadable record is started afresh)."""
        path = self.derived_dir(slide_id) / "integrity.json"
        try:
            kept = [r for r in _load_integrity(path) if not replace(r)]
        except (OSError, ValueError, KeyError, TypeError):
            kept = []
        merged = kept + [r for r in regions if r not in kept]
        if not merged and not path.exists():
            return
        payload = {"slide_id": slide_id, "regions": [r.to_dict() for r in merged]}
        _atomic_write_text(path, json.dumps(payload, indent=1))


_MODEL_LAYER = re.compile(r"^(?P<base>[a-z0-9_]+)-m(?P<tag>[0-9a-f]{6,32})$")


def resolve_allowed(path, roots, refused: Exception, exists=Path.exists) -> Path:
    """A path typed on a web page, resolved (symlinks, ``..``), when it lies inside one of ``roots``
    and ``exists(path)`` holds; otherwise ``refused`` is raised, the same for every path that is not
    allowed or not found, so a page is no file-existence oracle.

    Raises:
        ``refused``: empty, outside every root, missing (or failing ``exists``), or unresolvable.
    """
    text = str(path).strip()
    try:
        src = Path(text).expanduser().resolve()
        if not text or not any(src.is_relative_to(Path(r).resolve()) for r in roots) or not exists(src):
            raise refused
    except (OSError, RuntimeError, ValueError):
        raise refused from None
    return src


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
    """An opaque, stable id (``slide-`` + 12 hex of the path's SHA-256): never the file name, which
    often carries a patient identifier, so ids are safe in URLs, logs and exports."""
    return "slide-" + hashlib.sha256(str(path).encode()).hexdigest()[:12]


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


def _load_integrity(path: Path) -> list:
    """Regions stored by :meth:`Workspace._record_integrity` (empty if the file is absent)."""
    from pathviz.slide.integrity import CorruptRegion

    if not path.exists():
        return []
    data = json.loads(path.read_text())
    return [CorruptRegion.from_dict(d) for d in data["regions"]]


def skipped_summary(regions: list, limit: int = 5) -> str:
    """``"N patches skipped (corrupt regions): patch 3 (level 2 x=0 y=0 256x256), ..."`` for
    skipped-patch regions (at most ``limit`` named, then ``and K more``)."""
    n = len(regions)
    named = ", ".join(r.describe() for r in regions[:limit])
    more = f", and {n - limit} more" if n > limit else ""
    return f"{n} patch{'es' if n != 1 else ''} skipped (corrupt regions): {named}{more}"


def content_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a slide's content, read in ``chunk``-byte (1 MiB) pieces.

    A single-file slide hashes its bytes exactly (``sha256sum`` gives the same). A MIRAX ``.mrxs``
    hashes the index file, then every file of its sibling folder (same stem) in sorted order, each
    preceded by its path relative to that folder, so a renamed copy of the slide and its folder
    hashes the same.

    Raises:
        OSError: a file cannot be read.
    """
    path = Path(path)
    h = hashlib.sha256()

    def feed(p: Path) -> None:
        with open(p, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)

    feed(path)
    if path.suffix.lower() == ".mrxs":
        folder = path.with_suffix("")
        if folder.is_dir():
            for f in sorted(p for p in folder.rglob("*") if p.is_file()):
                h.update(b"\0" + f.relative_to(folder).as_posix().encode() + b"\0")
                feed(f)
    return h.hexdigest()
