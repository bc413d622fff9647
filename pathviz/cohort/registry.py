"""Cohorts registered in the workspace: ``pathviz cohort add PATH --format ...`` (and the Workspace
page) records where a cohort's files are and how to read them; :func:`pathviz.cohort.load_cohort`
then loads it by name like a built-in one.

Formats (:data:`FORMATS`):

* ``tcga``: the shared TCGA layout (``clinical.csv`` with ``patient_id``, ``time_months``,
  ``event``; optional ``rna.csv.gz``), any cancer code (:func:`pathviz.cohort.loaders.load_tcga`);
* ``cbioportal``: a cBioPortal study folder (:func:`pathviz.cohort.formats.load_cbioportal`);
* ``gdc``: a GDC download with its sample sheet (:func:`pathviz.cohort.formats.load_gdc`);
  both take an optional ``status_map`` (``{"VALUE": 0 or 1}``) for status codings of their own;
* ``csv``: one CSV per patient row with a column mapping file (JSON: ``{"mapping": {"patient_id":
  COL, "time": COL, "event": COL}, "time_unit": "days", "event_map": {"dead": 1, "alive": 0},
  "omics": "expression.csv"}``; :func:`pathviz.cohort.loaders.load_csv`).

Any format may also name a slide folder (option ``slides``) and a slide mapping CSV (``slide_map``):
slide files are then linked to patients by TCGA barcode or mapping (:mod:`pathviz.cohort.slides`).

A cohort is loaded (and so validated) when it is added, so a bad folder is refused at once with
the loader's message; nothing is stored then. Adding and removing need the ``cohorts.manage``
permission (researchers, admins) and are audited; removing forgets the registration only, never
the files.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, select

from pathviz.auth.policy import require
from pathviz.cohort.schema import Cohort, CohortError
from pathviz.store.models import CohortRecord

FORMATS = ("tcga", "cbioportal", "gdc", "csv")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def load_registered(rec: CohortRecord) -> Cohort:
    """Load a registered cohort with its format's loader; its name is the registered one.

    Raises:
        CohortError: the files are gone or no longer valid (the loader's message names them).
    """
    opts = json.loads(rec.options or "{}")
    cohort = _load_format(rec, opts)
    if opts.get("slides"):
        from pathviz.cohort.slides import attach_slides

        cohort = attach_slides(cohort, opts["slides"], opts.get("slide_map"))
    return cohort


def _load_format(rec: CohortRecord, opts: dict) -> Cohort:
    path = Path(rec.path)
    if rec.format == "tcga":
        from pathviz.cohort.loaders import load_tcga

        return load_tcga(path.name, root=path.parent, name=rec.name)
    if rec.format == "cbioportal":
        from pathviz.cohort.formats import load_cbioportal

        return load_cbioportal(path, name=rec.name, status_map=opts.get("status_map"))
    if rec.format == "gdc":
        from pathviz.cohort.formats import load_gdc

        return load_gdc(path, name=rec.name, status_map=opts.get("status_map"))
    if rec.format == "csv":
        from pathviz.cohort.loaders import load_csv

        kwargs = {k: v for k, v in opts.items() if k not in ("omics", "slides", "slide_map")}
        if "mapping" not in kwargs:
            raise CohortError(f"Cohort {rec.name!r}: a CSV cohort needs a column mapping.",
                              "add it with --mapping FILE.json holding {\"mapping\": {\"patient_id\": ..., \"time\": ..., "
                              "\"event\": ...}}.")
        return load_csv(path, name=rec.name, omics=opts.get("omics"), **kwargs)
    raise CohortError(f"Cohort {rec.name!r} has unknown format {rec.format!r}.", f"use one of {', '.join(FORMATS)}.")


class CohortRegistry:
    """The ``cohorts`` table of a workspace database.

    Args:
        db: the workspace :class:`~pathviz.store.db.Database`.
        audit: its :class:`~pathviz.auth.audit.AuditLog` (additions and removals are recorded).
    """

    def __init__(self, db, audit):
        self.db, self.audit = db, audit

    def records(self) -> list[CohortRecord]:
        """Registered cohorts, by name."""
        return self.db._read(lambda s: list(s.scalars(select(CohortRecord).order_by(CohortRecord.name))))

    def get(self, name: str) -> CohortRecord | None:
        return self.db._read(lambda s: s.get(CohortRecord, name))

    def add(self, actor, path: str | Path, fmt: str, name: str | None = None, options: dict | None = None) -> Cohort:
        """Register a cohort after loading it once (which validates every file).

        Args:
            actor: who adds it (needs ``cohorts.manage``).
            path: the cohort folder (tcga, cbioportal, gdc) or CSV file.
            fmt: one of :data:`FORMATS`.
            name: the name to load it by (default from the folder/file name: lowercase, ``[a-z0-9_]``).
            options: format options (CSV: ``mapping``, ``time_unit``, ``event_map``, ``omics``...;
                any format: ``slides`` a slide folder, ``slide_map`` a CSV ``slide,patient_id``).

        Returns:
            The loaded cohort.

        Raises:
            PermissionDeniedError; CohortError: unknown format, invalid or taken name (built-in
            names included), missing path, or the loader's refusal of the files.
        """
        from pathviz.cohort.loaders import builtin_cohort_names

        require(actor, "cohorts.manage", "add cohorts")
        if fmt not in FORMATS:
            raise CohortError(f"Unknown cohort format {fmt!r}.", f"use --format {' | '.join(FORMATS)}.")
        src = Path(path).expanduser().resolve()
        if not src.exists():
            raise CohortError(f"{src} does not exist.", "give the cohort's folder (or CSV file for --format csv).", src)
        cname = (name or re.sub(r"[^a-z0-9_]+", "_", src.stem.lower()).strip("_") or "cohort").lower()
        if not _NAME.fullmatch(cname):
            raise CohortError(f"Invalid cohort name {cname!r}.", "use lowercase letters, digits and '_', starting with a letter.")
        if cname in builtin_cohort_names() or self.get(cname) is not None:
            raise CohortError(f"A cohort named {cname!r} exists already.", "choose another --name, or remove the old one first.")
        opts = dict(options or {})
        if fmt == "csv" and opts.get("omics"):
            opts["omics"] = str((src.parent / opts["omics"]).resolve()) if not Path(opts["omics"]).is_absolute() else opts["omics"]
        for key in ("slides", "slide_map"):  # stored absolute: later loads run from any directory
            if opts.get(key):
                opts[key] = str(Path(opts[key]).expanduser().resolve())
        if opts.get("slide_map") and not opts.get("slides"):
            raise CohortError("A slide mapping needs a slide folder.", "give --slides DIR with --slide-map FILE.")
        rec = CohortRecord(name=cname, format=fmt, path=str(src), options=json.dumps(opts, sort_keys=True), added_by=actor.username)
        cohort = load_registered(rec)  # validates; raises with the loader's message
        summary = cohort.summary()
        rec.summary = json.dumps(summary, default=str, sort_keys=True)

        def insert(s):
            s.add(rec)
            s.flush()

        self.db.write(insert)
        self.audit.record(actor, "cohort.added", "cohort", cname, {"format": fmt, "patients": cohort.n, "events": cohort.n_events})
        return cohort

    def add_from_ui(self, actor, path: str, fmt: str, name: str | None, allowed_roots, options: dict | None = None,
                    slides: str | None = None) -> Cohort:
        """:meth:`add` for paths typed on a web page (the cohort folder and an optional slide
        folder): only inside ``allowed_roots`` (the workspace, ``PATHVIZ_SLIDE_ROOTS``, the shared
        data folder), and one answer for every path that is not allowed or does not exist, so the
        page tells nothing about other server files.

        Raises:
            CohortError: not allowed or not found; otherwise as :meth:`add`.
        """
        require(actor, "cohorts.manage", "add cohorts")
        refused = CohortError(f"{str(path).strip() or '(empty path)'} is not allowed or not found.",
                              "choose a folder inside the workspace, PATHVIZ_SLIDE_ROOTS or the shared data folder "
                              "(listed on this page), or use `pathviz cohort add` on the server.")
        from pathviz.store.workspace import resolve_allowed

        src = resolve_allowed(path, allowed_roots, refused)
        opts = dict(options or {})
        if slides and str(slides).strip():
            opts["slides"] = str(resolve_allowed(slides, allowed_roots, CohortError(
                f"Slide folder {str(slides).strip()} is not allowed or not found.", refused.fix)))
        return self.add(actor, src, fmt, name=name or None, options=opts)

    def remove(self, actor, name: str) -> None:
        """Forget a registered cohort (its files stay). Audited.

        Raises:
            PermissionDeniedError; CohortError: no such registered cohort (built-ins cannot be removed).
        """
        require(actor, "cohorts.manage", "remove cohorts")
        if self.get(name) is None:
            raise CohortError(f"No registered cohort {name!r}.", "see `pathviz cohort list` (built-in cohorts cannot be removed).")
        self.db.write(lambda s: s.execute(delete(CohortRecord).where(CohortRecord.name == name)))
        self.audit.record(actor, "cohort.removed", "cohort", name)

    def stamp(self, name: str) -> str:
        """A cache key that changes when the registration changes."""
        rec = self.get(name)
        added: datetime | None = rec.added_at if rec else None
        return f"{name}@{added}"
