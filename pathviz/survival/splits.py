"""Seeded patient splits stratified by event status, shared by every model that holds patients out.

Both the cohort-level risk models (:mod:`pathviz.risk`) and the torch training loops
(:mod:`pathviz.nn`) import them from here, so ``pathviz.nn`` never imports ``pathviz.risk``.
Stratifying by event status keeps the event rate of each part close to the cohort's, so no part is
left with too few events to fit or evaluate a Cox model.
"""

from __future__ import annotations

import numpy as np


def stratified_folds(event: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """K folds with events spread evenly (stratified by event status), seeded.

    Within each event status the patients are permuted with ``numpy.random.default_rng(seed)`` and
    dealt to the folds in turn.

    Args:
        event: ``int[n]`` or ``bool[n]`` event indicator (1 = event, 0 = censored).
        k: number of folds (>= 1).
        seed: random seed (recorded with the model that uses the folds).

    Returns:
        ``k`` sorted ``int`` arrays of row positions; together they hold every row exactly once.
    """
    rng = np.random.default_rng(seed)
    folds = [[] for _ in range(k)]
    for status in (0, 1):
        idx = rng.permutation(np.flatnonzero(np.asarray(event) == status))
        for i, j in enumerate(idx):
            folds[i % k].append(j)
    return [np.sort(np.array(f, dtype=int)) for f in folds]


def train_validation_split(event: np.ndarray, validation_fraction: float = 0.3,
                           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks ``(train, validation)`` stratified by event status, seeded.

    Within each event status, ``round(n_status * validation_fraction)`` patients (drawn with
    ``numpy.random.default_rng(seed)``) go to validation, the rest to training.

    Args:
        event: ``int[n]`` or ``bool[n]`` event indicator (1 = event, 0 = censored).
        validation_fraction: share of each event status held out (0-1).
        seed: random seed.

    Returns:
        ``(train bool[n], validation bool[n])``, complementary masks.
    """
    rng = np.random.default_rng(seed)
    val = np.zeros(len(event), dtype=bool)
    for status in (0, 1):
        idx = rng.permutation(np.flatnonzero(np.asarray(event) == status))
        val[idx[: int(round(len(idx) * validation_fraction))]] = True
    return ~val, val
