"""What scale an expression matrix is on, said from its numbers, and the one clipping step.

A matrix is patients x genes (rows = patients, columns = gene symbols). PathViz never rescales,
recodes or clips an expression matrix silently: a loader detects the scale with
:func:`detect_scale`, records it in ``Cohort.omics_scale`` and says how the matrix was obtained in
``Cohort.omics_note`` (:func:`describe_omics`). Values are clipped only where a data format
declares it (:func:`clip_declared`, which returns how many values it changed so the loader can
record it).

Rules of :func:`detect_scale`, tried in this order on the finite values (missing values ignored;
"gene mean"/"gene sd" are the per-column mean and standard deviation across patients, and the
median is taken over genes):

1. ``"counts"``: every value is a non-negative integer and the maximum is > 1000 (raw read
   counts, e.g. STAR ``unstranded`` or RSEM expected counts rounded). Non-negative integers with
   a small maximum are ambiguous and fall through (usually to ``"unknown"``).
2. ``"z-score"``: median |gene mean| < 0.25 and median gene sd in [0.6, 1.6] (per-gene
   standardised values, e.g. cBioPortal ``data_mrna_seq_v2_rsem_zscores_ref_all_samples.txt``).
   The maximum is not used: cBioPortal z-scores computed against a reference subset are
   heavy-tailed (values above 1000 occur) and remain z-scores.
3. ``"log2 expression"``: not all integers, maximum <= 25 (2^25 TPM is beyond any real gene),
   minimum >= -10.5 and median gene mean >= 1 (clearly above 0). The minimum allows the floor of
   ``log2(x + 0.001)`` (UCSC Xena's log2(TPM + 0.001): -9.966 for x = 0) as well as the
   non-negative ``log2(x + 1)``.
4. ``"unknown"``: anything else, e.g. linear TPM/FPKM or RSEM normalised values (non-negative,
   non-integer, maximum far above 25), or values whose gene means are neither ~0 nor clearly > 0.

The evidence text always gives the numbers, e.g. ``"median gene mean 0.01, median gene sd
0.98, min -8.10, max 14.20"``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: The kinds :func:`detect_scale` reports.
SCALE_KINDS = ("z-score", "log2 expression", "counts", "unknown")

#: Thresholds of the rules (see the module docstring).
COUNTS_MIN_MAX = 1000.0
Z_MAX_ABS_MEAN = 0.25
Z_SD_RANGE = (0.6, 1.6)
LOG2_MAX = 25.0
LOG2_MIN = -10.5
LOG2_MIN_MEDIAN_MEAN = 1.0


@dataclass(frozen=True)
class OmicsScale:
    """The detected scale of an expression matrix.

    Attributes:
        kind: one of :data:`SCALE_KINDS` (``"z-score"``, ``"log2 expression"``, ``"counts"``,
            ``"unknown"``).
        evidence: the numbers the decision rests on, e.g. ``"median gene mean 0.01, median gene
            sd 0.98, min -8.10, max 14.20"``, plus the reason for ``"unknown"``.
    """

    kind: str
    evidence: str

    def __str__(self) -> str:
        return f"{self.kind} ({self.evidence})"


def _num(x: float) -> str:
    text = f"{x:.2f}"
    return "0.00" if text == "-0.00" else text


def _numeric(matrix: pd.DataFrame) -> pd.DataFrame:
    """The matrix with every column numeric (non-numeric entries become missing)."""
    if all(pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t) for t in matrix.dtypes):
        return matrix
    return matrix.apply(pd.to_numeric, errors="coerce")


def detect_scale(matrix: pd.DataFrame) -> OmicsScale:
    """Say which scale an expression matrix is on (rules in the module docstring).

    Args:
        matrix: patients x genes; non-numeric entries are ignored (treated as missing).

    Returns:
        :class:`OmicsScale` with ``kind`` and ``evidence`` (never raises for odd content: an
        empty or all-missing matrix is ``"unknown"``).
    """
    values = _numeric(matrix).to_numpy(dtype=float, na_value=np.nan) if len(matrix.columns) else np.empty((len(matrix), 0))
    values = np.where(np.isfinite(values), values, np.nan)
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        return OmicsScale("unknown", f"no numeric values ({matrix.shape[0]} rows x {matrix.shape[1]} columns)")
    with warnings.catch_warnings():  # all-missing genes give NaN means/sds, dropped below
        warnings.simplefilter("ignore", RuntimeWarning)
        gene_mean = np.nanmean(values, axis=0)
        gene_sd = np.nanstd(values, axis=0, ddof=1) if values.shape[0] > 1 else np.full(values.shape[1], np.nan)
    gene_mean = gene_mean[~np.isnan(gene_mean)]
    gene_sd = gene_sd[~np.isnan(gene_sd)]
    med_mean = float(np.median(gene_mean)) if gene_mean.size else float("nan")
    med_abs_mean = float(np.median(np.abs(gene_mean))) if gene_mean.size else float("nan")
    med_sd = float(np.median(gene_sd)) if gene_sd.size else float("nan")
    vmin, vmax = float(finite.min()), float(finite.max())
    integers = bool(np.all(finite == np.round(finite)))
    evidence = (f"median gene mean {_num(med_mean)}, median gene sd {_num(med_sd)}, min {_num(vmin)}, "
                f"max {_num(vmax)}")
    if integers and vmin >= 0 and vmax > COUNTS_MIN_MAX:
        return OmicsScale("counts", evidence + f"; non-negative integers with max > {COUNTS_MIN_MAX:g}")
    if med_abs_mean < Z_MAX_ABS_MEAN and Z_SD_RANGE[0] <= med_sd <= Z_SD_RANGE[1]:
        return OmicsScale("z-score", evidence + f"; median |gene mean| {_num(med_abs_mean)} < {Z_MAX_ABS_MEAN:g} and "
                                                f"median gene sd in [{Z_SD_RANGE[0]:g}, {Z_SD_RANGE[1]:g}]")
    if not integers and vmax <= LOG2_MAX and vmin >= LOG2_MIN and med_mean >= LOG2_MIN_MEDIAN_MEAN:
        return OmicsScale("log2 expression", evidence + f"; max <= {LOG2_MAX:g}, min >= {LOG2_MIN:g}, gene means > 0")
    if vmin >= 0 and vmax > LOG2_MAX:
        why = ("non-negative integers with max <= 1000 (low counts?)" if integers else
               "non-negative, not log-transformed (linear TPM/FPKM or RSEM normalised values?)")
    elif integers and vmin >= 0:
        why = f"non-negative integers with max <= {COUNTS_MIN_MAX:g} (low counts or categories?)"
    else:
        why = "neither per-gene standardised (z-score) nor log2 expression"
    return OmicsScale("unknown", evidence + f"; {why}")


def describe_omics(matrix: pd.DataFrame, scale: OmicsScale, declared: str | None) -> str:
    """One sentence on an expression matrix for ``Cohort.omics_note`` and the pages.

    Args:
        matrix: patients x genes.
        scale: what :func:`detect_scale` found.
        declared: what the source says the values are (e.g. ``"z-score"`` from a cBioPortal
            ``*_zscores_*`` file name), or None when it says nothing.

    Returns:
        E.g. ``"349 patients x 1558 genes; detected z-score (median gene mean 0.00, ...);
        declared z-score: consistent"``, or ``"...; declared log2 expression but the values look
        like z-score: check the source"``. Missing values are counted when there are any.
    """
    n_missing = int(matrix.isna().to_numpy().sum())
    text = f"{matrix.shape[0]} patients x {matrix.shape[1]} genes"
    if n_missing:
        text += f" ({n_missing} missing values)"
    text += f"; detected {scale.kind} ({scale.evidence})"
    if declared:
        if declared == scale.kind:
            text += f"; declared {declared}: consistent"
        elif scale.kind == "unknown":
            text += f"; declared {declared}, not confirmed by the values"
        else:
            text += f"; declared {declared} but the values look like {scale.kind}: check the source"
    return text


def clip_declared(matrix: pd.DataFrame, limit: float) -> tuple[pd.DataFrame, int]:
    """Clip to ``[-limit, limit]``, only where a data format declares clipping.

    Args:
        matrix: patients x genes, numeric.
        limit: positive bound (same unit as the matrix, e.g. 10 for z-scores).

    Returns:
        ``(clipped copy, number of values changed)``; record the count (e.g. in
        ``Cohort.omics_note``). Missing values stay missing.

    Raises:
        ValueError: ``limit`` not positive and finite.
    """
    if not (np.isfinite(limit) and limit > 0):
        raise ValueError(f"clip limit must be a positive number, got {limit!r}")
    num = _numeric(matrix)
    n = int((num.abs() > limit).to_numpy().sum())
    return num.clip(-limit, limit), n
