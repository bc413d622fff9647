"""Can an encoder's patch features see the planted tissue at all? A linear probe (issue 14).

Attention can only point at what the features separate. This bench extracts (or reuses) the patch
features of a planted-truth cohort with the MIL settings frozen in :mod:`pathviz.jobs.mil`, labels
each patch planted or not from the generator's ground truth (>= 2 of its 4 tiles dense, as the
pointing game counts), and fits a logistic regression with slides grouped into 5 folds (no slide in
both train and test). Printed per feature set: patch-level AUROC mean (sd over folds), beside

* colour statistics (per-patch RGB mean and sd, and the same centred on each slide's mean, which
  removes what centre staining reveals): the no-learning baseline;
* chance (0.5).

A probe AUROC near the colour baseline means the features carry no more of the tissue than colour
does, and no attention head on them can point at it; a high probe AUROC with attention at chance
means the failure is in learning from survival, not in the features.

``--encoder`` takes the names of :func:`pathviz.nn.encoders.build_encoder`; ``--weights`` a local
file. Uses ``$PATHVIZ_HOME``'s demo cohort unless ``--cohort-seed`` names a bench workspace of
``bench/planted_signal.py``. Last line: ``probe_auroc_minus_colour: +X.XX``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark_cohort import run_timed  # noqa: E402

from pathviz.cohort.benchmark import PATCH, parse_layout, patch_classes  # noqa: E402


def planted_labels(coords: np.ndarray, tile_classes) -> np.ndarray:
    """``bool[n_patches]``: the patch at level-0 ``coords`` has >= 2 of its 4 tiles dense."""
    dense = patch_classes(parse_layout(tile_classes))
    return np.array([dense[int(y) // PATCH, int(x) // PATCH] >= 2 for x, y in coords])


def probe(X: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int = 5) -> list[float]:
    """Held-out AUROC per fold of a standardised logistic regression, slides grouped."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    out = []
    for tr, te in GroupKFold(folds).split(X, y, groups):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
        clf.fit(X[tr], y[tr])
        out.append(float(roc_auc_score(y[te], clf.predict_proba(X[te])[:, 1])))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cohort-seed", type=int, default=None, help="a bench workspace's cohort seed (default: the demo)")
    ap.add_argument("--patients", type=int, default=None)
    ap.add_argument("--slides", type=int, default=120, help="slides probed (the first N patients)")
    ap.add_argument("--encoder", default=None)
    ap.add_argument("--weights", default=None)
    args = ap.parse_args()
    import torch

    from pathviz.cohort import load_cohort
    from pathviz.cohort.benchmark import SETTINGS
    from pathviz.cohort.demo import read_ground_truth
    from pathviz.jobs import mil
    from pathviz.jobs.features import extract_features
    from pathviz.jobs.pagenet import cnn_patches, slide_ids_for
    from pathviz.nn.encoders import build_encoder
    from pathviz.settings import Settings, torch_device, torch_threads
    from pathviz.store.workspace import Workspace

    torch.set_num_threads(torch_threads())
    home = Settings.from_env().home
    if args.cohort_seed is None:
        ws = Workspace(Settings.from_env(home))
    else:
        from planted_signal import bench_workspace
        ws = bench_workspace(home, args.cohort_seed, args.patients or SETTINGS.patients)
    import os
    os.environ["PATHVIZ_HOME"] = str(ws.home)
    truth = read_ground_truth(ws.home / "cohorts" / "demo")
    cohort = load_cohort("demo")
    pids = list(cohort.clinical.index)[: args.slides]
    sids = slide_ids_for(ws, ws.home / "cohorts" / "demo", cohort.clinical["slide"])
    name = args.encoder or mil.ENCODER
    enc = build_encoder(name, args.weights, device=torch_device(), seed=0,
                        input_px=mil.ENCODER_INPUT_PX if name.startswith("resnet") else None)
    t0 = time.perf_counter()
    _, feats = extract_features(ws, [sids[p] for p in pids], enc, mil.READ_MPP, True)
    print(f"features: {enc.describe()['notice']} ({time.perf_counter() - t0:.0f} s)", flush=True)
    X, C, Cc, y, g = [], [], [], [], []
    for k, p in enumerate(pids):
        f = feats[sids[p]]
        X.append(f["features"])
        y.append(planted_labels(f["coords"], truth["patients"][p]["tile_classes"]))
        small, _ = cnn_patches(ws, sids[p], lambda gr: mil.ENCODER_INPUT_PX, stain_normalise=False)
        px = small.reshape(len(small), -1, 3).astype(np.float32)
        col = np.concatenate([px.mean(1), px.std(1)], axis=1)
        C.append(col)
        Cc.append(col - col.mean(0, keepdims=True))
        g.append(np.full(len(f["coords"]), k))
    X, C, Cc, y, g = (np.concatenate(a) for a in (X, C, Cc, y, g))
    print(f"{len(pids)} slides, {len(y)} patches, planted share {y.mean():.2f}")
    rows = {"encoder features": probe(X, y, g), "colour statistics": probe(C, y, g),
            "colour statistics, slide-centred": probe(Cc, y, g)}
    for k, v in rows.items():
        print(f"{k:36s} AUROC {np.mean(v):.3f} (sd {np.std(v, ddof=1):.3f})")
    best_colour = max(np.mean(rows["colour statistics"]), np.mean(rows["colour statistics, slide-centred"]))
    print(f"probe_auroc: {np.mean(rows['encoder features']):.2f}")
    print(f"probe_auroc_minus_colour: {np.mean(rows['encoder features']) - best_colour:+.2f}")
    return 0


if __name__ == "__main__":
    run_timed(main)
