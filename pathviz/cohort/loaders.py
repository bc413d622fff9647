"""Loaders for real cohorts: SurvSet GEO breast-cancer sets, scikit-survival datasets, the shared
TCGA layout, and a user's CSV with a column mapping. Each returns a validated :class:`Cohort`.

Times are converted to months (days / 30.4375, years x 12) and the conversion is recorded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from pathviz.cohort.endpoints import Endpoint
from pathviz.cohort.schema import Cohort, CohortError, check_event_codes, value_counts_text
from pathviz.errors import unknown_fix

DAYS_PER_MONTH = 30.4375
#: Default serum-marker thresholds (unit, value), the usual upper reference limits: CA19-9
#: 37 U/mL, CEA 5 ng/mL, CA-125 35 U/mL. Only serum markers belong here: tissue receptors (ER/PR)
#: are clinical covariates, not markers.
MARKER_THRESHOLDS = {"ca19_9": ("U/mL", 37.0), "cea": ("ng/mL", 5.0), "ca125": ("U/mL", 35.0)}


def shared_data_dir() -> Path:
    """``$PATHVIZ_SHARED_DATA`` or ``../shared/data`` beside the repository."""
    env = os.environ.get("PATHVIZ_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"


# -- event coding ----------------------------------------------------------------------------------
#: cBioPortal / TCGA status strings, mapped explicitly (``"1:DECEASED"`` is an event,
#: ``"0:LIVING"`` is censored...). Numeric 0/1 pass through; anything else is refused.
TCGA_STATUS_MAP = {
    0: 0, 1: 1,
    "1:DECEASED": 1, "0:LIVING": 0,  # overall survival
    "1:Recurred/Progressed": 1, "0:DiseaseFree": 0,  # disease-free survival
    "1:PROGRESSION": 1, "0:CENSORED": 0,  # progression-free survival
    "1:DEAD WITH TUMOR": 1, "0:ALIVE OR DEAD TUMOR FREE": 0,  # disease-specific survival
}


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _lookup(value, mapping: dict):
    """The code ``mapping`` gives ``value``, or None. Numbers match numerically (``2.0`` matches
    key ``2``), strings after stripping spaces; a numeric string matches a numeric key."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    for k, code in mapping.items():
        if isinstance(value, str):
            v = value.strip()
            if isinstance(k, str) and k.strip() == v:
                return code
            if _is_number(k):
                try:
                    if float(v) == k:
                        return code
                except ValueError:
                    pass
        elif isinstance(value, (bool, np.bool_)) or isinstance(k, (bool, np.bool_)):
            if isinstance(value, (bool, np.bool_)) and isinstance(k, (bool, np.bool_)) and bool(value) == bool(k):
                return code
        elif _is_number(value) and _is_number(k) and value == k:
            return code
    return None


def apply_event_map(event: pd.Series, event_map: dict, name: str, column: str = "event") -> pd.Series:
    """Recode an event column with an explicit mapping ``{value: 0 or 1}``.

    Every value of the column (missing ones included) must be a key of ``event_map``: e.g.
    ``{"dead": 1, "alive": 0}`` or ``{2: 1, 1: 0}`` (R survival's 1 = censored / 2 = dead).

    Returns:
        The column as int 0/1.

    Raises:
        CohortError: a mapping value other than 0/1, or column values absent from the mapping
            (the message names the column, the values with counts and example patient ids; the
            fix is to add them to ``event_map`` or drop those patients).
    """
    wrong = {k: v for k, v in event_map.items() if not (_is_number(v) or isinstance(v, (bool, np.bool_))) or v not in (0, 1)}
    if wrong:
        raise CohortError(f"Cohort {name!r}: event_map must map values to 0 (censored) or 1 (event); got {wrong!r}.",
                          "e.g. event_map={'dead': 1, 'alive': 0} or {2: 1, 1: 0}.")
    codes = [_lookup(v, event_map) for v in event.tolist()]
    unmapped = np.array([c is None for c in codes], dtype=bool)
    if unmapped.any():
        bad = event[unmapped]
        ids = ", ".join(map(str, bad.index[:5]))
        raise CohortError(
            f"Cohort {name!r}: event column {column!r} has values not in event_map: {value_counts_text(bad)}; "
            f"{len(bad)} patients, e.g. {ids}. event_map covers {', '.join(map(repr, event_map))}.",
            "add every value of the column to event_map (as 1 = event or 0 = censored), or drop those patients.",
        )
    return pd.Series([int(c) for c in codes], index=event.index, name=event.name)


# -- SurvSet ----------------------------------------------------------------------------------
SURVSET_COHORTS = {
    "gse1992": "GSE1992 breast cancer (SurvSet / survJamda.data): 124 patients, Agilent expression",
    "gse4335": "GSE4335 breast cancer (SurvSet / survJamda.data): 115 patients, cDNA expression",
    "gse3143": "GSE3143 breast cancer (SurvSet / survJamda.data): 158 patients, Affymetrix expression",
}


def load_survset(name: str) -> Cohort:
    """A SurvSet gene-expression cohort: ``num_HS_<SYMBOL>`` columns become the omics matrix,
    ``fac_*``/``num_*`` the clinical columns (prefix dropped). Times are months as shipped."""
    if name not in SURVSET_COHORTS:
        raise CohortError(f"{name!r} is not a SurvSet cohort PathViz knows.", f"use one of {', '.join(SURVSET_COHORTS)}.")
    try:
        from SurvSet.data import SurvLoader
    except ImportError as exc:  # pragma: no cover - pinned in requirements
        raise CohortError("The SurvSet package is not installed.", "pip install -r requirements.txt.") from exc
    df = SurvLoader().load_dataset(ds_name=name)["df"]
    genes = [c for c in df.columns if c.startswith("num_HS_")]
    omics = df.set_index("pid")[genes]
    omics.columns = [c[len("num_HS_"):] for c in genes]
    omics = omics.T.groupby(level=0).mean().T  # a symbol measured by several probes: mean
    clin_cols = [c for c in df.columns if c not in genes and c not in ("pid", "time", "event")]
    clinical = pd.DataFrame({"patient_id": df["pid"].astype(str), "time": df["time"], "event": df["event"]})
    for c in clin_cols:
        short = c.split("_", 1)[1]
        if short in clinical.columns:  # fac_grade and num_grade: keep the numeric one
            short = short + ("_num" if c.startswith("num_") else "_cat")
        clinical[short] = pd.to_numeric(df[c], errors="coerce") if c.startswith("num_") else df[c].astype(str)
    return Cohort(
        name=name, clinical=clinical, omics=omics, description=SURVSET_COHORTS[name],
        endpoint="survival as shipped by SurvSet", time_unit_note="months (as shipped by SurvSet)",
    )


# -- scikit-survival ------------------------------------------------------------------------------
def load_gbsg2() -> Cohort:
    """German Breast Cancer Study Group 2 (scikit-survival ``load_gbsg2``): 686 patients,
    recurrence-free survival; hormonal therapy (``horTh``) is the treatment column. Oestrogen and
    progesterone receptors (``estrec``, ``progrec``, fmol/mg) are tissue receptor levels, so they are
    clinical covariates; the cohort has no serum marker."""
    from sksurv.datasets import load_gbsg2 as _load

    X, y = _load()
    clinical = X.copy()
    clinical["patient_id"] = [f"gbsg2-{i:04d}" for i in range(len(X))]
    clinical["time"] = y["time"] / DAYS_PER_MONTH
    clinical["event"] = y["cens"].astype(int)
    clinical["treatment"] = (X["horTh"].astype(str) == "yes").astype(int)
    clinical = clinical.drop(columns=["horTh"])
    for c in ("menostat", "tgrade"):
        clinical[c] = clinical[c].astype(str)
    return Cohort(
        name="gbsg2", clinical=clinical, treatment="treatment",
        description="GBSG2 breast cancer trial (scikit-survival load_gbsg2): 686 patients; treatment = hormonal therapy",
        endpoint="recurrence-free survival", time_unit_note="days / 30.4375",
    )


def load_sksurv_breast_cancer() -> Cohort:
    """Breast cancer (scikit-survival ``load_breast_cancer``): 198 patients, time to distant
    metastasis, 76 genes (Affymetrix probe ids) as the omics matrix."""
    from sksurv.datasets import load_breast_cancer as _load

    X, y = _load()
    ids = [f"bc-{i:03d}" for i in range(len(X))]
    clin = X[["age", "er", "grade", "size"]].copy()
    clin["er"] = clin["er"].astype(str)
    clin["grade"] = clin["grade"].astype(str)
    clin.insert(0, "patient_id", ids)
    clin["time"] = y["t.tdm"] / DAYS_PER_MONTH
    clin["event"] = y["e.tdm"].astype(int)
    omics = X.drop(columns=["age", "er", "grade", "size"]).astype(float)
    omics.index = ids
    return Cohort(
        name="breast_cancer", clinical=clin, omics=omics,
        description="Breast cancer, 198 patients (scikit-survival load_breast_cancer; probe-level expression)",
        endpoint="distant-metastasis-free survival", time_unit_note="days / 30.4375",
    )


# -- TCGA (shared layout) ------------------------------------------------------------------------
#: cBioPortal-style z-scores are heavy-tailed (README of ../shared/data/tcga): a matrix detected as
#: z-scores is clipped to +-TCGA_Z_CLIP, a declared and recorded step of this format (the number of
#: values clipped is in ``Cohort.omics_note``); any other scale (log2 TPM, counts) is never clipped.
TCGA_Z_CLIP = 10.0


def tcga_codes(root: str | Path | None = None) -> list[str]:
    """Cancer codes of the shared TCGA folders present (``<root>/<code>/clinical.csv``), any code."""
    folder = Path(root) if root else shared_data_dir() / "tcga"
    if not folder.is_dir():
        return []
    return sorted(p.name.lower() for p in folder.iterdir() if (p / "clinical.csv").is_file())


#: TCGA Clinical Data Resource endpoints (Liu et al., Cell 2018): ``KEY`` (0/1) and ``KEY.time`` (days).
CDR_MISSING = ("#N/A", "NA", "[Not Available]")  # missing-value spellings of TCGA-CDR tables
TCGA_CDR_ENDPOINTS = {"OS": "overall survival", "DSS": "disease-specific survival", "DFI": "disease-free interval",
                      "PFI": "progression-free interval"}


def _tcga_endpoints(raw: pd.DataFrame, clinical: pd.DataFrame, cname: str, path: Path) -> tuple[list[Endpoint], list[str]]:
    """Further endpoints of a TCGA ``clinical.csv``, in TCGA-CDR naming (``DSS``, ``DSS.time`` in
    days) or the shared layout's (``dss_time_months``, ``dss_event``); written into ``clinical``
    as ``<key>_time`` (months) and ``<key>_event``. A value that is neither a number nor missing
    is refused by name, never coerced. Returns ``(endpoints, notes)``."""
    endpoints, notes = [], []
    for key, label in TCGA_CDR_ENDPOINTS.items():
        k = key.lower()
        if f"{key}.time" in raw.columns and key in raw.columns:
            tcol, ecol, scale, how = f"{key}.time", key, 1.0 / DAYS_PER_MONTH, f"{key}.time days / {DAYS_PER_MONTH}"
        elif f"{k}_time_months" in raw.columns and f"{k}_event" in raw.columns:
            tcol, ecol, scale, how = f"{k}_time_months", f"{k}_event", 1.0, f"{k}_time_months"
        else:
            continue
        if k == "os" and "time_months" in raw.columns:
            continue  # the primary endpoint already
        vals = {}
        for col in (tcol, ecol):
            given = raw[col].where(~raw[col].isin(CDR_MISSING))
            num = pd.to_numeric(given, errors="coerce")
            bad = given[num.isna() & given.notna()]
            if len(bad):
                raise CohortError(f"Cohort {cname!r}: {path.name} column {col!r} has non-numeric values: "
                                  f"{value_counts_text(bad)}.", "give numbers (empty or #N/A for missing).", path)
            vals[col] = num.to_numpy()
        clinical[f"{k}_time"], clinical[f"{k}_event"] = vals[tcol] * scale, vals[ecol]
        endpoints.append(Endpoint(k, label, f"{k}_time", f"{k}_event"))
        notes.append(f"{label} from {how}")
    return endpoints, notes


def load_tcga(code: str, root: str | Path | None = None, event_map: dict | None = None, name: str | None = None) -> Cohort:
    """A TCGA cohort in the shared layout ``<root>/<code>/clinical.csv`` + ``rna.csv.gz``.

    Clinical: ``time_months`` -> ``time``, ``event``, ``age``, ``stage``, ``sex``, ``grade``,
    ``subtype``; ``site`` (tissue source site) is the centre column. Further endpoints in TCGA-CDR
    naming (``DSS``/``DSS.time`` days, ``DFI``, ``PFI``; ``OS``/``OS.time`` as primary when
    ``time_months`` is absent) or as ``<key>_time_months``/``<key>_event`` are declared too
    (:data:`TCGA_CDR_ENDPOINTS`), in months. Expression: its scale is
    detected (:func:`pathviz.cohort.omics.detect_scale`) and recorded; z-scores are clipped to
    +-:data:`TCGA_Z_CLIP` (declared, counted), other scales are left as they are.

    Args:
        code: any cancer code with a folder under ``root`` (``stad``, ``paad``...; ``tcga_stad`` too).
        root: folder holding ``<code>/`` (default ``../shared/data/tcga``).
        event_map: explicit coding of the ``event`` column (default :data:`TCGA_STATUS_MAP`:
            0/1 and cBioPortal strings such as ``"1:DECEASED"``/``"0:LIVING"``).
        name: the cohort's name (default ``tcga_<code>``; a registered cohort passes its own).

    Raises:
        CohortError: the folder or files are missing (message names the path); event values
            outside the mapping (message names them with counts; fix: pass ``event_map``);
            any schema violation (non-finite or negative times...).
    """
    code = code.lower().removeprefix("tcga_")
    folder = Path(root) if root else shared_data_dir() / "tcga"
    folder = folder / code
    clin_path = folder / "clinical.csv"
    if not clin_path.exists():
        raise CohortError(f"No TCGA cohort at {folder} (clinical.csv missing).", "set PATHVIZ_SHARED_DATA to the folder holding tcga/.", folder)
    raw = pd.read_csv(clin_path)
    cname = name or f"tcga_{code}"
    if "time_months" not in raw.columns and {"OS", "OS.time"} <= set(raw.columns):  # TCGA-CDR only: OS is primary
        raw["time_months"] = pd.to_numeric(raw["OS.time"], errors="coerce") / DAYS_PER_MONTH
        raw["event"] = raw["OS"]
        os_note = f"overall survival from OS.time days / {DAYS_PER_MONTH}"
    else:
        os_note = "overall survival"
    missing = [c for c in ("patient_id", "time_months", "event") if c not in raw.columns]
    if missing:
        raise CohortError(f"Cohort {cname!r}: {clin_path} lacks column(s) {', '.join(missing)}.",
                          "give patient_id, time_months and event (or TCGA-CDR's OS and OS.time).", clin_path)
    keep = [c for c in ("age", "stage", "sex", "grade", "subtype", "site") if c in raw.columns]
    clinical = raw[["patient_id"] + keep].copy()
    clinical["time"] = raw["time_months"]
    ev = raw["event"].copy()
    ev.index = raw["patient_id"].astype(str)
    clinical["event"] = apply_event_map(ev, TCGA_STATUS_MAP if event_map is None else event_map,
                                        f"tcga_{code}", "event").to_numpy()
    endpoints, ep_notes = _tcga_endpoints(raw, clinical, cname, clin_path)
    if "site" in clinical.columns:
        clinical = clinical.rename(columns={"site": "centre"})
        clinical["centre"] = clinical["centre"].astype(str)
    for c in ("stage", "sex", "grade", "subtype"):
        if c in clinical.columns:
            clinical[c] = clinical[c].where(clinical[c].notna(), None)
    omics, scale, note = None, "", ""
    rna = folder / "rna.csv.gz"
    if rna.exists():
        from pathviz.cohort.omics import clip_declared, detect_scale

        omics = pd.read_csv(rna, index_col=0)
        found = detect_scale(omics)
        scale = found.kind
        if found.kind == "z-score":
            omics, n_clipped = clip_declared(omics, TCGA_Z_CLIP)
            note = f"rna.csv.gz: z-scores ({found.evidence}); clipped to +-{TCGA_Z_CLIP:g}: {n_clipped} values"
        else:
            note = f"rna.csv.gz: {found.kind} ({found.evidence}); not clipped"
    with_rna = 0 if omics is None else int(clinical["patient_id"].astype(str).isin(omics.index.astype(str)).sum())
    return Cohort(
        name=cname, clinical=clinical, omics=omics, centre="centre" if "centre" in clinical.columns else None,
        description=f"TCGA-{code.upper()} ({folder}): {os_note}" + "".join(f"; {n}" for n in ep_notes)
                    + (f"; expression ({scale}) for {with_rna} of {len(clinical)} patients" if omics is not None else ""),
        endpoint="overall survival",
        time_unit_note="; ".join([f"OS.time days / {DAYS_PER_MONTH}" if os_note != "overall survival"
                                  else "time_months as shipped", *ep_notes]),
        endpoints=[Endpoint("os", "overall survival", "time", "event"), *endpoints],
        omics_scale=scale, omics_note=note,
    )


# -- user CSV ------------------------------------------------------------------------------------
TIME_UNITS = {"months": 1.0, "days": 1.0 / DAYS_PER_MONTH, "weeks": 7.0 / DAYS_PER_MONTH, "years": 12.0}


def load_csv(
    path: str | Path,
    mapping: dict[str, str],
    name: str | None = None,
    time_unit: str = "months",
    event_map: dict | None = None,
    event_values: tuple | None = None,
    markers: list[str] | None = None,
    treatment: str | None = None,
    centre: str | None = None,
    endpoints: list[Endpoint] | None = None,
    derived_outcomes: list[str] | None = None,
    omics: str | Path | None = None,
) -> Cohort:
    """A user's CSV, with a column-mapping step.

    Args:
        path: CSV file, one row per patient.
        mapping: ``{"patient_id": COL, "time": COL, "event": COL, ...}`` renaming the file's
            columns to schema names; other columns are kept as they are.
        name: cohort name (default: file stem).
        time_unit: unit of the time column (``months``, ``days``, ``weeks``, ``years``).
        event_map: explicit coding of the event column, ``{file value: 1 (event) or 0
            (censored)}``, e.g. ``{"dead": 1, "alive": 0}`` or ``{2: 1, 1: 0}`` (R survival's
            1 = censored / 2 = dead). Every value of the column must be in the mapping. Without
            it (and without ``event_values``) the column must already be exactly 0/1.
        event_values: shorthand for a two-valued column: the values meaning "event observed"
            (e.g. ``("dead",)``); allowed only when the column has exactly one other value
            (then censored). Prefer ``event_map``.
        markers, treatment, centre: schema names of marker / treatment / centre columns.
        endpoints: further endpoints in the file (e.g. ``Endpoint("os", "overall survival",
            "os_months", "os_status")``, after renaming); derived_outcomes: other columns computed
            from outcomes. Both are kept out of every model's features.
        omics: optional CSV of expression (first column the patient id, one column per gene); its
            scale is detected and recorded, never changed.

    Raises:
        CohortError: unreadable file, unmapped required columns, unknown time unit; an event
            column not coded 0/1 without a mapping, or with values the mapping lacks (the message
            names the file column, the values with counts and patient ids; fix: ``event_map``);
            missing, non-finite or negative times (naming patient ids); or any other schema
            violation (see :func:`~pathviz.cohort.schema.validate_clinical`).
    """
    path = Path(path)
    try:
        raw = pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise CohortError(f"{path} is not a readable CSV ({exc}).", "save the table as UTF-8 CSV with a header row.", path) from exc
    missing = [src for src in mapping.values() if src not in raw.columns]
    if missing:
        raise CohortError(
            f"{path}: mapped columns not found: {', '.join(missing)}; the file has {', '.join(map(str, raw.columns[:12]))}.",
            "fix the column mapping.", path,
        )
    df = raw.rename(columns={v: k for k, v in mapping.items()})
    for req in ("patient_id", "time", "event"):
        if req not in df.columns:
            raise CohortError(f"{path}: no column is mapped to {req!r}.", f"map one of the file's columns to {req}.", path)
    if time_unit not in TIME_UNITS:
        raise CohortError(f"Unknown time unit {time_unit!r}.", f"use one of {', '.join(TIME_UNITS)}.")
    # non-numeric times become NaN here and are then reported by name by the validation
    df["time"] = pd.to_numeric(df["time"], errors="coerce") * TIME_UNITS[time_unit]
    cname = name or path.stem
    ev = df["event"].copy()
    ev.index = df["patient_id"].map(lambda v: "<no id>" if pd.isna(v) else str(v))
    src = mapping["event"]
    if event_map is not None and event_values is not None:
        raise CohortError("Give event_map or event_values, not both.", "use event_map, e.g. {'dead': 1, 'alive': 0}.")
    if event_values is not None:
        event_map = _event_values_map(ev, tuple(event_values), cname, src)
    if event_map is not None:
        df["event"] = apply_event_map(ev, event_map, cname, src).to_numpy()
    else:
        check_event_codes(ev, cname, src)  # refuse any coding but 0/1, naming the file's column
    matrix, scale, note = None, "", ""
    if omics is not None:
        from pathviz.cohort.omics import detect_scale

        opath = Path(omics)
        try:
            matrix = pd.read_csv(opath, index_col=0)
        except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise CohortError(f"{opath} is not a readable CSV ({exc}).", "save the expression table as CSV: patient id "
                              "first, one column per gene.", opath) from exc
        matrix.index = matrix.index.astype(str)
        found = detect_scale(matrix)
        scale, note = found.kind, f"{opath.name}: {found.kind} ({found.evidence}); not changed"
    return Cohort(
        name=cname, clinical=df, markers=list(markers or []), treatment=treatment, centre=centre,
        description=f"user CSV {path.name}", time_unit_note=f"{time_unit} -> months",
        endpoints=list(endpoints or []), derived_outcomes=list(derived_outcomes or []),
        omics=matrix, omics_scale=scale, omics_note=note,
    )


def _event_values_map(ev: pd.Series, event_values: tuple, name: str, column: str) -> dict:
    """``event_values`` as an explicit map: those values -> 1, the single other value -> 0.

    Raises:
        CohortError: the column has more than one value besides ``event_values`` (naming them).
    """
    emap = {v: 1 for v in event_values}
    others = ev[[_lookup(v, emap) is None and not pd.isna(v) for v in ev.tolist()]]
    distinct = list(dict.fromkeys(v.strip() if isinstance(v, str) else v for v in others.tolist()))
    if len(distinct) > 1:
        raise CohortError(
            f"Cohort {name!r}: event column {column!r} has several values besides the event values "
            f"{', '.join(map(repr, event_values))}: {value_counts_text(others)}; which ones mean censored is not guessed.",
            "pass an explicit event_map giving every value, e.g. event_map={'dead': 1, 'alive': 0}.",
        )
    if distinct:
        emap[distinct[0]] = 0
    return emap


# -- registry ------------------------------------------------------------------------------------
def _registry() -> dict[str, Callable[[], Cohort]]:
    reg: dict[str, Callable[[], Cohort]] = {name: (lambda n=name: load_survset(n)) for name in SURVSET_COHORTS}
    reg["gbsg2"] = load_gbsg2
    reg["breast_cancer"] = load_sksurv_breast_cancer
    for code in tcga_codes():
        reg[f"tcga_{code}"] = lambda c=code: load_tcga(c)
    return reg


def builtin_cohort_names() -> list[str]:
    """Names of the built-in cohorts (code, not registrations): SurvSet, scikit-survival, every
    shared TCGA folder present, and ``demo``."""
    return ["demo"] + list(_registry())


_REGISTRIES: dict[tuple[str, str], object] = {}


def _registered():
    """The workspace's cohort registry (None where no workspace can be opened). One per
    (``PATHVIZ_HOME``, database URL) and process, on the database this process already has open for
    that URL when there is one: a second SQLite engine on the same file in one process made the job
    process delete the WAL and its shared-memory index at exit while other processes still used
    them (other processes then saw stale data or "disk I/O error"; found by tests/test_jobs.py)."""
    from pathviz.cohort.registry import CohortRegistry
    from pathviz.settings import Settings
    from pathviz.store.workspace import Workspace

    from pathviz.auth.audit import AuditLog
    from pathviz.store.db import Database

    settings = Settings.from_env()
    key = (str(settings.home), settings.database_url)
    if key not in _REGISTRIES:
        db = Database.live(settings.database_url)  # this process's open database of that URL, if any
        if db is None:
            try:
                db = Workspace(settings).db
            except Exception:  # noqa: BLE001 - no workspace here: built-in cohorts only
                return None
        _REGISTRIES[key] = CohortRegistry(db, AuditLog(db))
    return _REGISTRIES[key]


def _demo_dir() -> Path:
    from pathviz.settings import Settings

    return Settings.from_env().home / "cohorts" / "demo"


def available_cohorts() -> list[str]:
    """Names :func:`load_cohort` accepts here (TCGA ones only where ../shared/data is present;
    ``demo`` once the workspace's demo cohort is built)."""
    names = list(_registry())
    reg = _registered()
    extra = [r.name for r in reg.records()] if reg is not None else []
    return (["demo"] if (_demo_dir() / "clinical.csv").exists() else []) + names + extra


_CACHE: dict[str, Cohort] = {}


def load_cohort_endpoint(name: str, endpoint: str | None = None) -> Cohort:
    """:func:`load_cohort` with ``endpoint`` (a key of its ``endpoints``) as the primary one;
    None, ``""``, ``"primary"`` or the primary's own key give the cohort as loaded.

    Raises:
        CohortError: unknown cohort or endpoint (the message lists the available keys).
    """
    cohort = load_cohort(name)
    if endpoint in (None, "", "primary", cohort.endpoints[0].key):
        return cohort
    return cohort.with_endpoint(endpoint)


def endpoint_model_name(name: str, endpoint: str | None) -> str:
    """The registry name of a model of cohort ``name`` trained on ``endpoint``: the cohort's name
    for its primary endpoint as loaded (so older versions keep their name), ``<cohort>.<endpoint>``
    otherwise (e.g. ``coxpasnet/my_stad.dfs``), so promoting a DFS model never replaces the OS one.

    Raises:
        CohortError: unknown cohort.
    """
    if endpoint in (None, "", "primary") or endpoint == load_cohort(name).endpoints[0].key:
        return name
    return f"{name}.{endpoint}"


def load_cohort(name: str) -> Cohort:
    """Load a named cohort (cached per process).

    Raises:
        CohortError: unknown name (the message lists the available ones).
    """
    if name == "demo":
        from pathviz.cohort.demo import load_demo_cohort

        folder = _demo_dir()
        key = f"demo@{folder}@{(folder / 'clinical.csv').stat().st_mtime if (folder / 'clinical.csv').exists() else 0}"
        if key not in _CACHE:
            _CACHE[key] = load_demo_cohort(folder)
        return _CACHE[key]
    if name in _CACHE:
        return _CACHE[name]
    reg = _registry()
    if name not in reg:
        registered = _registered()
        rec = registered.get(name) if registered is not None else None
        if rec is not None:
            from pathviz.cohort.registry import load_registered

            key = f"{name}@{rec.added_at}@{registered.db.url}"
            if key not in _CACHE:
                _CACHE[key] = load_registered(rec)
            return _CACHE[key]
        raise CohortError(f"Unknown cohort {name!r}.", unknown_fix("cohorts", name, available_cohorts(), "pathviz cohort list")
                          + f" Available here: {', '.join(available_cohorts())}.")
    cohort = reg[name]()
    _CACHE[name] = cohort
    return cohort
