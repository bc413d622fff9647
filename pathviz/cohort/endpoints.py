"""Endpoints and the outcome-leakage guard.

A cohort declares its endpoints (every time/event pair: overall survival, recurrence-free
survival, ...) and any column derived from outcomes. None of these may ever reach a model's
features: :func:`check_no_outcome_features` is called where every design matrix is built
(:class:`pathviz.risk.TabularPreprocessor`, Cox-PASNet, PAGE-Net) and refuses with
:class:`OutcomeLeakageError`. Besides the declared columns, column names that read like an
outcome (``os_time``, ``DFS_MONTHS``, ``vital_status``, ``days_to_death``...) are refused too, so
an undeclared outcome in a user's table is caught as well; a cohort may clear a false positive
explicitly (``Cohort.allowed_covariates``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from pathviz.errors import PathVizError


class OutcomeLeakageError(PathVizError):
    """An outcome column (an endpoint's time or event, or a column derived from outcomes) was
    requested as a model feature."""


@dataclass(frozen=True)
class Endpoint:
    """One survival endpoint of a cohort.

    Attributes:
        key: short id (``os``, ``rfs``, ``dfs``, ``pfs``, ``dss``, ``pfi``, ``primary``...).
        label: words for the pages (e.g. "overall survival").
        time: column of the time to event or last follow-up, months.
        event: column of the event indicator (1 = event observed, 0 = censored).
    """

    key: str
    label: str
    time: str
    event: str

    @property
    def columns(self) -> tuple[str, str]:
        """``(time, event)`` column names."""
        return (self.time, self.event)


_ENDPOINT_CODES = r"(os|dfs|pfs|rfs|dss|pfi|efs|mfs|dmfs|drfs|ttp|ttr|bcr|css|dfi)"
#: Column names that read like an outcome (matched case-insensitively on the whole name).
OUTCOME_NAME = re.compile(
    r"^(time|event|status|censor(ed|ing)?|cens|dead|death|died|deceased|vital_?status|survival|"
    + _ENDPOINT_CODES + r")$"
    + r"|^" + _ENDPOINT_CODES + r"[ _.\-]"
    + r"|[ _.\-]" + _ENDPOINT_CODES + r"$"
    + r"|[ _.\-](event|censor|censored|cens)$"
    + r"|survival|death|vital|censor|follow[ _.\-]?up|last[ _.\-]contact|recurren|relapse|progression",
    re.IGNORECASE,
)


def looks_like_outcome(column: str) -> bool:
    """True when a column name reads like an outcome (``os_time``, ``OS_STATUS``, ``days_to_death``,
    ``vital_status``, ``recurrence``, ``dfs``...)."""
    return bool(OUTCOME_NAME.search(str(column)))


def check_no_outcome_features(features: Iterable[str], outcome_columns: Iterable[str] = (), where: str = "the model",
                              allowed: Iterable[str] = ()) -> None:
    """Refuse any outcome column among a model's features.

    Args:
        features: column names about to become model inputs (clinical covariates; one-hot
            names ``col=level`` are checked by their column).
        outcome_columns: the cohort's declared outcome columns (every endpoint's time and event,
            columns derived from outcomes); ``time`` and ``event`` are always outcomes.
        where: the model or table being built (for the message).
        allowed: names cleared explicitly by the cohort despite looking like outcomes (never
            a declared outcome column).

    Raises:
        OutcomeLeakageError: naming the columns and why each is an outcome.
    """
    declared = {"time", "event", *map(str, outcome_columns)}
    allowed = set(map(str, allowed)) - declared
    bad = []
    for f in features:
        col = str(f).split("=", 1)[0]
        if col in declared:
            bad.append(f"{col!r} (a declared endpoint or outcome column)")
        elif col not in allowed and looks_like_outcome(col):
            bad.append(f"{col!r} (its name reads like an outcome)")
    if bad:
        raise OutcomeLeakageError(
            f"{where} would use outcome columns as features: {', '.join(dict.fromkeys(bad))}. An endpoint's time or "
            "event (or anything derived from them) must never be a predictor.",
            "remove these columns from the covariates; if a column is not an outcome despite its name, declare it in "
            "the cohort's allowed_covariates.",
        )
