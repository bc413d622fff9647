"""Does PAGE-Net find what was planted? PAGE-Net and Cox-PASNet on the planted-truth benchmark cohort
(generator v3, issue 13), beside the no-learning baselines, the oracles and chance.

``--cohort-seed N`` (default 1; cohort seed 0 is the development cohort every setting was chosen on,
other seeds are evaluation cohorts) builds that seed's cohort with ``--patients`` patients as the
demo cohort of a bench workspace, ``$PATHVIZ_HOME/bench/planted_v<version>_s<seed>_n<patients>`` (reusing
``$PATHVIZ_HOME/cohorts/benchmark_v<version>_s<seed>_n<patients>`` from ``bench/benchmark_cohort.py`` when
present, by hard links), registers and analyses its slides, then trains PAGE-Net (its frozen settings,
:mod:`pathviz.jobs.pagenet`) with ``--seeds`` split seeds. The test patients are the generator's
(their slides come from the test tile pool); each split seed re-splits the others into train /
validation and seeds every model draw. Reported per split seed and as mean (sd):

* test C-index of PAGE-Net, of its comparators (Cox-PASNet on genes + age, image-only
  elastic-net Cox on the pooled slide features, age-only Cox) and, beside them, of the no-learning
  baselines (colour statistics; the planted fraction measured by the best colour rule; clinical
  only: age, centre, log CA19-9, treatment), the main-effects oracle and the oracle;
* pointing game: the share of each test slide's top-10 ``survival_score`` patches that are planted
  (at least 2 of their 4 tiles dense), with chance (the share of planted patches among the grid's
  patches) and the ceiling; beside it the colour baselines and PathViz's own ``haematoxylin``
  layer (the shortcut of demo v1);
* correlation-aware pathway recovery: the rank of the planted pathway among the pathways whose
  score is not correlated with its score above |r| 0.5, and the best rank of its correlation
  cluster, in PAGE-Net's and in Cox-PASNet's ranking;
* the CA19-9 x group and treatment x group interaction p-values with PAGE-Net's groups (median cut
  fitted on train + validation) and with the true groups, and the design power of the true-group
  tests (:func:`pathviz.cohort.benchmark.interaction_power`).

Last lines: ``colour_baseline_pointing_minus_chance``, ``pagenet_pointing``,
``pagenet_pointing_minus_chance``, ``pagenet_cindex_minus_best_baseline`` (mean over split seeds of
PAGE-Net's test C minus the best no-learning baseline's) and ``true_group_interaction_power``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark_cohort import TOP, cohort_folder_name, colour_baselines, throttled_report  # noqa: E402

from pathviz.cohort.benchmark import PATCH, SETTINGS, interaction_power, parse_layout, patch_classes, simulate_cohort  # noqa: E402
from pathviz.survival import fit_cutoff, harrell_c, marker_by_stratum, treatment_by_stratum  # noqa: E402

CLUSTER_R = 0.5


def bench_workspace(home: Path, seed: int, patients: int):
    """The bench workspace of a cohort seed, its demo cohort built, registered and analysed."""
    from pathviz.jobs.demo import build_demo_cohort, demo_cohort_dir
    from pathviz.settings import Settings
    from pathviz.store.workspace import Workspace

    bench_home = home / "bench" / cohort_folder_name(seed, patients).replace("benchmark_", "planted_")
    os.environ["PATHVIZ_HOME"] = str(bench_home)  # load_cohort("demo") reads this workspace's demo cohort
    ws = Workspace(Settings.from_env(bench_home))
    built = home / "cohorts" / cohort_folder_name(seed, patients)
    target = demo_cohort_dir(ws)
    if not (target / "ground_truth.json").exists() and (built / "ground_truth.json").exists():
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(built, target, copy_function=os.link)
        print(f"cohort: {built} (hard-linked)", flush=True)
    t0 = time.perf_counter()
    build_demo_cohort(ws, throttled_report("cohort", 20), seed=seed, patients=patients)
    print(f"cohort ready in {ws.home} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return ws


def pathway_clusters(cohort, planted: str) -> tuple[set[str], list[str]]:
    """Pathways whose score (mean z-scored expression of their measured genes) correlates with the
    planted pathway's above |r| ``CLUSTER_R`` over all patients (the cluster, planted included), and
    every pathway scored."""
    from pathviz.genomics import default_library

    lib = default_library("kegg").filter_size()
    X = cohort.omics
    Z = (X - X.mean()) / (X.std() + 1e-9)
    scores = {}
    for gs in lib.sets:
        genes = [g for g in gs.genes if g in Z.columns]
        if len(genes) >= 5:
            scores[gs.name] = Z[genes].mean(axis=1).to_numpy()
    ref = scores[planted]
    cluster = {n for n, v in scores.items() if abs(np.corrcoef(ref, v)[0, 1]) > CLUSTER_R}
    return cluster | {planted}, list(scores)


def recovery(ranking: list[str], planted: str, cluster: set[str]) -> dict:
    """Rank (1 = first) of ``planted`` among the pathways outside its cluster, and the best rank of
    any cluster member in the full ranking (None when absent)."""
    if planted not in ranking:
        return {"rank": None, "rank_uncorrelated": None, "cluster_best_rank": None}
    kept = [p for p in ranking if p == planted or p not in cluster]
    return {"rank": ranking.index(planted) + 1, "rank_uncorrelated": kept.index(planted) + 1,
            "cluster_best_rank": min(ranking.index(p) + 1 for p in cluster if p in ranking)}


def pointing_of(ws, sid: str, layer, classes: np.ndarray) -> tuple[float, float, float]:
    """(pointing, chance, ceiling) of one slide: share of ``layer``'s top-``TOP`` patches that are
    planted (>= 2 of their 4 tiles dense), among the grid's patches."""
    grid = ws.grid(sid)
    dense = patch_classes(classes)
    planted = np.array([dense[int(y) // PATCH, int(x) // PATCH] >= 2 for x, y in grid.coords])
    top = layer.top_patches(TOP)
    return float(planted[top].mean()), float(planted.mean()), min(1.0, planted.sum() / TOP)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cohort-seed", type=int, default=1)
    ap.add_argument("--patients", type=int, default=SETTINGS.patients)
    ap.add_argument("--seeds", type=int, default=5, help="split seeds")
    ap.add_argument("--first-split-seed", type=int, default=0,
                    help="split seeds are FIRST .. FIRST + SEEDS - 1 (to add seeds to an earlier run)")
    ap.add_argument("--power-draws", type=int, default=200)
    args = ap.parse_args()
    import torch

    from pathviz.cohort import load_cohort
    from pathviz.cohort.demo import read_ground_truth
    from pathviz.jobs.pagenet import train_pagenet_model
    from pathviz.settings import Settings, torch_threads

    torch.set_num_threads(torch_threads())
    ws = bench_workspace(Settings.from_env().home, args.cohort_seed, args.patients)
    folder = ws.home / "cohorts" / "demo"
    cohort = load_cohort("demo")
    truth = read_ground_truth(folder)  # the bench reads the truth; models never do
    pids = list(cohort.clinical.index)
    t, e = cohort.time, cohort.event
    classes = {p: parse_layout(truth["patients"][p]["tile_classes"]) for p in pids}

    t0 = time.perf_counter()
    base = colour_baselines(folder, cohort, truth)
    print(f"\nno-learning baselines ({time.perf_counter() - t0:.0f} s):")
    print(base["pointing"].round(3).to_string(index=False))
    print(base["cindex"].round(3).to_string(index=False), flush=True)
    cidx = base["cindex"].set_index("model")["c_index"]
    no_learning = {k: v for k, v in cidx.items() if not k.startswith(("oracle", "main-effects", "true "))}
    best_name = max(no_learning, key=no_learning.get)
    best_c = no_learning[best_name]

    planted = truth["planted_pathway"]
    cluster, scored = pathway_clusters(cohort, planted)
    print(f"\nplanted pathway {planted}: correlation cluster (|r| > {CLUSTER_R}) of {len(cluster)} of {len(scored)} "
          f"pathways: {', '.join(sorted(cluster))}")
    true_groups = np.array([truth["patients"][p]["true_group"] for p in pids])

    rows = []
    patch_cache: dict = {}  # the slides as the CNN reads them, read once for every split seed
    for seed in range(args.first_split_seed, args.first_split_seed + args.seeds):
        with tempfile.TemporaryDirectory() as out:
            m = train_pagenet_model(ws, out, "demo", seed=seed, patch_cache=patch_cache,
                                    progress=throttled_report(f"PAGE-Net split seed {seed}", 60))
            table = pd.read_csv(Path(out) / "prognostic_index.csv").set_index("patient_id").loc[pids]
        te = (table["split"] == "test").to_numpy()
        hits, hae, chance, ceiling = [], [], [], []
        for pid in np.array(pids)[te]:
            sid = table.at[pid, "slide_id"]
            p, ch, ce = pointing_of(ws, sid, ws.model_layer(sid, "survival_score", {m["layer_tag"]}), classes[pid])
            hits.append(p)
            chance.append(ch)
            ceiling.append(ce)
            hae.append(pointing_of(ws, sid, ws.layer(sid, "haematoxylin"), classes[pid])[0])
        rec_pn = recovery(m["pagenet_pathway_ranking"], planted, cluster)
        rec_cp = recovery(m["coxpasnet_pathway_ranking"], planted, cluster)
        fit = ~te
        pi = table["prognostic_index"]
        groups = fit_cutoff(pi[fit], "median", fitted_on="training + validation").apply(pi)
        ca = marker_by_stratum(t, e, groups, cohort.clinical["ca19_9"], 37.0, "CA19-9").interaction_p
        tr = treatment_by_stratum(t, e, groups, cohort.clinical["treatment"]).interaction_p
        c = m["test_c_index"]
        held = m["held_out"]
        rows.append({"split_seed": seed, "pagenet": c["pagenet"], "pagenet_lo": held.get("lower"),
                     "pagenet_hi": held.get("upper"), "coxpasnet": c["coxpasnet"], "image_cox_en": c["image_cox_en"],
                     "age_cox": c["clinical"], "pointing": np.mean(hits), "chance": np.mean(chance),
                     "ceiling": np.mean(ceiling), "haematoxylin_pointing": np.mean(hae),
                     "pn_rank": rec_pn["rank"], "pn_rank_uncorrelated": rec_pn["rank_uncorrelated"],
                     "pn_cluster_best": rec_pn["cluster_best_rank"], "cpn_rank": rec_cp["rank"],
                     "cpn_rank_uncorrelated": rec_cp["rank_uncorrelated"], "cpn_cluster_best": rec_cp["cluster_best_rank"],
                     "ca19_9_p": ca, "treatment_p": tr, "cnn_val_mse": m["cnn"]["val_mse"], "seconds": m["seconds"]})
        print(pd.DataFrame(rows[-1:]).round(3).to_string(index=False, header=len(rows) == 1), flush=True)
    df = pd.DataFrame(rows)
    print(f"\nPAGE-Net over {len(df)} split seeds ({int(te.sum())} test patients, pathways ranked of "
          f"{len(m['pagenet_pathway_ranking'])}):")
    print(df.round(3).to_string(index=False))
    summary = df.drop(columns=["split_seed"]).agg(["mean", "std"]).T
    print(summary.round(3).to_string())
    ca_t = marker_by_stratum(t, e, true_groups, cohort.clinical["ca19_9"], 37.0, "CA19-9").interaction_p
    tr_t = treatment_by_stratum(t, e, true_groups, cohort.clinical["treatment"]).interaction_p
    print(f"\ninteraction p with the true groups: CA19-9 x group {ca_t:.2g}, treatment x group {tr_t:.2g}")
    power = interaction_power(simulate_cohort(args.cohort_seed, args.patients), n_sim=args.power_draws,
                              redraw_assignment=True)
    print(f"design power of the true-group tests ({power['n_sim']} draws): CA19-9 {power['ca19_9']:.2f}, "
          f"treatment {power['treatment']:.2f}")
    print(f"best no-learning baseline: {best_name} (C {best_c:.3f}); main-effects oracle "
          f"{cidx['main-effects oracle']:.3f}; oracle {cidx['oracle (true log-hazard)']:.3f}")
    gap = df["pagenet"] - best_c
    print(f"\ncolour_baseline_pointing_minus_chance: {base['best']['minus_chance']:.2f}")
    print(f"pagenet_pointing: {df['pointing'].mean():.2f}")
    print(f"pagenet_pointing_minus_chance: {(df['pointing'] - df['chance']).mean():.2f}")
    print(f"pagenet_cindex_minus_best_baseline: {gap.mean():+.3f} (sd {gap.std():.3f})")
    print(f"true_group_interaction_power: {min(power['ca19_9'], power['treatment']):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
