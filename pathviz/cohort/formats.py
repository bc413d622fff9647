"""Bring your own cohort: loaders for a cBioPortal study folder and a GDC download.

Each loader returns a validated :class:`~pathviz.cohort.schema.Cohort` (``time`` in months,
``event`` exactly 0/1) and says in ``description`` what was dropped and why; nothing is recoded
silently, nothing is clipped.

* :func:`load_cbioportal`: a study folder as distributed by cBioPortal (datahub / "download
  study"), file formats per https://docs.cbioportal.org/file-formats/.
* :func:`load_gdc`: a GDC Data Portal download of RNA-seq STAR-counts files with its sample sheet
  and the clinical export (``clinical.tsv``).

Patient ids are TCGA patient barcodes where the source has them (``TCGA-XX-XXXX``, 12
characters: longer TCGA barcodes are cut to 12), so slides link by their first 12 characters.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from pathviz.cohort.endpoints import Endpoint
from pathviz.cohort.loaders import DAYS_PER_MONTH
from pathviz.cohort.omics import describe_omics, detect_scale
from pathviz.cohort.schema import Cohort, CohortError, value_counts_text

#: A TCGA barcode's patient part (its first 12 characters), at the start of a sample/slide name.
TCGA_PATIENT = re.compile(r"^(TCGA-[A-Z0-9]{2}-[A-Z0-9]{4})", re.IGNORECASE)


def patient_key(identifier: str) -> str:
    """The patient id of a sample/case id: a TCGA barcode cut to its first 12 characters
    (``TCGA-BR-6452-01A`` -> ``TCGA-BR-6452``); any other id unchanged (spaces stripped)."""
    text = str(identifier).strip()
    return text[:12] if TCGA_PATIENT.match(text) else text


def _tcga_sample_type(sample_id: str) -> int | None:
    """The TCGA sample-type code (characters 14-15 of a sample barcode: 01 primary solid tumour,
    02 recurrent, 06 metastatic, 10-19 normal...), or None for a non-TCGA id."""
    m = re.match(r"^TCGA-[A-Z0-9]{2}-[A-Z0-9]{4}-(\d{2})", str(sample_id).strip(), re.IGNORECASE)
    return int(m.group(1)) if m else None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _pick_samples(samples: pd.DataFrame, what: str) -> tuple[dict[str, str], list[str]]:
    """One sample per patient: primary tumour first, normals never.

    Args:
        samples: columns ``sample`` (id), ``patient``, ``kind`` (``primary``, ``tumour``,
            ``normal``), in preference order within a kind (the first is taken).
        what: words for the notes (e.g. "expression").

    Returns:
        ``({patient: sample}, notes)``; the notes count patients with several samples (and which
        kind was kept) and normal samples left out.
    """
    notes = []
    normal = samples[samples["kind"] == "normal"]
    if len(normal):
        notes.append(f"{_plural(len(normal), 'normal-tissue sample')} not used for {what}")
    tum = samples[samples["kind"] != "normal"].copy()
    tum["rank"] = (tum["kind"] != "primary").astype(int)
    tum = tum.sort_values(["patient", "rank"], kind="stable")
    counts = tum.groupby("patient", sort=False).size()
    chosen = tum.drop_duplicates("patient", keep="first")
    multi = counts[counts > 1].index
    if len(multi):
        kept = chosen.set_index("patient").loc[multi, "kind"]
        n_primary = int((kept == "primary").sum())
        examples = ", ".join(f"{p} -> {chosen.set_index('patient').at[p, 'sample']}" for p in list(multi)[:3])
        notes.append(f"{_plural(len(multi), 'patient')} with several {what} samples: kept one each "
                     f"({n_primary} of them a primary tumour sample; e.g. {examples})")
    return dict(zip(chosen["patient"], chosen["sample"])), notes


def _dedupe_genes(matrix: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Genes (rows) x samples with duplicate gene names: keep each name's highest-variance row.

    Returns:
        ``(matrix with unique index, number of rows dropped)``.
    """
    if not matrix.index.duplicated().any():
        return matrix, 0
    var = matrix.var(axis=1, skipna=True).fillna(-np.inf).to_numpy()
    order = np.argsort(-var, kind="stable")
    ranked = matrix.iloc[order]
    kept = ranked[~ranked.index.duplicated(keep="first")]
    kept = kept.loc[[g for g in dict.fromkeys(matrix.index) if g in kept.index]]  # first-seen order
    return kept, len(matrix) - len(kept)


# == cBioPortal ==================================================================================
#: Values cBioPortal files use for "no value" (https://docs.cbioportal.org/file-formats/#clinical-data).
CBIO_MISSING = ("", "NA", "N/A", "NaN", "nan", "[Not Available]", "[Not Applicable]", "[Unknown]",
                "[Not Evaluated]", "[Discrepancy]", "[Not Reported]", "[Pending]")

#: Endpoints read from the patient file: key, label, column prefix, explicit status map
#: ``{status text: 1 event / 0 censored}`` (matched after stripping spaces, case-insensitively).
#: A status missing from its map is refused, never guessed.
CBIO_ENDPOINTS = (
    ("os", "overall survival", "OS",
     {"1:DECEASED": 1, "0:LIVING": 0, "DECEASED": 1, "LIVING": 0, "1": 1, "0": 0}),
    ("dss", "disease-specific survival", "DSS",
     {"1:DEAD WITH TUMOR": 1, "0:ALIVE OR DEAD TUMOR FREE": 0, "DEAD WITH TUMOR": 1, "ALIVE OR DEAD TUMOR FREE": 0,
      "1": 1, "0": 0}),
    ("dfs", "disease-free survival", "DFS",
     {"1:Recurred/Progressed": 1, "0:DiseaseFree": 0, "Recurred/Progressed": 1, "DiseaseFree": 0, "1": 1, "0": 0}),
    ("pfs", "progression-free survival", "PFS",
     {"1:PROGRESSION": 1, "0:CENSORED": 0, "PROGRESSION": 1, "CENSORED": 0, "1": 1, "0": 0}),
)

#: Patient-file columns renamed to PathViz names.
CBIO_RENAME = {"AGE": "age", "SEX": "sex", "AJCC_PATHOLOGIC_TUMOR_STAGE": "stage"}

#: TCGA patient-file columns recorded after diagnosis (tumour status at last contact, new tumour
#: events, follow-up, death): kept in the table but declared as derived outcomes, so they never
#: become model features even where their names do not read like outcomes.
CBIO_OUTCOME_COLUMNS = ("PERSON_NEOPLASM_CANCER_STATUS", "NEW_TUMOR_EVENT_AFTER_INITIAL_TREATMENT", "DAYS_LAST_FOLLOWUP",
                        "DAYS_TO_DEATH", "VITAL_STATUS", "TUMOR_STATUS", "DAYS_TO_LAST_FOLLOWUP", "CAUSE_OF_DEATH")

#: Expression files, in order of preference, with what each declares its values to be.
CBIO_EXPRESSION = (
    ("data_mrna_seq_v2_rsem_zscores_ref_all_samples.txt", "z-score",
     "mRNA z-scores (RSEM, relative to all samples)"),
    ("data_mrna_seq_v2_rsem.txt", None, "RSEM normalised expression as shipped (not log-transformed)"),
)


def read_cbioportal_table(path: str | Path) -> tuple[pd.DataFrame, dict[str, dict[str, str]]]:
    """A cBioPortal clinical/data file with its ``#`` header lines.

    Clinical files start with 4 lines beginning with ``#`` (display names, descriptions,
    datatypes ``STRING``/``NUMBER``/``BOOLEAN``, priorities), then the column row, then one row
    per patient/sample, tab-separated. Older files with a 5th ``#`` line (attribute types) are read
    too; files without ``#`` lines are read as a plain table. Values in :data:`CBIO_MISSING`
    become missing. ``NUMBER`` columns become floats when every value parses (otherwise they are
    kept as text); all other columns are text.

    Returns:
        ``(table, meta)``: ``meta[column]`` holds ``display``, ``description``, ``datatype``,
        ``priority`` where given.

    Raises:
        CohortError: the file is unreadable, has no column row, or its ``#`` lines do not have one
            field per column (the message names the file).
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig") as fh:
            head = []
            for line in fh:
                if not line.startswith("#"):
                    header = line.rstrip("\r\n").split("\t")
                    break
                head.append(line[1:].rstrip("\r\n").split("\t"))
            else:
                raise CohortError(f"{path}: no column row after the '#' header lines.",
                                  "a cBioPortal file has '#' lines, then the column names, then the data.", path)
        table = pd.read_csv(path, sep="\t", skiprows=len(head), dtype=str, keep_default_na=False, quoting=3)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise CohortError(f"{path} is not a readable tab-separated cBioPortal file ({exc}).",
                          "export it as UTF-8 tab-separated text (https://docs.cbioportal.org/file-formats/).", path) from exc
    bad = [i + 1 for i, row in enumerate(head) if len(row) != len(header)]
    if bad:
        raise CohortError(f"{path}: '#' header line(s) {', '.join(map(str, bad))} have a different number of fields "
                          f"than the {len(header)} columns.",
                          "every '#' line gives one tab-separated field per column.", path)
    types = {"STRING", "NUMBER", "BOOLEAN"}
    dtype_row = next((i for i, row in enumerate(head) if row and all(v.strip().upper() in types for v in row)), None)
    meta: dict[str, dict[str, str]] = {c: {} for c in header}
    if head:
        for c, v in zip(header, head[0]):
            meta[c]["display"] = v
        if len(head) > 1 and dtype_row != 1:
            for c, v in zip(header, head[1]):
                meta[c]["description"] = v
        if dtype_row is not None:
            for c, v in zip(header, head[dtype_row]):
                meta[c]["datatype"] = v.strip().upper()
            if dtype_row + 1 < len(head):
                for c, v in zip(header, head[-1]):
                    meta[c]["priority"] = v
    table = table.apply(lambda col: col.str.strip()).replace(list(CBIO_MISSING), np.nan)
    for c in table.columns:
        if meta.get(c, {}).get("datatype") == "NUMBER":
            num = pd.to_numeric(table[c], errors="coerce")
            if not (num.isna() & table[c].notna()).any():
                table[c] = num
    return table, meta


def _map_status(status: pd.Series, mapping: dict, name: str, column: str, path: Path) -> pd.Series:
    """An endpoint status column as 1/0 (missing stays missing) through an explicit map.

    Raises:
        CohortError: values not in the map, named with their counts and the patients' number.
    """
    lookup = {str(k).strip().lower(): v for k, v in mapping.items()}
    keys = status.map(lambda v: None if pd.isna(v) else str(v).strip().lower())
    codes = keys.map(lambda k: np.nan if k is None else lookup.get(k, "?"))
    unknown = status[codes.astype(str) == "?"]
    if len(unknown):
        raise CohortError(
            f"Cohort {name!r}: {path.name} column {column!r} has status values PathViz does not know: "
            f"{value_counts_text(unknown)} ({_plural(len(unknown), 'patient')}, e.g. "
            f"{', '.join(map(str, unknown.index[:5]))}). Known values: {', '.join(str(k) for k in mapping if ':' in str(k))}.",
            "correct those values in the file (e.g. '1:DECEASED' / '0:LIVING'), remove those patients, or declare "
            'their coding in a --mapping JSON file ({"status_map": {"VALUE": 1}}); what an unknown status means is '
            "never guessed.", path)
    return codes.astype(float)


def _months(values: pd.Series, name: str, column: str, path: Path) -> pd.Series:
    num = pd.to_numeric(values, errors="coerce")
    bad = values[num.isna() & values.notna()]
    if len(bad):
        raise CohortError(f"Cohort {name!r}: {path.name} column {column!r} has non-numeric values: "
                          f"{value_counts_text(bad)} (e.g. patients {', '.join(map(str, bad.index[:5]))}).",
                          "give months as numbers; leave unknown values empty or NA.", path)
    return num.astype(float)


def _comment_lines(path: Path) -> int:
    """How many leading ``#`` lines a cBioPortal / MAF file has (cBioPortal metadata, MAF ``#version``)."""
    n = 0
    with open(path, encoding="utf-8-sig") as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            n += 1
    return n


def _read_cbio_expression(path: Path, name: str) -> tuple[pd.DataFrame, list[str]]:
    """A cBioPortal expression file as samples x genes (``Hugo_Symbol`` rows, one column per
    sample; ``Entrez_Gene_Id`` dropped); rows without a symbol dropped, duplicate symbols reduced
    to their highest-variance row. Returns ``(matrix, notes)``."""
    try:
        n_head = _comment_lines(path)
        table = pd.read_csv(path, sep="\t", skiprows=n_head, dtype={"Hugo_Symbol": str, "Entrez_Gene_Id": str},
                            na_values=list(CBIO_MISSING), keep_default_na=False, quoting=3)
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise CohortError(f"{path} is not a readable tab-separated cBioPortal expression file ({exc}).",
                          "use the study's file as distributed (https://docs.cbioportal.org/file-formats/).", path) from exc
    table.columns = [str(c).strip() for c in table.columns]
    if "Hugo_Symbol" not in table.columns:
        raise CohortError(f"Cohort {name!r}: {path.name} has no Hugo_Symbol column (columns: "
                          f"{', '.join(map(str, table.columns[:5]))}...).",
                          "cBioPortal expression files have Hugo_Symbol, optionally Entrez_Gene_Id, then one column "
                          "per sample.", path)
    notes = []
    no_symbol = int(table["Hugo_Symbol"].isna().sum())
    table = table[table["Hugo_Symbol"].notna()].copy()
    table["Hugo_Symbol"] = table["Hugo_Symbol"].str.strip()
    if no_symbol:
        notes.append(f"{_plural(no_symbol, 'row')} without a Hugo symbol dropped")
    mat = table.drop(columns=[c for c in ("Entrez_Gene_Id", "Cytoband") if c in table.columns]).set_index("Hugo_Symbol")
    num = mat if all(pd.api.types.is_numeric_dtype(t) for t in mat.dtypes) else mat.apply(pd.to_numeric, errors="coerce")
    bad = int((num.isna() & mat.notna()).to_numpy().sum())
    if bad:
        raise CohortError(f"Cohort {name!r}: {path.name} has {bad} non-numeric expression values.",
                          "give numbers; leave missing values empty or NA.", path)
    num, n_dup = _dedupe_genes(num)
    if n_dup:
        notes.append(f"{_plural(n_dup, 'duplicate Hugo symbol row')} dropped (highest-variance row kept)")
    return num.T, notes


def _sample_ids_in_header(path: Path, skip: tuple[str, ...]) -> list[str]:
    """Sample columns of a genes x samples file (header row after any ``#`` lines)."""
    with open(path, encoding="utf-8-sig") as fh:
        for line in fh:
            if not line.startswith("#"):
                return [c for c in line.rstrip("\r\n").split("\t") if c and c not in skip]
    return []


def _mutation_samples(path: Path) -> list[str]:
    """``Tumor_Sample_Barcode`` values of a MAF (``data_mutations.txt``; ``#version`` lines skipped)."""
    n_head = _comment_lines(path)
    try:
        col = pd.read_csv(path, sep="\t", skiprows=n_head, usecols=["Tumor_Sample_Barcode"], dtype=str, quoting=3)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise CohortError(f"{path} is not a readable MAF with a Tumor_Sample_Barcode column ({exc}).",
                          "use the study's data_mutations.txt as distributed, or remove it.", path) from exc
    return col["Tumor_Sample_Barcode"].dropna().str.strip().unique().tolist()


def _check_status_map(status_map: dict | None, cname: str) -> dict:
    """A user's extra status coding ``{value: 0 or 1}`` (e.g. ``{"DECEASED": 1, "LIVING": 0}``).

    Raises:
        CohortError: a code other than 0/1.
    """
    bad = {k: v for k, v in (status_map or {}).items() if v not in (0, 1)}
    if bad:
        raise CohortError(f"Cohort {cname!r}: status_map codes must be 0 or 1, not {bad}.",
                          'write e.g. {"status_map": {"DECEASED": 1, "LIVING": 0}} in the --mapping file.')
    return dict(status_map or {})


def load_cbioportal(folder: str | Path, name: str | None = None, status_map: dict | None = None) -> Cohort:
    """A cBioPortal study folder (https://docs.cbioportal.org/file-formats/).

    Files read:

    * ``data_clinical_patient.txt`` (required): ``PATIENT_ID``; ``OS_MONTHS``/``OS_STATUS``
      (required: the primary endpoint, months as shipped), ``DSS_*``, ``DFS_*``, ``PFS_*`` when
      present (further endpoints ``dss``/``dfs``/``pfs``, columns ``<key>_months``/``<key>_event``;
      a patient with only one of a pair has that endpoint set missing, counted). Statuses are
      mapped explicitly (:data:`CBIO_ENDPOINTS`: ``"1:DECEASED"`` -> 1, ``"0:LIVING"`` -> 0,
      ``"1:Recurred/Progressed"``, ``"1:PROGRESSION"``, ``"0:CENSORED"``, ``"1:DEAD WITH
      TUMOR"``, ``"0:ALIVE OR DEAD TUMOR FREE"``...). ``AGE`` -> ``age`` (years), ``SEX`` ->
      ``sex``, ``AJCC_PATHOLOGIC_TUMOR_STAGE`` -> ``stage``; other columns kept as they are
      (post-diagnosis ones of :data:`CBIO_OUTCOME_COLUMNS` declared as derived outcomes, ``*_ID``
      columns as ids). Patients without OS months or status are dropped and counted.
    * ``data_clinical_sample.txt`` (required): ``SAMPLE_ID`` -> ``PATIENT_ID``.
    * expression: ``data_mrna_seq_v2_rsem_zscores_ref_all_samples.txt`` if present, else
      ``data_mrna_seq_v2_rsem.txt`` (``Hugo_Symbol``, ``Entrez_Gene_Id``, one column per
      SAMPLE_ID): duplicate symbols keep their highest-variance row; samples map to patients
      through the sample file; a patient with several samples gets a primary tumour sample
      (TCGA barcode type 01) where there is one, normal-tissue samples (types 10-19) are never
      used; the sample kept is the ``sample_id`` column. The scale is detected
      (:func:`~pathviz.cohort.omics.detect_scale`), recorded in ``omics_scale``/``omics_note``,
      and the values are never clipped.
    * ``data_mutations.txt`` / ``data_cna.txt``: only which patients have them (description).

    Args:
        folder: the study folder.
        name: cohort name (default: the folder's name).
        status_map: extra status codings ``{value: 0 or 1}`` for every endpoint's status column
            (case-insensitive), over the shipped ones; e.g. ``{"DECEASED": 1, "LIVING": 0}``.

    Returns:
        A validated Cohort (``time`` months, ``event`` 0/1, endpoints os[, dss, dfs, pfs]).

    Raises:
        CohortError: the folder or a required file/column is missing (the message names it);
            a status value outside the map (named with its count); non-numeric months; a sample
            of the expression/sample file with an unknown patient; any schema violation.
    """
    folder = Path(folder)
    cname = name or folder.name
    if not folder.is_dir():
        raise CohortError(f"No cBioPortal study folder at {folder}.", "give the folder holding data_clinical_patient.txt.",
                          folder)
    present = sorted(p.name for p in folder.iterdir())
    for req in ("data_clinical_patient.txt", "data_clinical_sample.txt"):
        if not (folder / req).is_file():
            raise CohortError(
                f"Cohort {cname!r}: {req} is missing in {folder} (found: {', '.join(present[:12]) or 'nothing'}).",
                "a cBioPortal study folder needs data_clinical_patient.txt and data_clinical_sample.txt "
                "(https://docs.cbioportal.org/file-formats/#clinical-data).", folder / req)
    ppath = folder / "data_clinical_patient.txt"
    pat, _ = read_cbioportal_table(ppath)
    need = [c for c in ("PATIENT_ID", "OS_MONTHS", "OS_STATUS") if c not in pat.columns]
    if need:
        raise CohortError(f"Cohort {cname!r}: {ppath.name} lacks {', '.join(need)} (columns: "
                          f"{', '.join(map(str, pat.columns[:15]))}).",
                          "overall survival (OS_MONTHS, OS_STATUS) is the primary endpoint; use load_csv with a "
                          "column mapping for another layout.", ppath)
    pat = pat[pat["PATIENT_ID"].notna()].copy()
    pat.index = pd.Index([patient_key(p) for p in pat["PATIENT_ID"]], name="patient_id")
    notes: list[str] = []

    clinical = pd.DataFrame(index=pat.index)
    endpoints: list[Endpoint] = []
    consumed = {"PATIENT_ID"}
    extra = _check_status_map(status_map, cname)
    for key, label, prefix, mapping in CBIO_ENDPOINTS:
        mcol, scol = f"{prefix}_MONTHS", f"{prefix}_STATUS"
        if mcol not in pat.columns or scol not in pat.columns:
            if (mcol in pat.columns) != (scol in pat.columns):
                notes.append(f"{mcol if mcol in pat.columns else scol} ignored (its pair is missing)")
            continue
        consumed |= {mcol, scol}
        months = _months(pat[mcol], cname, mcol, ppath)
        status = _map_status(pat[scol], {**mapping, **extra}, cname, scol, ppath)
        if key == "os":
            clinical["time"], clinical["event"] = months, status
        else:
            half = int((months.isna() != status.isna()).sum())
            if half:
                notes.append(f"{key}: {_plural(half, 'patient')} with only one of {mcol}/{scol}: {key} set missing")
            both = months.notna() & status.notna()
            clinical[f"{key}_months"] = months.where(both)
            clinical[f"{key}_event"] = status.where(both)
            endpoints.append(Endpoint(key, label, f"{key}_months", f"{key}_event"))
    no_os = clinical["time"].isna() | clinical["event"].isna()
    n_no_os = int(no_os.sum())
    if n_no_os:
        notes.insert(0, f"{_plural(n_no_os, 'patient')} without overall survival (OS_MONTHS/OS_STATUS missing) dropped")
    for src, dst in CBIO_RENAME.items():
        if src in pat.columns:
            clinical[dst] = pat[src]
            consumed.add(src)
    others = [c for c in pat.columns if c not in consumed and c not in clinical.columns]
    for c in others:
        clinical[c] = pat[c]
    clinical = clinical[~no_os]
    if clinical.empty:
        raise CohortError(f"Cohort {cname!r}: no patient in {ppath.name} has overall survival.",
                          "fill OS_MONTHS and OS_STATUS.", ppath)
    derived = [c for c in CBIO_OUTCOME_COLUMNS if c in clinical.columns]
    ids = [c for c in others if re.search(r"(^|_)(ID|UUID)$", str(c), re.IGNORECASE)]

    # samples -> patients
    spath = folder / "data_clinical_sample.txt"
    samp, _ = read_cbioportal_table(spath)
    need = [c for c in ("SAMPLE_ID", "PATIENT_ID") if c not in samp.columns]
    if need:
        raise CohortError(f"Cohort {cname!r}: {spath.name} lacks {', '.join(need)}.",
                          "the sample file maps SAMPLE_ID to PATIENT_ID.", spath)
    samp = samp[samp["SAMPLE_ID"].notna() & samp["PATIENT_ID"].notna()]
    sample_patient = {str(s).strip(): patient_key(p) for s, p in zip(samp["SAMPLE_ID"], samp["PATIENT_ID"])}
    sample_text = dict(zip(samp["SAMPLE_ID"].astype(str).str.strip(),
                           samp["SAMPLE_TYPE"] if "SAMPLE_TYPE" in samp.columns else [None] * len(samp)))

    def kind(sample: str) -> str:
        code = _tcga_sample_type(sample)
        if code is not None:
            return "primary" if code == 1 else "normal" if 10 <= code <= 19 else "tumour"
        text = str(sample_text.get(sample) or "").lower()
        return "normal" if "normal" in text else "primary" if "primary" in text else "tumour"

    # expression
    omics, scale, omics_note = None, "", ""
    expr = next(((folder / f, declared, words) for f, declared, words in CBIO_EXPRESSION if (folder / f).is_file()), None)
    if expr is not None:
        epath, declared, words = expr
        mat, enotes = _read_cbio_expression(epath, cname)
        mat.index = mat.index.map(lambda s: str(s).strip())
        unknown = [s for s in mat.index if s not in sample_patient]
        if unknown:
            raise CohortError(f"Cohort {cname!r}: {_plural(len(unknown), 'sample')} of {epath.name} "
                              f"{'is' if len(unknown) == 1 else 'are'} not in {spath.name}, e.g. "
                              f"{', '.join(unknown[:5])}.",
                              "every expression column must be a SAMPLE_ID of data_clinical_sample.txt.", epath)
        cands = pd.DataFrame({"sample": list(mat.index), "patient": [sample_patient[s] for s in mat.index],
                              "kind": [kind(s) for s in mat.index]})
        chosen, snotes = _pick_samples(cands, "expression")
        no_clin = [p for p in chosen if p not in clinical.index]
        if no_clin:
            snotes.append(f"{_plural(len(no_clin), 'patient')} with expression but no usable clinical row left out")
        keep = {p: s for p, s in chosen.items() if p in clinical.index}
        omics = mat.loc[list(keep.values())]
        omics.index = pd.Index(list(keep.keys()), name="patient_id")
        clinical["sample_id"] = pd.Series(keep)
        ids.append("sample_id")
        found = detect_scale(omics)
        scale = found.kind
        omics_note = "; ".join([f"{words} from {epath.name}", describe_omics(omics, found, declared), *enotes, *snotes,
                                "not clipped"])
        notes.append(f"expression ({scale}) for {len(keep)} of {len(clinical)} patients")
    # mutations / CNA: which patients have them (no modelling)
    for fname, what, reader in (("data_mutations.txt", "mutations", _mutation_samples),
                                ("data_cna.txt", "copy-number (CNA)",
                                 lambda p: _sample_ids_in_header(p, ("Hugo_Symbol", "Entrez_Gene_Id", "Cytoband")))):
        path = folder / fname
        if path.is_file():
            pats = {sample_patient.get(s, patient_key(s)) for s in reader(path)}
            notes.append(f"{what} ({fname}) for {len(pats & set(clinical.index))} of {len(clinical)} patients")
    description = f"cBioPortal study {folder.name}: {len(clinical)} patients, overall survival (OS_MONTHS/OS_STATUS)"
    if endpoints:
        description += f"; further endpoints {', '.join(e.key for e in endpoints)}"
    if notes:
        description += "; " + "; ".join(notes)
    clinical = clinical.reset_index()
    return Cohort(
        name=cname, clinical=clinical, omics=omics, description=description, endpoint="overall survival",
        time_unit_note="months as shipped by cBioPortal (OS_MONTHS, DSS_MONTHS...)",
        endpoints=[Endpoint("os", "overall survival", "time", "event"), *endpoints],
        derived_outcomes=derived, id_columns=ids, omics_scale=scale, omics_note=omics_note,
    )


# == GDC ===========================================================================================
#: GDC's placeholder for "no value" in its TSV exports, plus empty cells.
GDC_MISSING = ("'--", "--", "")
#: vital_status values meaning "unknown": the patient is dropped (counted), not guessed.
GDC_UNKNOWN_VITAL = ("not reported", "unknown", "not reported/unknown")
STAR_SUFFIX = ".rna_seq.augmented_star_gene_counts.tsv"
#: clinical.tsv columns kept as covariates (renamed) when present and not all missing.
GDC_COVARIATES = {"age_at_index": "age", "gender": "sex", "ajcc_pathologic_stage": "stage", "race": "race",
                  "ethnicity": "ethnicity", "primary_diagnosis": "primary_diagnosis", "tumor_grade": "grade",
                  "ajcc_pathologic_t": "ajcc_pathologic_t", "ajcc_pathologic_n": "ajcc_pathologic_n",
                  "ajcc_pathologic_m": "ajcc_pathologic_m", "site_of_resection_or_biopsy": "site_of_resection_or_biopsy",
                  "tissue_or_organ_of_origin": "tissue_or_organ_of_origin"}
_GDC_SURVIVAL = ("vital_status", "days_to_death", "days_to_last_follow_up")


def _read_gdc_tsv(path: Path, what: str) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=3)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise CohortError(f"{path} is not a readable tab-separated {what} ({exc}).",
                          "use the file as downloaded from the GDC portal.", path) from exc
    return table.apply(lambda col: col.str.strip()).replace(list(GDC_MISSING), np.nan)


def _read_star(path: Path) -> tuple[pd.DataFrame, str]:
    """A GDC STAR-counts file: protein-coding rows (``N_*`` summary rows dropped) with
    ``gene_id``, ``gene_name``, ``tpm_unstranded``; plus the ``# gene-model`` comment."""
    with open(path, encoding="utf-8") as fh:
        comments = []
        for line in fh:
            if not line.startswith("#"):
                break
            comments.append(line[1:].strip())
    table = pd.read_csv(path, sep="\t", skiprows=len(comments), dtype={"gene_id": str, "gene_name": str, "gene_type": str})
    need = [c for c in ("gene_id", "gene_name", "gene_type", "tpm_unstranded") if c not in table.columns]
    if need:
        raise CohortError(f"{path.name} lacks {', '.join(need)} (not a GDC augmented STAR gene counts file?).",
                          "use the *.rna_seq.augmented_star_gene_counts.tsv files of the GDC download.", path)
    table = table[~table["gene_id"].astype(str).str.startswith("N_")]
    table = table[table["gene_type"] == "protein_coding"]
    tpm = pd.to_numeric(table["tpm_unstranded"], errors="coerce")
    if tpm.isna().any() or (tpm < 0).any():
        raise CohortError(f"{path.name}: tpm_unstranded has missing, non-numeric or negative values.",
                          "re-download the file from the GDC portal.", path)
    out = pd.DataFrame({"gene_id": table["gene_id"].to_numpy(), "gene_name": table["gene_name"].to_numpy(),
                        "tpm": tpm.to_numpy(float)})
    return out, "; ".join(c for c in comments if c)


def _distinct(values: pd.Series) -> list:
    return list(dict.fromkeys(v for v in values.tolist() if not pd.isna(v)))


def _per_case(raw: pd.DataFrame, col: str, index: pd.Index) -> pd.Series:
    """The distinct non-missing values of ``col`` for each patient (a list per row of ``index``)."""
    lists = {p: _distinct(g) for p, g in raw.groupby("patient_id", sort=False)[col]}
    return pd.Series([lists.get(p, []) for p in index], index=index, dtype=object)


def read_gdc_clinical_json(path: Path) -> pd.DataFrame:
    """A GDC clinical JSON export (a list of cases, each with ``submitter_id``, ``case_id``, a
    ``demographic`` object and a ``diagnoses`` list) as the rows of the TSV export: one row per
    case and diagnosis, columns ``case_submitter_id``, ``case_id`` and the demographic and
    diagnosis fields by their GDC names (strings; missing as NaN).

    Raises:
        CohortError: not JSON, or not a list of case objects.
    """
    import json

    try:
        cases = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CohortError(f"{path} is not a readable GDC clinical JSON export ({exc}).",
                          "use the file as downloaded from the GDC portal (Clinical > JSON).", path) from exc
    if not isinstance(cases, list) or not all(isinstance(c, dict) for c in cases):
        raise CohortError(f"{path} is not a GDC clinical JSON export (expected a list of case objects).",
                          "use the file as downloaded from the GDC portal (Clinical > JSON).", path)
    rows = []
    for case in cases:
        base = {"case_submitter_id": case.get("submitter_id"), "case_id": case.get("case_id")}
        demo = case.get("demographic") or {}
        base.update({k: v for k, v in demo.items() if not isinstance(v, (dict, list))})
        for dx in case.get("diagnoses") or [{}]:
            rows.append({**base, **{k: v for k, v in dx.items() if not isinstance(v, (dict, list))
                                    and k not in base}})
    table = pd.DataFrame(rows)
    table = table.apply(lambda col: col.map(lambda v: np.nan if v is None or (isinstance(v, float) and np.isnan(v))
                                            else str(v).strip()))
    return table.replace(list(GDC_MISSING), np.nan)


def _gdc_clinical(path: Path, cname: str, status_map: dict | None = None) -> tuple[pd.DataFrame, list[str], list[str]]:
    """``clinical.tsv`` (or the JSON export, :func:`read_gdc_clinical_json`) collapsed to one row
    per case with ``time`` (months), ``event`` and the covariates. Returns ``(table indexed by
    patient id, notes, id columns)``."""
    raw = read_gdc_clinical_json(path) if path.suffix.lower() == ".json" else _read_gdc_tsv(path, "GDC clinical export")
    # newer exports prefix columns with their entity ("cases.submitter_id", "demographic.vital_status")
    if "case_submitter_id" not in raw.columns and "cases.submitter_id" in raw.columns:
        raw = raw.rename(columns={"cases.submitter_id": "case_submitter_id", "cases.case_id": "case_id"})
    wanted = {"case_id", "case_submitter_id", "project_id", *_GDC_SURVIVAL, *GDC_COVARIATES}
    for c in list(raw.columns):
        short = str(c).rsplit(".", 1)[-1]
        if short != c and short in wanted and short not in raw.columns:
            raw = raw.rename(columns={c: short})
    need = [c for c in ("case_submitter_id", *_GDC_SURVIVAL) if c not in raw.columns]
    if need:
        raise CohortError(f"Cohort {cname!r}: {path.name} lacks {', '.join(need)} (columns: "
                          f"{', '.join(map(str, raw.columns[:12]))}...).",
                          "use the clinical.tsv of the GDC clinical download (TSV).", path)
    raw = raw[raw["case_submitter_id"].notna()].copy()
    raw["patient_id"] = raw["case_submitter_id"].map(patient_key)
    notes: list[str] = []
    for col in ("days_to_death", "days_to_last_follow_up"):
        num = pd.to_numeric(raw[col], errors="coerce")
        bad = raw.loc[num.isna() & raw[col].notna(), col]
        if len(bad):
            raise CohortError(f"Cohort {cname!r}: {path.name} column {col!r} has non-numeric values: "
                              f"{value_counts_text(bad)}.", "give days as numbers ('--' for missing).", path)
        raw[col] = num
    vital = raw["vital_status"].map(lambda v: np.nan if pd.isna(v) or str(v).lower() in GDC_UNKNOWN_VITAL else str(v))
    known = {"dead": 1, "alive": 0, **{str(k).strip().lower(): v for k, v in _check_status_map(status_map, cname).items()}}
    codes = vital.map(lambda v: np.nan if pd.isna(v) else known.get(v.lower(), "?"))
    odd = raw.loc[codes.astype(str) == "?", "vital_status"]
    if len(odd):
        raise CohortError(f"Cohort {cname!r}: {path.name} column 'vital_status' has values PathViz does not know: "
                          f"{value_counts_text(odd)}. Known: Dead, Alive (Not Reported / Unknown / '-- = missing).",
                          "correct those values, remove those cases, or declare their coding in a --mapping JSON file "
                          '({"status_map": {"VALUE": 1}}); an unknown status is never guessed.', path)
    raw["event"] = codes.astype(float)
    index = pd.Index(raw["patient_id"].unique(), name="patient_id")
    if len(raw) > len(index):
        notes.append(f"{len(raw)} clinical.tsv rows collapsed to {len(index)} cases (one row per treatment)")
    table = pd.DataFrame(index=index)
    conflict = pd.Series(False, index=index)
    for col in ("event", "days_to_death"):
        vals = _per_case(raw, col, index)
        conflict |= vals.map(len) > 1
        table[col] = vals.map(lambda v: v[0] if len(v) == 1 else np.nan).astype(float)
    fu = _per_case(raw, "days_to_last_follow_up", index)
    n_fu = int((fu.map(len) > 1).sum())
    if n_fu:
        notes.append(f"{_plural(n_fu, 'case')} with several days_to_last_follow_up values: the latest used")
    table["days_to_last_follow_up"] = fu.map(lambda v: max(v) if v else np.nan).astype(float)
    dead = table["event"] == 1
    days = table["days_to_death"].where(dead, table["days_to_last_follow_up"])
    table["time"] = days / DAYS_PER_MONTH
    drops = {
        "conflicting vital_status or days_to_death across rows": conflict,
        "no vital_status": ~conflict & table["event"].isna(),
        "Dead without days_to_death": ~conflict & dead & table["days_to_death"].isna(),
        "Alive without days_to_last_follow_up": ~conflict & (table["event"] == 0) & table["days_to_last_follow_up"].isna(),
    }
    drop = pd.Series(False, index=table.index)
    parts = []
    for why, mask in drops.items():
        if mask.any():
            parts.append(f"{int(mask.sum())} {why}")
        drop |= mask
    if drop.any():
        notes.append(f"{_plural(int(drop.sum()), 'case')} without usable overall survival dropped ({', '.join(parts)})")
    out = table.loc[~drop, ["time", "event"]].copy()
    ids = []
    if "case_id" in raw.columns:
        out["case_id"] = _per_case(raw, "case_id", out.index).map(lambda v: ";".join(map(str, v)))
        ids.append("case_id")
    for src, dst in GDC_COVARIATES.items():
        if src not in raw.columns or raw[src].isna().all():
            continue
        vals = _per_case(raw, src, out.index)
        n_conf = int((vals.map(len) > 1).sum())
        if n_conf:
            notes.append(f"{src}: {_plural(n_conf, 'case')} with several values, kept '|'-joined")
        col = vals.map(lambda v: np.nan if not v else v[0] if len(v) == 1 else "|".join(map(str, v)))
        out[dst] = pd.to_numeric(col, errors="coerce") if dst == "age" and n_conf == 0 else col
    return out, notes, ids


def load_gdc(folder: str | Path, name: str | None = None, status_map: dict | None = None) -> Cohort:
    """A GDC Data Portal download of RNA-seq gene expression with its sample sheet and clinical data.

    Files read (GDC data model: https://docs.gdc.cancer.gov/Data/Bioinformatics_Pipelines/Expression_mRNA_Pipeline/):

    * ``gdc_sample_sheet*.tsv`` (required, several are concatenated): ``File ID``, ``File Name``,
      ``Case ID`` (the case's submitter id, e.g. ``TCGA-BR-6452``), ``Sample ID``, ``Sample Type``.
    * STAR-counts files ``*.rna_seq.augmented_star_gene_counts.tsv`` anywhere under ``folder``
      (usually ``<File ID>/<File Name>``): a ``# gene-model`` comment line, then ``gene_id``,
      ``gene_name``, ``gene_type``, ``unstranded``, ``stranded_first``, ``stranded_second``,
      ``tpm_unstranded``, ``fpkm_unstranded``, ``fpkm_uq_unstranded``; the ``N_unmapped``,
      ``N_multimapping``, ``N_noFeature``, ``N_ambiguous`` rows are skipped. The matrix is
      log2(``tpm_unstranded`` + 1) of protein-coding genes by ``gene_name`` (a name on several
      rows, e.g. PAR_Y copies: the highest-variance row kept, counted); ``omics_scale`` is
      ``"log2 expression"``, never clipped. One sample per case: a ``Primary Tumor`` (``Primary
      ...``) sample first, ``... Normal`` samples never.
    * ``clinical.tsv`` (required, or the JSON export ``clinical*.json`` read by
      :func:`read_gdc_clinical_json` into the same rows; GDC clinical export, ``'--`` = missing;
      columns with an entity prefix such as ``demographic.vital_status`` are read too): ``case_submitter_id``,
      ``vital_status`` (Dead -> event 1, Alive -> 0; Not Reported/Unknown -> dropped, counted;
      anything else refused), ``days_to_death``, ``days_to_last_follow_up``; OS time =
      ``days_to_death`` if Dead else ``days_to_last_follow_up``, in months = days / 30.4375. Rows
      of one case (one per treatment) are collapsed: cases whose vital status or days to death
      conflict are dropped, several follow-up values take the latest. Covariates
      (:data:`GDC_COVARIATES`): ``age_at_index`` -> ``age`` (years), ``gender`` -> ``sex``,
      ``ajcc_pathologic_stage`` -> ``stage``, and a few others when present.

    Args:
        folder: the download folder.
        name: cohort name (default: the folder's name).
        status_map: extra ``vital_status`` codings ``{value: 0 or 1}`` (case-insensitive) over
            Dead -> 1 / Alive -> 0.

    Raises:
        CohortError: no sample sheet, no clinical.tsv or no STAR file (the message names the
            folder and what it holds); required columns missing; unknown vital status values;
            non-numeric days; any schema violation (e.g. negative days).
    """
    folder = Path(folder)
    cname = name or folder.name
    if not folder.is_dir():
        raise CohortError(f"No GDC download folder at {folder}.", "give the folder holding the sample sheet.", folder)
    present = ", ".join(sorted(p.name for p in folder.iterdir())[:12]) or "nothing"
    clin_path = folder / "clinical.tsv"
    if not clin_path.is_file():
        found = sorted(folder.rglob("clinical.tsv")) or sorted(folder.rglob("clinical*.json"))
        if not found:
            raise CohortError(f"Cohort {cname!r}: clinical.tsv (or clinical*.json) is missing in {folder} (found: "
                              f"{present}).", "download the cases' clinical data from the GDC portal (Clinical > TSV "
                              "or JSON) and put it in the folder.", clin_path)
        clin_path = found[0]
    sheets = sorted(folder.glob("gdc_sample_sheet*.tsv"))
    if not sheets:
        raise CohortError(f"Cohort {cname!r}: no gdc_sample_sheet*.tsv in {folder} (found: {present}).",
                          "download the sample sheet from the GDC cart with the files.", folder)
    sheet = pd.concat([_read_gdc_tsv(p, "GDC sample sheet") for p in sheets], ignore_index=True)
    need = [c for c in ("File ID", "File Name", "Case ID", "Sample ID", "Sample Type") if c not in sheet.columns]
    if need:
        raise CohortError(f"Cohort {cname!r}: the sample sheet lacks {', '.join(need)}.",
                          "use the sample sheet as downloaded from the GDC portal.", sheets[0])
    sheet = sheet.drop_duplicates("File ID")
    sheet = sheet[sheet["File Name"].fillna("").str.endswith(STAR_SUFFIX)]
    by_name: dict[str, Path] = {}
    for p in folder.rglob(f"*{STAR_SUFFIX}"):
        by_name.setdefault(p.name, p)
    notes: list[str] = []
    clinical, cnotes, ids = _gdc_clinical(clin_path, cname, status_map)
    notes += cnotes

    rows, n_missing, n_multi = [], 0, 0
    for _, row in sheet.iterrows():
        path = folder / str(row["File ID"]) / str(row["File Name"])
        path = path if path.is_file() else by_name.get(str(row["File Name"]))
        if path is None:
            n_missing += 1
            continue
        cases = {patient_key(c) for c in str(row["Case ID"]).split(",") if c.strip()}
        if len(cases) != 1:
            n_multi += 1
            continue
        stype = str(row["Sample Type"]).lower()
        sid = str(row["Sample ID"]).split(",")[0].strip()
        rows.append({"sample": f"{sid} (file {row['File ID']})", "patient": cases.pop(), "sid": sid, "path": path,
                     "kind": "normal" if "normal" in stype else "primary" if stype.startswith("primary") else "tumour"})
    if n_missing:
        notes.append(f"{_plural(n_missing, 'STAR file')} of the sample sheet not found in the folder")
    if n_multi:
        notes.append(f"{_plural(n_multi, 'file')} linked to several cases left out")
    if not rows:
        raise CohortError(f"Cohort {cname!r}: no STAR-counts file (*{STAR_SUFFIX}) of the sample sheet was found "
                          f"under {folder} (found: {present}).",
                          "extract the GDC download (one folder per File ID) next to the sample sheet.", folder)
    cands = pd.DataFrame(rows).sort_values(["patient", "sid", "sample"], kind="stable").set_index("sample", drop=False)
    chosen, snotes = _pick_samples(cands[["sample", "patient", "kind"]], "expression")
    no_clin = [p for p in chosen if p not in clinical.index]
    keep = {p: smp for p, smp in chosen.items() if p in clinical.index}
    if no_clin:
        snotes.append(f"{_plural(len(no_clin), 'case')} with expression but no usable clinical row left out")
    omics, scale, omics_note = None, "", ""
    if keep:
        columns, names, models = {}, {}, set()
        for p, smp in keep.items():
            star, model = _read_star(cands.at[smp, "path"])
            models.add(model)
            columns[p] = star.set_index("gene_id")["tpm"]
            names.update(zip(star["gene_id"], star["gene_name"]))
        tpm = pd.DataFrame(columns)
        if tpm.isna().any().any():
            raise CohortError(f"Cohort {cname!r}: the STAR files do not list the same genes (gene models: "
                              f"{'; '.join(sorted(models)) or 'not stated'}).", "download files of one GDC data release.",
                              folder)
        log2 = np.log2(tpm + 1.0)
        log2.index = [names[g] if isinstance(names.get(g), str) and names[g] else g for g in log2.index]
        log2, n_dup = _dedupe_genes(log2)
        omics = log2.T
        omics.index.name = "patient_id"
        found = detect_scale(omics)
        scale = "log2 expression"  # by construction; the detection is recorded in the note
        parts = [f"log2(TPM + 1) of tpm_unstranded from {_plural(len(keep), 'GDC STAR-counts file')}"
                 + (f" ({'; '.join(sorted(m for m in models if m))})" if any(models) else "")
                 + ", protein_coding genes by gene_name",
                 describe_omics(omics, found, "log2 expression")]
        if n_dup:
            parts.append(f"{_plural(n_dup, 'duplicate gene_name row')} dropped (highest-variance row kept)")
        omics_note = "; ".join(parts + snotes + ["not clipped"])
        clinical["sample_id"] = pd.Series({p: cands.at[smp, "sid"] for p, smp in keep.items()})
        ids.append("sample_id")
    notes.append(f"expression (log2 TPM + 1) for {len(keep)} of {len(clinical)} patients")
    projects = _distinct(sheet["Project ID"]) if "Project ID" in sheet.columns else []
    description = (f"GDC download {folder.name}{' (' + ', '.join(map(str, projects)) + ')' if projects else ''}: "
                   f"{len(clinical)} patients, overall survival from clinical.tsv (days_to_death if Dead, else "
                   f"days_to_last_follow_up; months = days / {DAYS_PER_MONTH})")
    description += "; " + "; ".join(notes)
    return Cohort(
        name=cname, clinical=clinical.reset_index(), omics=omics, description=description, endpoint="overall survival",
        time_unit_note=f"days / {DAYS_PER_MONTH} (GDC days_to_death or days_to_last_follow_up)",
        endpoints=[Endpoint("os", "overall survival", "time", "event")], id_columns=ids,
        omics_scale=scale, omics_note=omics_note,
    )
