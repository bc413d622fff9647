"""The planted-truth benchmark cohort (generator v3, issue 13): build time, and what a model could get without
learning anything.

Builds the cohort of ``--cohort-seed`` (``$PATHVIZ_HOME/cohorts/benchmark_v<version>_s<seed>_n<patients>``,
kept when present; cohort seed 0 is the development cohort, other seeds are evaluation cohorts)
and reports, on its held-out test patients (the generator's split; test slides come from the
test tile pool):

* the pointing game of every colour statistic (mean R, G, B, optical density per channel,
  haematoxylin, eosin of each 256 px patch) and of a logistic regression on per-patch colour
  histograms trained on the training slides' patches: the share of each test slide's top-10
  patches that are planted (at least half dense tiles), next to chance (the slide's share of
  planted patches) and the ceiling; each statistic's direction is chosen on the training slides;
* the C-index of image colour features alone (slide means of the patch statistics, and the
  planted fraction as measured by the best colour rule, each through a Cox model fitted on the
  training + validation patients), of the clinical-only Cox model (age, centre, CA19-9,
  treatment), of the true log-hazard (oracle) and of its main effects (main-effects oracle);
* the CA19-9 x group and treatment x group interaction p-values with the TRUE groups on this
  cohort, their power over ``--power-draws`` redrawn outcomes, and the design's power (treatment
  assignment and CA19-9 redrawn too).

Last lines: ``colour_baseline_pointing_minus_chance: X.XX`` (the best colour baseline; target <=
0.10), ``colour_baseline_cindex: X.XXX`` and ``true_group_interaction_power: X.XX`` (the smaller
of the two; target >= 0.8).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pathviz.cohort.benchmark import (  # noqa: E402
    GENERATOR_VERSION, SETTINGS, generate, interaction_power, load_benchmark_cohort, parse_layout, patch_classes, simulate_cohort)
from pathviz.cohort.tissue import read_sources  # noqa: E402
from pathviz.survival import harrell_c, marker_by_stratum, treatment_by_stratum  # noqa: E402
from pathviz.survival.concordance import harrell_c_bootstrap  # noqa: E402

STATS = ["R", "G", "B", "od_R", "od_G", "od_B", "haematoxylin", "eosin"]
TOP = 10
BINS = 16


def run_timed(main) -> None:
    """Run a bench's ``main()``, print its wall time as the last line (``seconds: N``), exit with its code."""
    t0 = time.perf_counter()
    code = main()
    print(f"seconds: {time.perf_counter() - t0:.0f}")
    sys.exit(code)


def throttled_report(label: str, every_s: float):
    """A progress callback ``(fraction, message)`` that prints at most once every ``every_s`` seconds."""
    last = [time.perf_counter()]

    def report(f: float, m: str) -> None:
        if time.perf_counter() - last[0] > every_s:
            print(f"  {label} {f:.0%}: {m}", flush=True)
            last[0] = time.perf_counter()

    return report


def cohort_folder_name(seed: int, patients: int) -> str:
    """``benchmark_v<generator version>_s<seed>_n<patients>``: a cohort of an earlier generator is
    never taken for the current one."""
    return f"benchmark_v{GENERATOR_VERSION}_s{seed}_n{patients}"


def build(home: Path, seed: int, patients: int) -> tuple[Path, float]:
    """The cohort folder (built when absent) and the build time in seconds (0 when kept)."""
    from pathviz.settings import Settings

    folder = home / "cohorts" / cohort_folder_name(seed, patients)
    if (folder / "ground_truth.json").exists():
        return folder, 0.0
    sources = read_sources(Settings.from_env().cache_dir)
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    t0 = time.perf_counter()
    generate(tmp, sources, seed=seed, patients=patients, progress=throttled_report("build", 15))
    secs = time.perf_counter() - t0
    tmp.replace(folder)
    return folder, secs


def patch_features(path: Path, level: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per 256 px patch (8 x 8): ``float[64, 8]`` colour statistics (:data:`STATS`) and
    ``float[64, 3 * BINS]`` per-channel histograms, at the slide's full resolution (0.5 um/px)."""
    import openslide
    from skimage.color import rgb2hed

    with openslide.OpenSlide(str(path)) as osr:
        img = np.asarray(osr.read_region((0, 0), level, osr.level_dimensions[level]).convert("RGB"))
    p = img.shape[0] // 8
    od = -np.log(np.clip(img.astype(np.float64), 1, 255) / 255.0)
    hed = rgb2hed(img)
    feats, hists = np.empty((64, len(STATS))), np.empty((64, 3 * BINS))
    for k in range(64):
        r, c = divmod(k, 8)
        sl = (slice(r * p, (r + 1) * p), slice(c * p, (c + 1) * p))
        block = img[sl].reshape(-1, 3)
        feats[k] = [*block.mean(0), *od[sl].reshape(-1, 3).mean(0), hed[sl][..., 0].mean(), hed[sl][..., 1].mean()]
        hists[k] = np.concatenate([np.histogram(block[:, ch], BINS, (0, 256))[0] for ch in range(3)]) / len(block)
    return feats, hists


def pointing(scores: np.ndarray, planted: np.ndarray, tissue: np.ndarray) -> float:
    """Share of the top-``TOP`` tissue patches by ``scores`` that are planted."""
    idx = np.flatnonzero(tissue)
    top = idx[np.argsort(-scores[idx], kind="stable")[:TOP]]
    return float(planted[top].mean())


def colour_baselines(folder: Path, cohort, truth: dict) -> dict:
    """The no-learning baselines of a generated cohort, on its test patients (the generator's split):
    ``pointing`` (DataFrame: each colour statistic and the colour-histogram logistic regression,
    pointing / chance / ceiling / minus_chance), ``best`` (its best row), ``cindex`` (DataFrame:
    colour statistics, the planted fraction by the best colour rule, clinical only, the oracles;
    C-index with 95% bootstrap CI) and ``n_test`` / ``n_fit`` patients."""
    pids = list(cohort.clinical.index)
    split = cohort.clinical["split"].to_numpy()
    t0 = time.perf_counter()
    F, H, planted, tissue, slide_of = [], [], [], [], []
    for i, pid in enumerate(pids):
        f, h = patch_features(folder / "slides" / f"{pid}.tif")
        cls = parse_layout(truth["patients"][pid]["tile_classes"])
        dense, tis = patch_classes(cls).ravel(), patch_classes(cls, None).ravel()
        F.append(f)
        H.append(h)
        planted.append(dense >= 2)
        tissue.append(tis >= 2)
        slide_of.append(np.full(64, i))
    F, H, planted, tissue = np.concatenate(F), np.concatenate(H), np.concatenate(planted), np.concatenate(tissue)
    slide_of = np.concatenate(slide_of)
    print(f"patch features of {len(pids)} slides: {time.perf_counter() - t0:.0f} s", flush=True)

    is_train = np.isin(slide_of, np.flatnonzero(split == "train"))
    test_slides = np.flatnonzero(split == "test")
    rows = []

    def evaluate(name: str, scores: np.ndarray) -> None:
        hits, chance, ceiling = [], [], []
        for s in test_slides:
            m = slide_of == s
            hits.append(pointing(scores[m], planted[m], tissue[m]))
            chance.append(planted[m & tissue].mean())
            ceiling.append(min(1.0, planted[m & tissue].sum() / TOP))
        rows.append({"baseline": name, "pointing": np.mean(hits), "chance": np.mean(chance),
                     "ceiling": np.mean(ceiling), "minus_chance": np.mean(hits) - np.mean(chance)})

    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    tr = is_train & tissue
    for k, name in enumerate(STATS):
        sign = 1.0 if roc_auc_score(planted[tr], F[tr, k]) >= 0.5 else -1.0  # direction chosen on training slides
        evaluate(f"mean {name} ({'high' if sign > 0 else 'low'})", sign * F[:, k])
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    X = np.hstack([F, H])
    lr.fit(X[tr], planted[tr])
    evaluate("logistic regression on colour histograms + means", lr.decision_function(X))
    table = pd.DataFrame(rows)
    best = table.loc[table["pointing"].idxmax()]

    # C-index on the test patients: colour features alone, clinical only, oracles
    from lifelines import CoxPHFitter

    fit = split != "test"
    te = split == "test"
    t, e = cohort.time, cohort.event
    slide_means = np.stack([F[(slide_of == i) & tissue].mean(0) for i in range(len(pids))])
    best_rule = best["baseline"]
    k_best = next((k for k, s in enumerate(STATS) if best_rule.startswith(f"mean {s} ")), None)
    if k_best is not None:
        sign = 1.0 if "(high)" in best_rule else -1.0
        score = sign * F[:, k_best]
        thr = np.quantile(score[tr], 1 - planted[tr].mean())
    else:
        score, thr = lr.decision_function(X), 0.0
    measured_fraction = np.array([(score[(slide_of == i) & tissue] > thr).mean() for i in range(len(pids))])

    def cox_c(X_: np.ndarray, label: str) -> dict:
        df = pd.DataFrame(X_, columns=[f"x{j}" for j in range(X_.shape[1])])
        df["T"], df["E"] = t, e
        m = CoxPHFitter(penalizer=0.1).fit(df[fit], "T", "E")
        risk = m.predict_partial_hazard(df[te]).to_numpy()
        c, lo, hi = harrell_c_bootstrap(t[te], e[te], risk, n_boot=500)
        return {"model": label, "c_index": c, "lower": lo, "upper": hi}

    clin = pd.get_dummies(cohort.clinical[["age", "centre", "ca19_9", "treatment"]], columns=["centre"], drop_first=True)
    clin["ca19_9"] = np.log1p(clin["ca19_9"])
    lp = np.array([truth["patients"][p]["lp"] for p in pids])
    lp_main = np.array([truth["patients"][p]["lp_main"] for p in pids])
    cs = [cox_c(slide_means, "colour statistics (slide means of 8 patch statistics)"),
          cox_c(measured_fraction[:, None], f"planted fraction by the best colour rule ({best_rule})"),
          cox_c(clin.to_numpy(float), "clinical only (age, centre, log CA19-9, treatment)"),
          cox_c(clin[[c for c in clin.columns if c.startswith("centre_")]].to_numpy(float),
                "centre alone (what slide staining can reveal)")]
    for label, r in (("oracle (true log-hazard)", lp), ("main-effects oracle", lp_main),
                     ("true dense fraction alone", np.array([truth["patients"][p]["dense_fraction"] for p in pids]))):
        c, lo, hi = harrell_c_bootstrap(t[te], e[te], r[te], n_boot=500)
        cs.append({"model": label, "c_index": c, "lower": lo, "upper": hi})
    return {"pointing": table, "best": best, "cindex": pd.DataFrame(cs), "n_test": int(te.sum()), "n_fit": int(fit.sum())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cohort-seed", type=int, default=1)
    ap.add_argument("--patients", type=int, default=SETTINGS.patients)
    ap.add_argument("--power-draws", type=int, default=200)
    args = ap.parse_args()
    from pathviz.settings import Settings

    home = Settings.from_env().home
    folder, secs = build(home, args.cohort_seed, args.patients)
    print(f"cohort {folder} (seed {args.cohort_seed}, {args.patients} patients): "
          + (f"built in {secs:.0f} s" if secs else "present, kept"), flush=True)
    cohort = load_benchmark_cohort(folder)
    import json

    truth = json.loads((folder / "ground_truth.json").read_text())  # the bench reads the truth; models never do
    pids = list(cohort.clinical.index)
    t, e = cohort.time, cohort.event
    base = colour_baselines(folder, cohort, truth)
    best, ctable = base["best"], base["cindex"]
    print("\nPointing game on test slides (top-10 patches; planted = at least half dense tiles):")
    print(base["pointing"].round(3).to_string(index=False))
    print(f"\nC-index on {base['n_test']} test patients (Cox fitted on {base['n_fit']} training + validation patients; "
          "95% bootstrap CI):")
    print(ctable.round(3).to_string(index=False))

    groups = np.array([truth["patients"][p]["true_group"] for p in pids])
    ca = marker_by_stratum(t, e, groups, cohort.clinical["ca19_9"], 37.0, "CA19-9").interaction_p
    trt = treatment_by_stratum(t, e, groups, cohort.clinical["treatment"]).interaction_p
    print(f"\ninteraction p with the true groups on this cohort: CA19-9 x group {ca:.2g}, treatment x group {trt:.2g}")
    t0 = time.perf_counter()
    sim = simulate_cohort(args.cohort_seed, args.patients)
    power = interaction_power(sim, n_sim=args.power_draws)
    print(f"power over {power['n_sim']} redrawn outcomes (alpha {power['alpha']}): CA19-9 {power['ca19_9']:.2f}, "
          f"treatment {power['treatment']:.2f}, both {power['both']:.2f} ({time.perf_counter() - t0:.0f} s)")
    design = interaction_power(sim, n_sim=args.power_draws, redraw_assignment=True)
    print(f"design power (treatment and CA19-9 redrawn too): CA19-9 {design['ca19_9']:.2f}, treatment "
          f"{design['treatment']:.2f}, both {design['both']:.2f}")
    print(f"\nbuild_seconds: {secs:.0f}")
    print(f"colour_baseline_cindex: {ctable.loc[0, 'c_index']:.3f}")
    print(f"colour_baseline_pointing_minus_chance: {best['minus_chance']:.2f}")
    print(f"true_group_interaction_power: {min(power['ca19_9'], power['treatment']):.2f}")
    print(f"true_group_interaction_design_power: {min(design['ca19_9'], design['treatment']):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
