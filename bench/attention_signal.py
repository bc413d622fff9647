"""Does attention find what was planted? Gated attention MIL and RNA-to-patch cross-attention (issue
14) on the planted-truth benchmark cohort, beside their pooling baselines, the clinical-only Cox
model, chance and the ceiling.

``--cohort-seed N`` uses (or builds) the bench workspace of ``bench/planted_signal.py``
(``$PATHVIZ_HOME/bench/planted_v<version>_s<seed>_n<patients>``), extracts the patch features once
(feature store v2; resumable) and trains each model with ``--seeds`` split seeds, settings frozen
in :mod:`pathviz.jobs.mil` (chosen on cohort seed 0). Reported per split seed and as mean (sd):

* test C-index (one slide per patient: WSI-level = case-level) of the model, its comparator (mean
  pooling / averaging fusion) and the clinical-only Cox model;
* pointing game: the share of each test slide's top-10 attended patches that are planted, with
  chance and ceiling (the colour baselines' pointing is in ``bench/results/planted_signal_v3.txt``:
  +0.04 / +0.06 over chance on seeds 1 / 2);
* the same pointing game for the patch risk score layer (each patch's score on the risk scale,
  whose attention-weighted mean is the slide's risk: :func:`pathviz.nn.mil.predict_patch_scores`);
* cross-attention's RNA-conditioning check: with the query's program pathway (the generator's
  immune program) set to +2 and to -2 SD, the share of test patients whose attention on planted
  patches is higher with the program high (the planted direction: dense tissue matters more in
  program-high tumours); 0.5 = no conditioning.

Last lines: ``best_attention_pointing: X.XX`` and ``crossattn_minus_averaging_fusion: +X.XXX``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark_cohort import run_timed, throttled_report  # noqa: E402
from planted_signal import bench_workspace, pointing_of  # noqa: E402

from pathviz.cohort.benchmark import PATCH, SETTINGS, parse_layout, patch_classes  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cohort-seed", type=int, default=1)
    ap.add_argument("--patients", type=int, default=SETTINGS.patients)
    ap.add_argument("--seeds", type=int, default=5, help="split seeds")
    ap.add_argument("--demo", action="store_true", help="use $PATHVIZ_HOME's own demo cohort (development: seed 0)")
    args = ap.parse_args()
    import torch

    from pathviz.cohort.demo import read_ground_truth
    from pathviz.jobs.mil import train_mil_model
    from pathviz.nn.mil import predict
    from pathviz.settings import Settings, torch_threads

    torch.set_num_threads(torch_threads())
    if args.demo:
        from pathviz.store.workspace import Workspace
        ws = Workspace(Settings.from_env())
    else:
        ws = bench_workspace(Settings.from_env().home, args.cohort_seed, args.patients)
    truth = read_ground_truth(ws.home / "cohorts" / "demo")  # the bench reads the truth; models never do
    program = truth["program_pathway"]
    rows = []
    for kind in ("attention_mil", "crossattn"):
        for seed in range(args.seeds):
            keep: dict = {}
            with tempfile.TemporaryDirectory() as out:
                m = train_mil_model(ws, out, "demo", kind, seed=seed, keep=keep,
                                    progress=throttled_report(f"{kind} split seed {seed}", 60))
            te = keep["split"] == "test"
            hits, risk_hits, chance, ceiling, planted_of = [], [], [], [], {}
            for i in np.flatnonzero(te):
                pid = keep["pids"][i]
                sid = keep["sids"][pid]
                classes = parse_layout(truth["patients"][pid]["tile_classes"])
                p, ch, ce = pointing_of(ws, sid, ws.model_layer(sid, "attention", {m["layer_tag"]}), classes)
                hits.append(p)
                risk_hits.append(pointing_of(ws, sid, ws.model_layer(sid, "patch_risk", {m["layer_tag"]}), classes)[0])
                chance.append(ch)
                ceiling.append(ce)
                dense = patch_classes(classes)
                planted_of[i] = np.array([dense[int(y) // PATCH, int(x) // PATCH] >= 2 for x, y in keep["coords"][sid]])
            row = {"model": kind, "split_seed": seed, "c_index": m["test_c_index"][kind],
                   "comparator": m["test_c_index"][m["comparator"]], "clinical": m["test_c_index"]["clinical"],
                   "pointing": np.mean(hits), "pointing_patch_risk": np.mean(risk_hits),
                   "chance": np.mean(chance), "ceiling": np.mean(ceiling),
                   "rna_conditioning": np.nan, "seconds": m["seconds"]}
            if kind == "crossattn" and program in keep["rna_names"]:
                j = keep["rna_names"].index(program)
                mass = {}
                for v in (2.0, -2.0):
                    q = keep["rna"].copy()
                    q[:, j] = v
                    _, att = predict(keep["model"], keep["X"], keep["M"], q, keep["device"])
                    mass[v] = np.array([att[i, :len(planted_of[i])][planted_of[i]].sum() for i in planted_of])
                row["rna_conditioning"] = float(np.mean(mass[2.0] > mass[-2.0]))
            rows.append(row)
            print(pd.DataFrame([row]).round(3).to_string(index=False, header=len(rows) == 1), flush=True)
    df = pd.DataFrame(rows)
    print(f"\n{args.seeds} split seeds, cohort seed {args.cohort_seed} ({int(te.sum())} test patients; encoder: "
          f"{m['encoder']['notice']}):")
    summary = df.drop(columns=["split_seed"]).groupby("model").agg(["mean", "std"]).round(3)
    print(summary.T.to_string())
    mean = df.groupby("model").mean(numeric_only=True)
    sd = df.groupby("model").std(numeric_only=True)
    best = mean["pointing"].max()
    print(f"\nchance_pointing: {mean['chance'].iloc[0]:.2f}")
    print(f"best_patch_risk_pointing: {mean['pointing_patch_risk'].max():.2f}")
    print(f"best_attention_pointing: {best:.2f}")
    diff = df[df.model == "crossattn"]["c_index"].to_numpy() - df[df.model == "crossattn"]["comparator"].to_numpy()
    print(f"crossattn_minus_averaging_fusion: {diff.mean():+.3f} (sd {diff.std(ddof=1):.3f}); crossattn C "
          f"{mean.loc['crossattn', 'c_index']:.3f} (sd {sd.loc['crossattn', 'c_index']:.3f})")
    print(f"crossattn_rna_conditioning: {mean.loc['crossattn', 'rna_conditioning']:.2f}")
    return 0


if __name__ == "__main__":
    run_timed(main)
