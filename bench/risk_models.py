"""Out-of-sample discrimination of the risk models on real cohorts.

For each cohort: 5-fold cross-validation (folds stratified by event, seed 0): in each fold the
elastic-net Cox (clinical + expression; alpha chosen by an inner 5-fold CV on the training folds
only) and a clinical-only Cox (lifelines, ridge 0.01) are fitted on four folds and Harrell's C is
computed on the held-out fold; mean +- sd over folds. Then a cross-cohort run: genes-only elastic
net trained on all of gse1992 and validated on gse4335 and gse3143 (genes measured in both, each
cohort z-scored on its own, since they come from different platforms).

TCGA cohorts are read from ../shared/data/tcga when present. Last line:
``coxnet_cindex_tcga_stad: 0.XXX`` (nan when that cohort is absent).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import warnings  # noqa: E402

from lifelines import CoxPHFitter  # noqa: E402

from pathviz.cohort import available_cohorts, load_cohort  # noqa: E402
from pathviz.risk import CoxnetRiskModel, TabularPreprocessor, default_covariates, stratified_folds  # noqa: E402
from pathviz.survival import harrell_c  # noqa: E402

COHORTS = ["gse1992", "gse4335", "gse3143", "gbsg2", "breast_cancer", "tcga_stad", "tcga_blca", "tcga_brca"]


def clinical_cox_risk(clin_tr, t_tr, e_tr, clin_te, covs):
    pre = TabularPreprocessor(covs, genes=False).fit(clin_tr, None)
    Xtr = pre.transform(clin_tr, None)
    cph = CoxPHFitter(penalizer=0.01).fit(Xtr.assign(time=t_tr, event=e_tr), "time", "event")
    return cph.predict_log_partial_hazard(pre.transform(clin_te, None)).to_numpy()


def cv_cohort(name: str, k: int = 5, seed: int = 0) -> dict:
    c = load_cohort(name)
    covs = default_covariates(c)
    folds = stratified_folds(c.event, k, seed)
    res = {"coxnet": [], "clinical": []}
    t0 = time.perf_counter()
    for test in folds:
        train = np.setdiff1d(np.arange(c.n), test)
        ctr, cte = c.clinical.iloc[train], c.clinical.iloc[test]
        m = CoxnetRiskModel(covs, use_genes=c.omics is not None, seed=seed).fit(ctr, c.omics, c.time[train], c.event[train])
        res["coxnet"].append(harrell_c(c.time[test], c.event[test], m.predict_risk(cte, c.omics)).c_index)
        if covs:
            r = clinical_cox_risk(ctr, c.time[train], c.event[train], cte, covs)
            res["clinical"].append(harrell_c(c.time[test], c.event[test], r).c_index)
    return {"cohort": name, "n": c.n, "events": c.n_events, "genes": 0 if c.omics is None else c.omics.shape[1],
            "covariates": ",".join(covs) or "-", "seconds": time.perf_counter() - t0, **res}


def zscore(df: pd.DataFrame) -> pd.DataFrame:
    return (df - df.mean()) / df.std(ddof=0).replace(0, 1)


def cross_cohort() -> list[tuple[str, int, float]]:
    train = load_cohort("gse1992")
    out = []
    for name in ("gse4335", "gse3143"):
        val = load_cohort(name)
        genes = sorted(set(train.omics.columns) & set(val.omics.columns))
        tr_o = zscore(train.omics[genes])
        va_o = zscore(val.omics[genes])
        m = CoxnetRiskModel([], use_genes=True, max_genes=500).fit(train.clinical, tr_o, train.time, train.event)
        out.append((name, len(genes), harrell_c(val.time, val.event, m.predict_risk(val.clinical, va_o)).c_index))
    return out


def main() -> int:
    warnings.filterwarnings("ignore")  # lifelines convergence chatter on sparse one-hot levels
    here = set(available_cohorts())
    rows = [cv_cohort(n) for n in COHORTS if n in here]
    print(f"{'cohort':<14}{'n':>5}{'events':>7}{'genes':>7}  {'coxnet C (5-fold)':>20}  {'clinical Cox C':>16}  {'s':>5}  covariates")
    by = {}
    for r in rows:
        cn, cl = np.array(r["coxnet"]), np.array(r["clinical"])
        by[r["cohort"]] = cn.mean()
        cl_txt = f"{cl.mean():.3f} +- {cl.std(ddof=1):.3f}" if len(cl) else "n/a"
        print(f"{r['cohort']:<14}{r['n']:>5}{r['events']:>7}{r['genes']:>7}  {cn.mean():>11.3f} +- {cn.std(ddof=1):.3f}"
              f"  {cl_txt:>16}  {r['seconds']:>5.0f}  {r['covariates']}")
    missing = [n for n in COHORTS if n not in here]
    if missing:
        print(f"skipped (data absent): {', '.join(missing)}")
    print("cross-cohort, genes-only elastic net trained on gse1992:")
    for name, n_genes, c in cross_cohort():
        print(f"  validated on {name}: C = {c:.3f} ({n_genes} shared genes)")
    print(f"coxnet_cindex_tcga_stad: {by.get('tcga_stad', float('nan')):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
