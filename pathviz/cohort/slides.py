"""Linking slide files to a cohort's patients.

A registered cohort may name a folder of slides (``pathviz cohort add ... --slides DIR``) and,
optionally, a mapping file (``--slide-map FILE.csv``). Each slide file is linked to one patient:

1. by the mapping file when given: a CSV with columns ``slide`` (a file name, or a path relative to
   the mapping file or absolute) and ``patient_id``;
2. otherwise by its file name: a TCGA barcode's first 12 characters (``TCGA-BR-6452-01Z-00-DX1.<uuid>.svs``
   -> patient ``TCGA-BR-6452``), or a file stem equal to a patient id (``P001.tif``).

Files that match no patient are counted and named, never guessed. A patient with several slides
keeps all of them (:attr:`SlideLinks.by_patient`); the ``slide`` column of the cohort holds the
first in order of preference: TCGA diagnostic (``-DX``, FFPE) slides before frozen sections
(``-TS``/``-BS``/``-MS``), then by name. The ``slide`` column is an identifier, never a covariate.

Only file names are read here: linking never opens a slide. Registering a slide in the workspace
(``pathviz slide add``) is what opens, checks and analyses it.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pathviz.cohort.formats import TCGA_PATIENT
from pathviz.cohort.schema import Cohort, CohortError
from pathviz.slide.reader import OPENSLIDE_SUFFIXES, PLAIN_SUFFIXES

SLIDE_SUFFIXES = OPENSLIDE_SUFFIXES + PLAIN_SUFFIXES
_DIAGNOSTIC = re.compile(r"-DX\d*", re.IGNORECASE)


def tcga_patient_barcode(name: str) -> str | None:
    """The patient barcode (first 12 characters, upper case) of a TCGA slide or sample name, e.g.
    ``TCGA-BR-6452-01Z-00-DX1.svs`` -> ``TCGA-BR-6452``; None when the name is not a TCGA barcode."""
    m = TCGA_PATIENT.match(Path(str(name)).name.strip())
    return m.group(1).upper() if m else None


def find_slide_files(folder: str | Path) -> list[Path]:
    """Slide files under ``folder`` (recursively; hidden files and folders skipped), sorted.

    Raises:
        CohortError: the folder does not exist.
    """
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise CohortError(f"Slide folder {root} does not exist.", "give the folder holding the cohort's slide files.", root)
    out = []
    for p in root.rglob("*"):
        rel = p.relative_to(root).parts
        if any(part.startswith(".") for part in rel) or not p.is_file():
            continue
        if p.suffix.lower() in SLIDE_SUFFIXES:
            out.append(p)
    # a .mrxs slide keeps its tiles in a folder of the same stem: those .dat files are not slides
    return sorted(out)


@dataclass
class SlideLinks:
    """Slides linked to patients.

    Attributes:
        by_patient: patient id -> slide paths (absolute), preferred first.
        unmatched: slide files linked to no patient of the cohort (absolute paths).
        how: ``"mapping"`` or ``"file name"``.
        source: the slide folder (and mapping file) the links come from.
    """

    by_patient: dict[str, list[str]] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)
    how: str = "file name"
    source: str = ""

    @property
    def n_files(self) -> int:
        return sum(map(len, self.by_patient.values())) + len(self.unmatched)

    def note(self, n_patients: int) -> str:
        """One line for the cohort's description."""
        linked = self.n_files - len(self.unmatched)
        text = (f"slides: {len(self.by_patient)} of {n_patients} patients linked by {self.how} ({linked} of {self.n_files} "
                f"slide files in {self.source})")
        if self.unmatched:
            shown = ", ".join(Path(p).name for p in self.unmatched[:3])
            one = len(self.unmatched) == 1
            text += (f"; {len(self.unmatched)} file{'' if one else 's'} {'matches' if one else 'match'} no patient "
                     f"({shown}{', ...' if len(self.unmatched) > 3 else ''})")
        return text


def _preference(path: str) -> tuple[int, str]:
    return (0 if _DIAGNOSTIC.search(Path(path).name) else 1, Path(path).name)


def _read_slide_map(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype=str)
    except (OSError, ValueError) as exc:
        raise CohortError(f"Cannot read the slide mapping {path} ({exc}).",
                          "give a CSV with columns slide,patient_id.", path) from exc
    need = [c for c in ("slide", "patient_id") if c not in table.columns]
    if need:
        raise CohortError(f"The slide mapping {path.name} lacks column(s) {', '.join(need)} (has: "
                          f"{', '.join(map(str, table.columns))}).", "give a CSV with columns slide,patient_id.", path)
    table = table.dropna(subset=["slide", "patient_id"])
    dup = table["slide"][table["slide"].duplicated()]
    if len(dup):
        raise CohortError(f"The slide mapping {path.name} lists {dup.iloc[0]!r} more than once.",
                          "give each slide file one row (one patient).", path)
    return table


def link_slides(patient_ids, folder: str | Path, mapping: str | Path | None = None) -> SlideLinks:
    """Link the slide files under ``folder`` to ``patient_ids`` (rules in the module docstring).

    Args:
        patient_ids: the cohort's patient ids (iterable of str).
        folder: the slide folder (searched recursively).
        mapping: optional CSV with columns ``slide``, ``patient_id``.

    Returns:
        :class:`SlideLinks`.

    Raises:
        CohortError: missing folder or mapping file, a mapping without its columns or with a slide
            listed twice, or a mapping row naming a slide file that does not exist.
    """
    root = Path(folder).expanduser().resolve()
    files = find_slide_files(root)
    ids = {str(p) for p in patient_ids}
    links: dict[str, list[str]] = {}
    unmatched: list[str] = []
    if mapping is not None:
        mpath = Path(mapping).expanduser().resolve()
        if not mpath.is_file():
            raise CohortError(f"Slide mapping {mpath} does not exist.", "give a CSV with columns slide,patient_id.", mpath)
        table = _read_slide_map(mpath)
        by_name = {}
        for f in files:
            by_name.setdefault(f.name, f)
        for slide, pid in zip(table["slide"], table["patient_id"]):
            cand = Path(slide) if Path(slide).is_absolute() else (mpath.parent / slide)
            path = cand.resolve() if cand.is_file() else (root / slide).resolve() if (root / slide).is_file() \
                else by_name.get(Path(slide).name)
            if path is None:
                raise CohortError(f"The slide mapping {mpath.name} names {slide!r}, which is not in {root}.",
                                  "correct the file name or remove that row.", mpath)
            (links.setdefault(str(pid).strip(), []) if str(pid).strip() in ids else unmatched).append(str(path))
        mapped = {p for v in links.values() for p in v} | set(unmatched)
        unmatched += [str(f) for f in files if str(f) not in mapped]
        how, source = "mapping", f"{root} with {mpath.name}"
    else:
        for f in files:
            pid = tcga_patient_barcode(f.name)
            pid = pid if pid in ids else f.stem if f.stem in ids else None
            (links.setdefault(pid, []) if pid is not None else unmatched).append(str(f))
        how, source = "file name", str(root)
    return SlideLinks({p: sorted(v, key=_preference) for p, v in links.items()}, sorted(unmatched), how, source)


def attach_slides(cohort: Cohort, folder: str | Path, mapping: str | Path | None = None) -> Cohort:
    """A copy of ``cohort`` with a ``slide`` column (each patient's preferred slide, absolute path;
    missing where none is linked) declared as an identifier, ``slide_links`` set, and the linking
    summarised in ``description``.

    Raises:
        CohortError: as :func:`link_slides`; or the cohort already has a ``slide`` column (its own
            loader linked slides: give no slide folder then).
    """
    if "slide" in cohort.clinical.columns:
        raise CohortError(f"Cohort {cohort.name!r} already has a slide column.", "register it without a slide folder.")
    links = link_slides(cohort.clinical.index.astype(str), folder, mapping)
    clinical = cohort.clinical.copy()
    clinical["slide"] = [links.by_patient.get(str(p), [None])[0] for p in clinical.index]
    out = copy.copy(cohort)  # the tables were validated by the loader; only an identifier column is added
    out.clinical, out.id_columns, out.slide_links = clinical, [*cohort.id_columns, "slide"], links
    out.description = f"{cohort.description}; {links.note(cohort.n)}"
    return out


def coverage(cohort: Cohort, workspace_slides: list[str] | None = None) -> dict:
    """What each patient of ``cohort`` has: RNA, a linked slide file, a slide registered in the
    workspace (by TCGA barcode or file stem, when ``workspace_slides`` names are given), each
    endpoint and each clinical field.

    Args:
        cohort: the cohort.
        workspace_slides: names of the slides registered in the workspace (optional).

    Returns:
        ``{"patients", "with_rna", "without_rna", "with_slides", "without_slides",
        "with_rna_and_slides", "workspace_slides" (patients with a registered slide, or None),
        "slide_note", "endpoints": [{"key", "label", "patients"}], "fields": [{"field", "kind",
        "present", "missing"}]}``.
    """
    ids = pd.Index(cohort.clinical.index.astype(str))
    none = np.zeros(len(ids), bool)
    rna = ids.isin(cohort.omics.index.astype(str)) if cohort.omics is not None else none
    slide = cohort.clinical["slide"].notna().to_numpy() if "slide" in cohort.clinical.columns else none
    in_ws = None
    if workspace_slides is not None:
        names = {tcga_patient_barcode(n) or Path(n).stem for n in workspace_slides}
        in_ws = int(ids.isin(list(names)).sum())
    outcome, markers, covariates = cohort.outcome_columns, set(cohort.markers), set(cohort.clinical_covariates())

    def kind(col: str) -> str:
        if col in outcome:
            return "outcome"
        if col in cohort.id_columns:
            return "identifier"
        if col in markers:
            return "serum marker"
        return "covariate" if col in covariates else "excluded (reads like an outcome)"

    fields = [{"field": c, "kind": kind(c), "present": int(cohort.clinical[c].notna().sum()),
               "missing": int(cohort.clinical[c].isna().sum())} for c in cohort.clinical.columns]
    links = cohort.slide_links
    return {
        "patients": cohort.n, "with_rna": int(rna.sum()), "without_rna": int((~rna).sum()),
        "with_slides": int(slide.sum()), "without_slides": int((~slide).sum()),
        "with_rna_and_slides": int((rna & slide).sum()), "workspace_slides": in_ws,
        "slide_note": links.note(cohort.n) if links is not None else "",
        "endpoints": [{"key": e.key, "label": e.label,
                       "patients": int((cohort.clinical[e.time].notna() & cohort.clinical[e.event].notna()).sum())}
                      for e in cohort.endpoints],
        "fields": fields,
    }
