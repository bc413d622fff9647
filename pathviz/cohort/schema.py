"""The cohort schema: one validated table of patients with survival, plus optional omics.

Clinical table (pandas DataFrame, index ``patient_id``, one row per patient):

* ``time``  float, months (>= 0), time to event or last follow-up;
* ``event`` int 0/1 (1 = event observed, 0 = censored);
* optional clinical columns (``age`` years, ``stage``, ``grade``, ``centre``, ``treatment`` 0/1...)
  and serum markers such as ``ca19_9`` (U/mL), declared in ``Cohort.markers`` (only serum
  markers: tissue receptors such as ER/PR are clinical covariates, not markers);
* further endpoints (e.g. ``os_time``/``os_event`` beside a recurrence-free primary endpoint),
  declared in ``Cohort.endpoints``: outcome columns never become model features
  (:mod:`pathviz.cohort.endpoints`).

Omics matrix (optional): DataFrame patients x genes (index ``patient_id``, columns gene symbols),
a subset of the clinical patients.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pathviz.cohort.endpoints import Endpoint, check_no_outcome_features, looks_like_outcome
from pathviz.errors import PathVizError


class CohortError(PathVizError):
    """A cohort table breaks the schema (times, events, ids, markers...)."""


@dataclass
class Cohort:
    """A validated survival cohort.

    Attributes:
        name: identifier (e.g. ``gse1992``, ``tcga_stad``).
        clinical: DataFrame indexed by ``patient_id`` with ``time`` (months) and ``event`` (0/1).
        omics: optional DataFrame patients x genes (same ``patient_id`` index values).
        markers: columns that are serum markers (numeric, e.g. ``ca19_9`` in U/mL).
        treatment: name of the 0/1 treatment column, if any.
        centre: name of the centre/site column, if any.
        description: human-readable description with provenance.
        endpoint: what ``time``/``event`` measure (e.g. "overall survival").
        time_unit_note: how times were converted to months.
        semi_synthetic: True when outcomes are simulated (the UI labels it).
        endpoints: every survival endpoint of the table (:class:`~pathviz.cohort.endpoints.Endpoint`);
            the first is the primary one, held in ``time``/``event``. Default: the primary only.
            Every endpoint's event must be exactly 0/1 and its time finite and >= 0 (further
            endpoints may be missing for some patients); nothing is recoded (CohortError otherwise).
        derived_outcomes: other columns computed from outcomes (e.g. "alive at 5 years"); like
            the endpoints' columns, they can never be model features.
        id_columns: identifiers and file references (e.g. ``slide``), never covariates.
        allowed_covariates: columns whose names read like outcomes but are not (cleared by hand).
        omics_scale: the expression matrix's scale as detected by
            :func:`pathviz.cohort.omics.detect_scale` (``"z-score"``, ``"log2 expression"``,
            ``"counts"``, ``"unknown"``); empty when unknown to the loader or without omics.
        omics_note: how the matrix was obtained and transformed, e.g. "z-scores from
            data_mrna_seq_v2_rsem_zscores_ref_all_samples.txt; not clipped".
        slide_links: a :class:`~pathviz.cohort.slides.SlideLinks` when slide files were linked
            to patients (``pathviz cohort add ... --slides DIR``), else None.
    """

    name: str
    clinical: pd.DataFrame
    omics: pd.DataFrame | None = None
    markers: list[str] = field(default_factory=list)
    treatment: str | None = None
    centre: str | None = None
    description: str = ""
    endpoint: str = "overall survival"
    time_unit_note: str = ""
    semi_synthetic: bool = False
    endpoints: list[Endpoint] = field(default_factory=list)
    derived_outcomes: list[str] = field(default_factory=list)
    id_columns: list[str] = field(default_factory=list)
    allowed_covariates: list[str] = field(default_factory=list)
    omics_scale: str = ""
    omics_note: str = ""
    slide_links: object = None

    def __post_init__(self):
        self.clinical = validate_clinical(self.clinical, self.name, self.markers)
        if self.omics is not None:
            self.omics = validate_omics(self.omics, self.clinical, self.name)
        for col in [c for c in (self.treatment, self.centre) if c]:
            if col not in self.clinical.columns:
                raise CohortError(f"Cohort {self.name!r}: declared column {col!r} is not in the table.", "fix the mapping.")
        if not self.endpoints or self.endpoints[0].columns != ("time", "event"):
            self.endpoints = [Endpoint("primary", self.endpoint, "time", "event")] + [
                e for e in self.endpoints if e.columns != ("time", "event")]
        for col in [c for e in self.endpoints for c in e.columns] + self.derived_outcomes + self.id_columns:
            if col not in self.clinical.columns:
                raise CohortError(f"Cohort {self.name!r}: declared endpoint/outcome/id column {col!r} is not in the table.",
                                  "fix the cohort's declaration or the column mapping.")
        for e in self.endpoints[1:]:  # further endpoints: same coding rules; a patient may lack one
            t, ev = self.clinical[e.time], self.clinical[e.event]
            check_times(t[t.notna()], self.name, e.time)  # checked, left as given
            check_event_codes(ev[ev.notna()], self.name, e.event)
        clash = set(self.markers) & self.outcome_columns
        if clash or {self.treatment, self.centre} & self.outcome_columns:
            raise CohortError(f"Cohort {self.name!r}: outcome columns declared as marker, treatment or centre: "
                              f"{', '.join(sorted(map(str, clash or {self.treatment, self.centre} & self.outcome_columns)))}.",
                              "an endpoint's time or event cannot be a marker, a treatment or a centre.")

    @property
    def n(self) -> int:
        return len(self.clinical)

    @property
    def n_events(self) -> int:
        return int(self.clinical["event"].sum())

    @property
    def time(self) -> np.ndarray:
        return self.clinical["time"].to_numpy(float)

    @property
    def event(self) -> np.ndarray:
        return self.clinical["event"].to_numpy(int)

    @property
    def outcome_columns(self) -> frozenset[str]:
        """Every column that is an outcome: each endpoint's time and event, and the declared
        derived outcomes. None of these may be a model feature."""
        return frozenset({"time", "event", *(c for e in self.endpoints for c in e.columns), *self.derived_outcomes})

    def clinical_covariates(self) -> list[str]:
        """Clinical columns usable as model covariates: everything but outcome columns, columns
        whose names read like outcomes (unless cleared in ``allowed_covariates``), identifiers and
        serum markers (markers are analysed inside risk groups, not fed to the risk model)."""
        skip = {*self.outcome_columns, *self.markers, *self.id_columns}
        return [c for c in self.clinical.columns
                if c not in skip and (c in self.allowed_covariates or not looks_like_outcome(c))]

    def missing_modalities(self) -> list[str]:
        """What a slide + expression model (PAGE-Net) lacks here: ``"slides"`` (no ``slide``
        column) and/or ``"expression"`` (no omics matrix); empty when both exist."""
        return [what for what, ok in (("slides", "slide" in self.clinical.columns), ("expression", self.omics is not None))
                if not ok]

    def check_features(self, features, where: str = "the model") -> None:
        """Refuse outcome columns among ``features`` (see :func:`~pathviz.cohort.endpoints.check_no_outcome_features`).

        Raises:
            OutcomeLeakageError: naming the columns.
        """
        check_no_outcome_features(features, self.outcome_columns, where=f"{where} on cohort {self.name!r}",
                                  allowed=self.allowed_covariates)

    def summary(self) -> dict:
        return {
            "name": self.name,
            "n": self.n,
            "events": self.n_events,
            "genes": 0 if self.omics is None else int(self.omics.shape[1]),
            "columns": list(self.clinical.columns),
            "markers": self.markers,
            "treatment": self.treatment,
            "centre": self.centre,
            "endpoint": self.endpoint,
            "endpoints": [{"key": e.key, "label": e.label, "time": e.time, "event": e.event} for e in self.endpoints],
            "outcome_columns": sorted(self.outcome_columns),
            "semi_synthetic": self.semi_synthetic,
            "omics_scale": self.omics_scale,
            "omics_note": self.omics_note,
            "with_slides": int(self.clinical["slide"].notna().sum()) if "slide" in self.clinical.columns else 0,
        }

    def with_endpoint(self, key: str) -> "Cohort":
        """A copy whose primary ``time``/``event`` are the columns of endpoint ``key``.

        Patients missing that endpoint (time or event) are dropped, from the omics matrix too,
        and the count is appended to ``description``. The former primary endpoint moves to
        columns ``<key>_time``/``<key>_event`` (suffixed if taken) and stays declared, like every
        other endpoint, so the outcome guard still keeps all of them out of model features. The
        chosen endpoint's own columns are replaced by ``time``/``event``. Nothing is recoded:
        values are checked by the schema as usual.

        Args:
            key: an endpoint key of :attr:`endpoints` (e.g. ``"dfs"``); the primary's key returns
                an unchanged copy.

        Raises:
            CohortError: unknown key (the message lists the available keys), or no patient left.
        """
        import dataclasses

        keys = [e.key for e in self.endpoints]
        if key not in keys:
            raise CohortError(f"Cohort {self.name!r} has no endpoint {key!r}; available: {', '.join(keys)}.",
                              "choose one of the available endpoint keys.")
        if key == keys[0]:
            return dataclasses.replace(self, clinical=self.clinical.copy(),
                                       omics=None if self.omics is None else self.omics.copy())
        chosen = next(e for e in self.endpoints if e.key == key)
        old = self.endpoints[0]
        clin = self.clinical.copy()
        keep = clin[chosen.time].notna() & clin[chosen.event].notna()
        dropped = int((~keep).sum())
        clin = clin[keep]
        if clin.empty:
            raise CohortError(f"Cohort {self.name!r}: no patient has endpoint {key!r} ({chosen.label}).",
                              "choose another endpoint.")

        def free(base: str) -> str:
            name, i = base, 2
            while name in clin.columns:
                name, i = f"{base}_{i}", i + 1
            return name

        old_time, old_event = free(f"{old.key}_time"), free(f"{old.key}_event")
        clin[old_time], clin[old_event] = clin["time"], clin["event"]
        clin["time"], clin["event"] = clin[chosen.time], clin[chosen.event]
        clin = clin.drop(columns=[chosen.time, chosen.event])
        endpoints = [Endpoint(chosen.key, chosen.label, "time", "event"), Endpoint(old.key, old.label, old_time, old_event)]
        endpoints += [e for e in self.endpoints[1:] if e.key != key]
        omics = None if self.omics is None else self.omics.loc[[p for p in self.omics.index if p in clin.index]]
        note = (f"endpoint {key} ({chosen.label}) as primary: {dropped} patient{'s' if dropped != 1 else ''} "
                f"without it dropped")
        return dataclasses.replace(
            self, clinical=clin, omics=omics, endpoints=endpoints, endpoint=chosen.label,
            description=f"{self.description}; {note}" if self.description else note,
        )


def validate_clinical(df: pd.DataFrame, name: str, markers: list[str] | None = None) -> pd.DataFrame:
    """Check and normalise a clinical table (see module docstring).

    Returns:
        A copy indexed by ``patient_id`` (str) with ``time`` float and ``event`` int.

    Raises:
        CohortError: missing columns; missing, non-numeric, infinite or negative times (see
            :func:`check_times`); events other than exactly 0/1 (see :func:`check_event_codes`:
            nothing is recoded here, a 1/2 or "dead"/"alive" coding is refused and the fix is an
            explicit mapping such as ``load_csv(..., event_map={2: 1, 1: 0})``); duplicate or
            missing patient ids; non-numeric marker values. Messages name the cohort, the column
            and up to 5 example patient ids.
    """
    df = df.copy()
    if "patient_id" in df.columns:
        df = df.set_index("patient_id")
    df.index = df.index.map(lambda v: None if pd.isna(v) else str(v))
    df.index.name = "patient_id"
    if df.index.isna().any():
        raise CohortError(f"Cohort {name!r}: {int(df.index.isna().sum())} rows have no patient_id.", "give every row an id.")
    dup = df.index[df.index.duplicated()].unique()
    if len(dup):
        raise CohortError(
            f"Cohort {name!r}: duplicate patient_id values ({len(dup)}), e.g. {', '.join(map(str, dup[:3]))}.",
            "keep one row per patient (collapse slides/samples first).",
        )
    for col in ("time", "event"):
        if col not in df.columns:
            raise CohortError(f"Cohort {name!r} has no {col!r} column.", "map your survival columns to time (months) and event (0/1).")
    df["time"] = check_times(df["time"], name)
    df["event"] = check_event_codes(df["event"], name)
    for m in markers or []:
        if m not in df.columns:
            raise CohortError(f"Cohort {name!r}: marker column {m!r} is missing.", "fix the column mapping.")
        vals = pd.to_numeric(df[m], errors="coerce")
        bad = df.index[vals.isna() & df[m].notna()]
        if len(bad):
            raise CohortError(
                f"Cohort {name!r}: marker {m!r} has non-numeric values for {len(bad)} patients, e.g. "
                f"{', '.join(f'{p}={df.at[p, m]!r}' for p in bad[:3])}.",
                "give numbers in the marker's unit (e.g. U/mL); leave missing values empty.",
            )
        if (vals < 0).any():
            raise CohortError(f"Cohort {name!r}: marker {m!r} has negative values.", "serum levels are >= 0.")
        df[m] = vals.astype(float)
    return df


#: How many example values / patient ids an error message names.
MAX_NAMED = 5


def _ids(index) -> str:
    ids = [str(i) for i in index[:MAX_NAMED]]
    return ", ".join(ids) + (f" (and {len(index) - MAX_NAMED} more)" if len(index) > MAX_NAMED else "")


def _show(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA or value is pd.NaT:
        return "missing"
    return repr(value) if isinstance(value, str) else str(value)


def value_counts_text(values: pd.Series) -> str:
    """``'dead' (3 patients), 2 (1 patient)``: the distinct values of ``values`` with counts,
    most frequent first, up to 5 (then ``and N more values``)."""
    counts: dict[str, int] = {}
    for v in values.tolist():
        key = _show(v)
        counts[key] = counts.get(key, 0) + 1
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{k} ({c} patient{'s' if c != 1 else ''})" for k, c in items[:MAX_NAMED])
    return text + (f", and {len(items) - MAX_NAMED} more values" if len(items) > MAX_NAMED else "")


def _is_0_1(value) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return True
    if isinstance(value, (int, float, np.integer, np.floating)):
        return bool(value == 0 or value == 1)  # NaN compares false
    return False


def check_event_codes(event: pd.Series, name: str, column: str = "event") -> pd.Series:
    """The event column as int 0/1, refusing every other coding (nothing is recoded here).

    Accepted: ints, bools or floats equal to exactly 0 (censored) or 1 (event observed).
    Refused: any other number (a 1/2 coding such as R survival's 1 = censored / 2 = dead would
    otherwise be inverted or half lost), strings (``"dead"``, ``"yes"``, ``"1"``, cBioPortal's
    ``"1:DECEASED"``), missing values.

    Args:
        event: the column's values, indexed by patient id.
        name: cohort name (for the message).
        column: the column's name in the message (e.g. the user file's ``status``).

    Raises:
        CohortError: naming the column, the values found (up to 5, with counts), example patient
            ids, and the fix: an explicit mapping, e.g. ``load_csv(..., event_map={2: 1, 1: 0})``
            or ``event_map={"dead": 1, "alive": 0}``.
    """
    valid = np.array([_is_0_1(v) for v in event.tolist()], dtype=bool)
    if not valid.all():
        bad = event[~valid]
        raise CohortError(
            f"Cohort {name!r}: event must be 0 (censored) or 1 (event) in column {column!r}; found "
            f"{', '.join(list(dict.fromkeys(_show(v) for v in bad.tolist()))[:MAX_NAMED])} "
            f"for {len(bad)} patients, e.g. {_ids(bad.index)}. Values found: {value_counts_text(bad)}.",
            "nothing is recoded silently: give an explicit event mapping, e.g. load_csv(..., "
            "event_map={2: 1, 1: 0}) for a 1 = censored / 2 = event coding, or event_map={'dead': 1, "
            "'alive': 0}; every value in the column must be in the mapping.",
        )
    return event.astype(float).astype(int)


def check_times(time: pd.Series, name: str, column: str = "time") -> pd.Series:
    """The time column as float months, refusing missing, non-numeric, infinite and negative values.

    Raises:
        CohortError: naming the column, the number of patients and up to 5 patient ids; the fix
            says to drop the patients or fill/correct their follow-up time.
    """
    num = pd.to_numeric(time, errors="coerce")
    if num.dtype == bool:
        num = num.astype(float)
    num = num.astype(float)
    bad = time.index[num.isna()]
    if len(bad):
        raise CohortError(
            f"Cohort {name!r}: {len(bad)} patients have a missing or non-numeric time, e.g. {_ids(bad)} "
            f"(column {column!r}).",
            "drop those patients or fill their follow-up time (months).",
        )
    inf = time.index[np.isinf(num.to_numpy())]
    if len(inf):
        raise CohortError(
            f"Cohort {name!r}: {len(inf)} patients have an infinite (non-finite) time, e.g. {_ids(inf)} "
            f"(column {column!r}).",
            "times must be finite months to event or last follow-up; give the real follow-up time or drop those patients.",
        )
    neg = time.index[num.to_numpy() < 0]
    if len(neg):
        raise CohortError(
            f"Cohort {name!r}: {len(neg)} patients have a negative time, e.g. {_ids(neg)} (column {column!r}).",
            "times are months from diagnosis to event or last follow-up; fix the dates.",
        )
    return num


def validate_omics(omics: pd.DataFrame, clinical: pd.DataFrame, name: str) -> pd.DataFrame:
    """Check an omics matrix: unique ids that exist in the clinical table, numeric values.

    Returns a float32 copy aligned to the clinical order (patients without omics dropped).
    """
    omics = omics.copy()
    omics.index = omics.index.map(str)
    omics.index.name = "patient_id"
    if omics.index.duplicated().any():
        raise CohortError(f"Cohort {name!r}: the omics matrix has duplicate patient ids.", "one row per patient.")
    unknown = omics.index.difference(clinical.index)
    if len(unknown):
        raise CohortError(
            f"Cohort {name!r}: {len(unknown)} omics rows have no clinical row, e.g. {', '.join(unknown[:3])}.",
            "check the patient id format (e.g. 12-character TCGA barcodes).",
        )
    if omics.columns.duplicated().any():
        dups = omics.columns[omics.columns.duplicated()].unique()
        raise CohortError(f"Cohort {name!r}: duplicate gene columns, e.g. {', '.join(map(str, dups[:3]))}.", "merge or rename them.")
    # only non-numeric columns are converted (a column-wise apply over 20,000 genes took seconds)
    text_cols = [c for c, t in omics.dtypes.items() if not pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t)]
    num = omics
    if text_cols:
        conv = omics[text_cols].apply(pd.to_numeric, errors="coerce")
        bad = conv.isna() & omics[text_cols].notna()
        if bad.to_numpy().any():
            col = bad.any().idxmax()
            raise CohortError(f"Cohort {name!r}: the omics matrix has non-numeric values (e.g. gene {col!r}: "
                              f"{omics.loc[bad[col], col].iloc[0]!r}).", "give numbers only.")
        num = omics.copy()
        num[text_cols] = conv
    order = clinical.index[clinical.index.isin(num.index)]
    return num.loc[order].astype(np.float32)


def cohort_digest(cohort: Cohort) -> str:
    """SHA-256 (first 16 hex) of a cohort's clinical table and expression matrix, recorded with
    every version trained on it (the same data gives the same digest)."""
    import hashlib

    h = hashlib.sha256(pd.util.hash_pandas_object(cohort.clinical, index=True).to_numpy().tobytes())
    if cohort.omics is not None:
        h.update(pd.util.hash_pandas_object(cohort.omics, index=True).to_numpy().tobytes())
        h.update("\t".join(map(str, cohort.omics.columns)).encode())
    return h.hexdigest()[:16]
