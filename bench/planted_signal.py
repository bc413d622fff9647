"""Does PAGE-Net find what was planted in the demo cohort? (issue 5's measurement)

Runs on the workspace's demo cohort (``pathviz demo`` first) for ``--seeds`` split seeds (each
seed: its own 60/20/20 split, CNN pre-training, feature store version and integration ensemble):
* test C-index of PAGE-Net, Cox-PASNet (genes + age) and image-only elastic-net Cox on the pooled
  survival-discriminative features, next to two oracles: the C-index of the true simulated
  log-hazard (``oracle``, including the CA19-9 and treatment interaction terms) and of its main
  effects only (``oracle_main_effects``: dense fraction, planted pathway, age: the most any
  prognostic model without CA19-9 and treatment can reach);
* pointing game: the fraction of each test slide's top-10 flagged patches (``survival_score``)
  that are planted nuclei-dense tiles, with the chance level (the slide's dense fraction) and the
  ceiling (slides with fewer than 10 dense tiles cannot score 1) beside it;
* the rank of the planted pathway (of the KEGG pathways) in PAGE-Net's and in Cox-PASNet's ranking;
* the CA19-9 x risk and treatment x risk interaction p-values computed by the patient page's
  statistics on PAGE-Net's risk groups (median cut-off fitted on training + validation; all patients).
Last lines: ``pagenet_cindex_gap_to_main_effects_oracle`` and ``pagenet_cindex_gap_to_oracle``
(means over seeds).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pathviz.cohort import load_cohort  # noqa: E402
from pathviz.cohort.demo import read_ground_truth  # noqa: E402
from pathviz.survival import fit_cutoff, harrell_c, marker_by_stratum, treatment_by_stratum  # noqa: E402
from pathviz.jobs.pagenet import train_pagenet_model  # noqa: E402
from pathviz.store.workspace import Workspace  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    import torch

    from pathviz.settings import torch_threads

    torch.set_num_threads(torch_threads())  # PATHVIZ_THREADS, else the cores this process may use
    ws = Workspace()
    cohort = load_cohort("demo")
    truth = read_ground_truth(ws.home / "cohorts" / "demo")
    lp = np.array([truth["patients"][p]["lp"] for p in cohort.clinical.index])
    lp_main = np.array([truth["patients"][p]["lp_without_interactions"] for p in cohort.clinical.index])
    rows = []
    for seed in range(args.seeds):
        with tempfile.TemporaryDirectory() as out:
            m = train_pagenet_model(ws, out, seed=seed)
            table = pd.read_csv(Path(out) / "prognostic_index.csv").set_index("patient_id")
        te = (table["split"] == "test").to_numpy()
        oracle = harrell_c(cohort.time[te], cohort.event[te], lp[te]).c_index
        oracle_main = harrell_c(cohort.time[te], cohort.event[te], lp_main[te]).c_index
        hits, chance, ceiling = [], [], []
        for pid in table.index[te]:
            sid = table.at[pid, "slide_id"]
            layer, grid = ws.model_layer(sid, "survival_score", {m["layer_tag"]}), ws.grid(sid)
            dense = {(x, y) for x, y, _, _ in truth["patients"][pid]["dense_tiles"]}
            top = layer.top_patches(10)
            hits.append(np.mean([tuple(grid.rect(int(i))[:2]) in dense for i in top]))
            chance.append(truth["patients"][pid]["dense_fraction"])
            ceiling.append(min(1.0, len(dense) / 10))
        rank = {k: (m[k].index(truth["planted_pathway"]) + 1 if truth["planted_pathway"] in m[k] else None)
                for k in ("pagenet_pathway_ranking", "coxpasnet_pathway_ranking")}
        fit = (table["split"] != "test").to_numpy()
        cut = fit_cutoff(table["prognostic_index"][fit], "median", fitted_on="training + validation")
        groups = cut.apply(table["prognostic_index"])
        ca = marker_by_stratum(cohort.time, cohort.event, groups, cohort.clinical["ca19_9"], 37.0, "CA19-9")
        tr = treatment_by_stratum(cohort.time, cohort.event, groups, cohort.clinical["treatment"])
        c = m["test_c_index"]
        rows.append({"seed": seed, "oracle": oracle, "oracle_main_effects": oracle_main, "pagenet": c["pagenet"],
                     "coxpasnet": c["coxpasnet"], "image_cox_en": c["image_cox_en"], "pointing": np.mean(hits),
                     "chance": np.mean(chance), "pointing_ceiling": np.mean(ceiling),
                     "planted_rank": rank["pagenet_pathway_ranking"], "planted_rank_coxpasnet": rank["coxpasnet_pathway_ranking"],
                     "ca19_9_interaction_p": ca.interaction_p, "treatment_interaction_p": tr.interaction_p,
                     "seconds": m["seconds"]})
        print(pd.DataFrame(rows[-1:]).round(3).to_string(index=False, header=seed == 0), flush=True)
    df = pd.DataFrame(rows)
    print("\nall seeds:")
    print(df.round(3).to_string(index=False))
    print("mean:", df.drop(columns=["seed"]).mean().round(3).to_dict())
    print(f"pagenet_cindex_gap_to_main_effects_oracle: {(df['oracle_main_effects'] - df['pagenet']).mean():.3f}")
    print(f"pagenet_cindex_gap_to_oracle: {(df['oracle'] - df['pagenet']).mean():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
