"""Speed and agreement of PathViz's Harrell's C, and the patient page's KM panel cost.

* Harrell's C for n = 10^5 and 10^6 (exponential times, 50% censoring, continuous risk) with
  ``pathviz.survival.harrell_c``, ``lifelines.utils.concordance_index`` and scikit-survival's
  ``concordance_index_censored`` in the same run; values must agree to 1e-9. scikit-survival's
  implementation is O(n^2) (one pass over all patients per event): it runs at 10^5 and, at 10^6,
  on the first 10^5 patients only (the full run would take about 20 minutes here).
* Recomputing the KM panel (KM + CI + censor marks + log-rank + HR + at-risk table, and its plotly
  figure) for 10^4 patients in two groups: median of 5 runs (target < 200 ms).

Last line: ``cindex_speed_ratio_vs_lifelines: X.X`` (lifelines time / PathViz time at 10^6).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lifelines.utils import concordance_index  # noqa: E402
from sksurv.metrics import concordance_index_censored  # noqa: E402

from pathviz.report.plots import km_figure  # noqa: E402
from pathviz.survival import harrell_c, km_by_group  # noqa: E402


def data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n)
    t = rng.exponential(10 * np.exp(-0.5 * risk))
    c = rng.exponential(10, n)
    return np.minimum(t, c), (t <= c).astype(int), risk


def timed(fn, *a):
    t0 = time.perf_counter()
    out = fn(*a)
    return out, time.perf_counter() - t0


def main() -> int:
    ratio = float("nan")
    print(f"{'n':>9} {'pathviz s':>10} {'lifelines s':>12} {'sksurv s':>10}  {'C':>18} {'|d lifelines|':>14} {'|d sksurv|':>11}")
    for n in (100_000, 1_000_000):
        t, e, r = data(n)
        mine, s_mine = timed(lambda: harrell_c(t, e, r).c_index)
        ll, s_ll = timed(lambda: concordance_index(t, -r, e))
        m = min(n, 100_000)
        sk, s_sk = timed(lambda: concordance_index_censored(e[:m].astype(bool), t[:m], r[:m])[0])
        mine_sub = harrell_c(t[:m], e[:m], r[:m]).c_index
        d_ll, d_sk = abs(mine - ll), abs(mine_sub - sk)
        note = "" if m == n else f"  (sksurv on first {m})"
        print(f"{n:>9} {s_mine:>10.3f} {s_ll:>12.3f} {s_sk:>10.3f}  {mine:>18.15f} {d_ll:>14.2e} {d_sk:>11.2e}{note}")
        assert d_ll < 1e-9 and d_sk < 1e-9, "C-index disagreement above 1e-9"
        ratio = s_ll / s_mine
    t, e, r = data(10_000, seed=1)
    groups = np.where(r > np.median(r), "high", "low").astype(object)
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        comp = km_by_group(t, e, groups, reference="low", ordered=["low", "high"])
        km_figure(comp, "bench", highlight="high")
        runs.append(time.perf_counter() - t0)
    print(f"km_panel_ms_10k_patients: {np.median(runs) * 1000:.0f} (target < 200)")
    print(f"cindex_speed_ratio_vs_lifelines: {ratio:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
