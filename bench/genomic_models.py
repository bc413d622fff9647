"""Cox-PASNet vs penalised Cox on the same genes vs clinical-only Cox, on real cohorts.

Protocol: for each cohort, ``--repeats`` (default 10) stratified 70/30 splits (seeds 0..R-1), the
same for every model. Cox-PASNet uses the shipped KEGG library (15-300 genes per set, >= 50% of a
set measured) and age at the Cox layer; its learning rate x L2 grid and early stopping use an inner
20% validation split of the training part. The elastic-net Cox (scikit-survival Coxnet, alpha by
inner 5-fold CV) sees exactly the genes Cox-PASNet's mask uses, plus age. The clinical-only Cox
(lifelines) uses age. Harrell's C on the 30% held-out part; mean +- sd over splits.

Cohorts: TCGA STAD/BLCA/BRCA from ../shared/data/tcga (skipped when absent) and SurvSet's
gse1992/gse4335/gse3143 (gse3143 has no age: its models run on genes only and the clinical-only
Cox is n/a); or, with ``--cohort NAME`` (repeatable), any cohort ``pathviz.cohort.load_cohort``
accepts. Patients without an expression profile are left out BEFORE the splits, for every model
(:func:`pathviz.risk.restrict_to_omics`, ``missing_omics="exclude"``), and the count is printed.
Torch uses :func:`pathviz.settings.torch_threads` CPU threads (``PATHVIZ_THREADS`` or the cores this
process may use). Prints the CPU training time of one Cox-PASNet fit (grid included) on the largest
cohort. Last line: ``coxpasnet_minus_coxnet_mean: +0.0XX`` (mean over cohorts of the per-cohort
mean difference).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lifelines import CoxPHFitter  # noqa: E402

from pathviz.cohort import available_cohorts, load_cohort  # noqa: E402
from pathviz.genomics import MAX_SIZE, MIN_SIZE, default_library  # noqa: E402
from pathviz.risk.coxpasnet import CoxPASNetModel  # noqa: E402
from pathviz.risk import CoxnetRiskModel, omics_coverage_text, restrict_to_omics, train_validation_split  # noqa: E402
from pathviz.settings import torch_threads  # noqa: E402
from pathviz.survival import harrell_c  # noqa: E402

COHORTS = ["tcga_stad", "tcga_blca", "tcga_brca", "gse1992", "gse4335", "gse3143"]


def run_cohort(name: str, repeats: int, library) -> dict:
    c, coverage = restrict_to_omics(load_cohort(name), "exclude", "Cox-PASNet")  # same patients for every model
    if coverage["n_no_omics"]:
        print(f"{name}: {omics_coverage_text(coverage)}", flush=True)
    clin = ["age"] if "age" in c.clinical.columns else []
    out = {"coxpasnet": [], "coxnet": [], "clinical": [], "fit_seconds": []}
    for seed in range(repeats):
        tr, va = train_validation_split(c.event, 0.3, seed)
        t0 = time.perf_counter()
        m = CoxPASNetModel(library, clin, device="cpu")
        m.config.seed = seed
        m.fit(c.clinical[tr], c.omics, c.time[tr], c.event[tr])
        out["fit_seconds"].append(time.perf_counter() - t0)
        cv = lambda r: harrell_c(c.time[va], c.event[va], r).c_index  # noqa: E731
        out["coxpasnet"].append(cv(m.predict_risk(c.clinical[va], c.omics)))
        genes = c.omics[m.genes_]
        en = CoxnetRiskModel(clin, use_genes=True, max_genes=len(m.genes_), seed=seed)
        en.fit(c.clinical[tr], genes, c.time[tr], c.event[tr])
        out["coxnet"].append(cv(en.predict_risk(c.clinical[va], genes)))
        if clin:
            d = c.clinical[clin].astype(float)
            d = d.fillna(d[tr].median())
            cph = CoxPHFitter().fit(d[tr].assign(time=c.time[tr], event=c.event[tr]), "time", "event")
            out["clinical"].append(cv(cph.predict_log_partial_hazard(d[va]).to_numpy()))
    out.update(n=c.n, events=c.n_events, pathways=len(m.pathways_), genes=len(m.genes_), **coverage)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--cohort", action="append", default=None, metavar="NAME",
                    help="run on this cohort (any name load_cohort accepts; repeatable) instead of the default list")
    ap.add_argument("--out", default=None, help="results CSV (default results/genomic_models.csv, or "
                                                "results/genomic_models_<cohorts>.csv with --cohort)")
    args = ap.parse_args()
    if args.out is None:
        stem = "genomic_models" + ("_" + "_".join(args.cohort) if args.cohort else "")
        args.out = str(Path(__file__).parent / "results" / f"{stem}.csv")
    warnings.filterwarnings("ignore")
    import torch

    threads = torch_threads()
    torch.set_num_threads(threads)
    library = default_library("kegg").filter_size(MIN_SIZE, MAX_SIZE)
    cohorts = args.cohort or COHORTS
    here = set(available_cohorts()) if not args.cohort else set(cohorts)  # a named cohort: let load_cohort say what is wrong
    rows, diffs = [], []
    print(f"{args.repeats} stratified 70/30 splits per cohort; KEGG library ({len(library)} sets after 15-300 filter)")
    print(f"{'cohort':<11}{'n':>5}{'ev':>5}{'paths':>6}{'genes':>6}  {'Cox-PASNet':>15}  {'elastic net':>15}  {'clinical Cox':>15}  {'fit s':>6}")
    fmt = lambda v: f"{np.mean(v):.3f} +- {np.std(v, ddof=1):.3f}" if len(v) > 1 else "n/a"  # noqa: E731
    largest = None
    for name in cohorts:
        if name not in here:
            print(f"{name:<11} skipped (data absent)")
            continue
        r = run_cohort(name, args.repeats, library)
        print(f"{name:<11}{r['n']:>5}{r['events']:>5}{r['pathways']:>6}{r['genes']:>6}  {fmt(r['coxpasnet']):>15}  "
              f"{fmt(r['coxnet']):>15}  {fmt(r['clinical']):>15}  {np.mean(r['fit_seconds']):>6.1f}")
        diffs.append(np.mean(r["coxpasnet"]) - np.mean(r["coxnet"]))
        for model in ("coxpasnet", "coxnet", "clinical"):
            if r[model]:
                rows.append({"cohort": name, "model": model, "n": r["n"], "events": r["events"],
                             "n_excluded_no_omics": r["n_excluded_no_omics"],
                             "c_index_mean": np.mean(r[model]), "c_index_sd": np.std(r[model], ddof=1),
                             "splits": len(r[model])})
        if largest is None or r["n"] > largest[1]:
            largest = (name, r["n"], np.mean(r["fit_seconds"]))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(args.out, index=False)
    print(f"results -> {args.out}")
    if largest:
        print(f"cpu_training_seconds_largest_cohort ({largest[0]}, n={largest[1]}, {threads} threads, 5 bagged members x grid "
              f"of 4): {largest[2]:.1f}")
    wins = sum(d >= 0 for d in diffs)
    print(f"Cox-PASNet level with or above the elastic net on {wins} of {len(diffs)} cohorts")
    print(f"coxpasnet_minus_coxnet_mean: {np.mean(diffs):+.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
