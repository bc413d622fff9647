"""Held-out C-index with its uncertainty, and the chance guard every model figure passes through.

A model's rankings, strata or risk scores are shown only beside its held-out Harrell's C with a
95% percentile-bootstrap CI (Efron & Tibshirani 1993, ch. 13), computed here with one fixed
bootstrap count and seed (:data:`BOOTSTRAP_N`, :data:`BOOTSTRAP_SEED`) so that the pages and the
CLI print the same interval for the same patients and risks. When the CI includes 0.5 the model
is not shown to be better than chance, and :attr:`HeldOutC.warning` says so in words.

With repeated splits (each a held-out set of its own), the headline is the mean +- sd over the
repeats; the CI is that of the mean, from a joint bootstrap: in every replicate each split's
held-out patients are resampled with replacement (the splits' generators are all seeded from
:data:`BOOTSTRAP_SEED`) and the replicate's statistic is the mean of the splits' C-indexes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from pathviz.errors import PathVizError
from pathviz.survival.concordance import harrell_c

#: Bootstrap resamples and seed of every held-out C-index CI (pages, CLI, stored model metrics).
BOOTSTRAP_N = 1000
BOOTSTRAP_SEED = 0
#: Chance level of Harrell's C.
CHANCE_C = 0.5


@dataclass(frozen=True)
class HeldOutC:
    """Held-out Harrell's C with its 95% bootstrap CI.

    Attributes:
        c_index: the headline: Harrell's C on the held-out patients, or the mean over repeated
            splits when there are several.
        lower, upper: 95% percentile-bootstrap CI of ``c_index`` (NaN when no resample had a
            comparable pair).
        n, events: held-out patients and events (summed over splits).
        splits: per-split C-indexes (one entry for a single split).
        sd: standard deviation of ``splits`` (ddof 1; 0 for a single split).
        n_boot, seed: the bootstrap settings used (stated wherever the CI is printed).
    """

    c_index: float
    lower: float
    upper: float
    n: int
    events: int
    splits: list[float] = field(default_factory=list)
    sd: float = 0.0
    n_boot: int = BOOTSTRAP_N
    seed: int = BOOTSTRAP_SEED

    @property
    def better_than_chance(self) -> bool:
        """True when the whole CI lies above 0.5."""
        return bool(np.isfinite(self.lower) and self.lower > CHANCE_C)

    @property
    def worse_than_chance(self) -> bool:
        """True when the whole CI lies below 0.5 (risk direction reversed: also not usable)."""
        return bool(np.isfinite(self.upper) and self.upper < CHANCE_C)

    def headline(self) -> str:
        """``0.712 (95% CI 0.641-0.779)`` or, with repeats, ``0.712 ± 0.043 over 5 splits (95% CI ...)``."""
        ci = f"95% CI {self.lower:.3f}-{self.upper:.3f}" if np.isfinite(self.lower) else "CI not estimable"
        if len(self.splits) > 1:
            return f"{self.c_index:.3f} ± {self.sd:.3f} over {len(self.splits)} splits ({ci})"
        return f"{self.c_index:.3f} ({ci})"

    def method(self) -> str:
        """One sentence naming how the CI was computed (printed under every CI)."""
        what = ("mean over the splits, held-out patients resampled within each split" if len(self.splits) > 1
                else "held-out patients resampled")
        return f"percentile bootstrap, {self.n_boot} resamples ({what}), seed {self.seed}; n={self.n}, events={self.events}"

    @property
    def warning(self) -> str | None:
        """A plain-words warning when the model is not shown to be better than chance, else None."""
        if self.better_than_chance:
            return None
        if self.worse_than_chance:
            return (f"Held-out C-index {self.headline()} is below 0.5: the model ranks patients in the wrong "
                    "direction on held-out data. Its rankings and risk groups must not be used.")
        return (f"Held-out C-index {self.headline()} includes 0.5: this model is not shown to be better than "
                "chance. Its rankings and risk groups may be noise; do not read them as findings.")

    def to_dict(self) -> dict:
        """JSON-ready dict (with ``better_than_chance``)."""
        return {**asdict(self), "better_than_chance": self.better_than_chance}

    @classmethod
    def from_dict(cls, d: dict) -> "HeldOutC":
        """Rebuild from :meth:`to_dict` output (extra keys such as ``better_than_chance`` ignored)."""
        keys = {"c_index", "lower", "upper", "n", "events", "splits", "sd", "n_boot", "seed"}
        return cls(**{k: v for k, v in d.items() if k in keys})


def held_out_c_index(splits: Sequence[tuple], n_boot: int = BOOTSTRAP_N, seed: int = BOOTSTRAP_SEED,
                     alpha: float = 0.05) -> HeldOutC:
    """Held-out Harrell's C (mean over splits) with a joint percentile-bootstrap CI.

    Args:
        splits: one ``(time, event, risk)`` triple of 1-D arrays per held-out set (months, 0/1,
            higher = worse); a single split gives the plain bootstrap CI of its C-index.
        n_boot: bootstrap replicates; seed: the generator seed (fixed so pages and CLI agree).
        alpha: 1 - confidence level.

    Returns:
        :class:`HeldOutC`.

    Raises:
        PathVizError: no split given, or a split without a comparable pair (no event).
    """
    if not splits:
        raise PathVizError("No held-out patients to compute a C-index on.", "evaluate on a validation split.")
    arrays = [tuple(np.asarray(a) for a in s) for s in splits]
    cs = []
    for t, e, r in arrays:
        c = harrell_c(t, e, r).c_index
        if not np.isfinite(c):
            raise PathVizError(f"A held-out set of {len(t)} patients has no comparable pair ({int(np.sum(e))} events).",
                               "use a larger validation set or a cohort with more events.")
        cs.append(float(c))
    rng = np.random.default_rng(seed)
    reps = np.full(n_boot, np.nan)
    for b in range(n_boot):
        vals = []
        for t, e, r in arrays:
            idx = rng.integers(0, len(t), len(t))
            vals.append(harrell_c(t[idx], e[idx], r[idx]).c_index)
        if np.all(np.isfinite(vals)):
            reps[b] = float(np.mean(vals))
    reps = reps[np.isfinite(reps)]
    lo, hi = (np.quantile(reps, [alpha / 2, 1 - alpha / 2]) if len(reps) else (np.nan, np.nan))
    return HeldOutC(c_index=float(np.mean(cs)), lower=float(lo), upper=float(hi),
                    n=int(sum(len(t) for t, _, _ in arrays)), events=int(sum(int(np.sum(e)) for _, e, _ in arrays)),
                    splits=cs, sd=float(np.std(cs, ddof=1)) if len(cs) > 1 else 0.0, n_boot=n_boot, seed=seed)


def model_evidence(ref: str, metrics: dict) -> tuple[str, str | None]:
    """What a page shows beside a model's output: one line with the version's recorded held-out
    C-index and CI and, on the same held-out patients, its comparators and no-learning baseline
    (``metrics["test_c_index"]``, e.g. ``{"attention_mil": .., "mean_pooling": .., "clinical": ..}``);
    and a warning (None when the model is better than chance AND than every baseline recorded).

    Args:
        ref: the version reference (``attention_mil/demo@v0001``).
        metrics: the version's ``metrics.json`` (``held_out`` as :meth:`HeldOutC.to_dict`).
    """
    if "held_out" not in metrics:
        return (f"{ref}: no held-out estimate recorded",
                "This model version records no held-out C-index: its maps cannot be weighed. Retrain it.")
    held = HeldOutC.from_dict(metrics["held_out"])
    own = {metrics.get("kind"), ref.split("/")[0]}
    others = {k: float(v) for k, v in (metrics.get("test_c_index") or {}).items()
              if k not in own and isinstance(v, (int, float)) and np.isfinite(v)}
    line = f"{ref}: held-out C {held.headline()}" + ("; on the same patients " + ", ".join(
        f"{k.replace('_', ' ')} {v:.3f}" for k, v in others.items()) if others else "")
    warning = held.warning
    beaten = [k for k, v in others.items() if v >= held.c_index]
    if warning is None and beaten:
        warning = (f"The model does not beat {', '.join(k.replace('_', ' ') for k in beaten)} on its held-out "
                   "patients: read its map as what it fitted, not as evidence.")
    return line, warning
