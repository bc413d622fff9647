"""The planted-truth benchmark cohort generator v3 (issue 13): deterministic per seed, disjoint tile pools,
no colour shortcut, interactions detectable with the true groups, ground truth never needed by
model code."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pathviz.cohort.benchmark import (
    BACKGROUND, DENSE, SETTINGS, Settings, apply_stain, dense_at_edge, elastic_jitter, file_digest, generate, interaction_power, layout,
    load_benchmark_cohort, matched_tiles, parse_layout, simulate_cohort)
from pathviz.cohort.tissue import (OTHER, PLANTED, POOLS, match_colour, read_annotation, read_source, reference_colours,
                                   source_key, tile_pools)


@pytest.fixture(scope="module")
def sources(demo_svs, demo_png):
    from pathviz.jobs.demo import DEMO_FILES

    return {source_key(i): read_source(p) for i, p in zip(DEMO_FILES, (demo_svs, demo_png))}


@pytest.fixture(scope="module")
def small(sources, tmp_path_factory):
    out = tmp_path_factory.mktemp("bm") / "s3"
    generate(out, sources, seed=3, patients=14)
    return out


def test_annotation_is_frozen_and_documented():
    doc = read_annotation()
    prov = doc["properties"]["provenance"]
    assert "nuclei" in prov and "pools" in prov and prov["tile_px"] == 128 and prov["mpp"] == 0.5
    assert all(len(v["sha256"]) == 64 for v in prov["sources"].values())
    import hashlib

    assert hashlib.sha256(json.dumps(doc["features"], sort_keys=True).encode()).hexdigest() == doc["properties"][
        "sha256_of_features"]  # the classes are the checked-in ones, unedited


def test_pools_share_no_source_region(sources):
    pools = tile_pools(sources)
    by_pool = {p: set(pools.regions[pools.pools == p]) for p in POOLS}
    assert not (by_pool["train"] & by_pool["validation"]) and not (by_pool["train"] & by_pool["test"])
    assert not (by_pool["validation"] & by_pool["test"])
    for p in POOLS:
        for cls in (PLANTED, OTHER):
            assert len(pools.index(p, cls)) >= 8, (p, cls)


def test_each_slide_draws_only_from_its_split_pool(sources, small):
    pools = tile_pools(sources)
    pool_of = dict(zip(pools.names, pools.pools))
    truth = json.loads((small / "ground_truth.json").read_text())
    assert {p["split"] for p in truth["patients"].values()} <= set(POOLS)
    for p in truth["patients"].values():
        assert p["source_tiles"] and {pool_of[n] for n in p["source_tiles"]} == {p["split"]}


def test_generator_is_deterministic_per_seed(sources, small, tmp_path):
    again = tmp_path / "again"
    generate(again, sources, seed=3, patients=14)
    assert file_digest(again) == file_digest(small)
    other = simulate_cohort(4, 14)
    assert not np.allclose(other["outcomes"]["time"], simulate_cohort(3, 14)["outcomes"]["time"])


def test_colour_matched_classes_have_equal_colour(sources):
    """Before the random stain jitter every tile is made of exactly the reference's colours: the
    two classes' mean optical density is equal to 1e-9 per channel (the unmatched sources differ
    by 0.1 or more), and so is mean haematoxylin by colour deconvolution."""
    from skimage.color import rgb2hed

    pools = tile_pools(sources)
    matched = matched_tiles(pools)
    od = -np.log(np.clip(matched.astype(float), 1, 255) / 255.0).mean(axis=(1, 2))
    raw = -np.log(np.clip(pools.tiles.astype(float), 1, 255) / 255.0).mean(axis=(1, 2))
    dense = pools.classes == PLANTED
    assert np.abs(od[dense].mean(0) - od[~dense].mean(0)).max() < 1e-9
    assert np.abs(raw[dense].mean(0) - raw[~dense].mean(0)).max() > 0.1
    h = np.array([rgb2hed(t)[..., 0].mean() for t in matched[:: max(1, len(matched) // 20)]])
    assert np.ptp(h) < 1e-9
    colours = reference_colours(pools.tiles[0])
    for t in (pools.tiles[1], pools.tiles[-1]):
        m = match_colour(t, colours).reshape(-1, 3)
        key = lambda a: a[np.lexsort(a.T[::-1])]  # noqa: E731 - rows sorted
        assert np.array_equal(key(m), key(colours))


def test_colour_statistics_cannot_tell_the_classes_on_generated_slides(small):
    """Tile-level AUROC of each mean colour statistic, and of all six together, stays near 0.5 on
    the written (JPEG RGB 4:4:4) slides, within a slide: each slide's mean is taken out, since
    slides carry their centre's staining and centres differ in dense fraction (the planted centre
    confounding, which a pointing game within a slide never sees)."""
    import openslide
    from sklearn.metrics import roc_auc_score

    truth = json.loads((small / "ground_truth.json").read_text())
    feats, labels = [], []
    for pid, p in truth["patients"].items():
        cls = parse_layout(p["tile_classes"])
        with openslide.OpenSlide(str(small / "slides" / f"{pid}.tif")) as osr:
            img = np.asarray(osr.read_region((0, 0), 0, osr.dimensions).convert("RGB")).astype(float)
        for r, c in zip(*np.nonzero(cls != BACKGROUND)):
            tile = img[r * 128:(r + 1) * 128, c * 128:(c + 1) * 128]
            feats.append([*tile.reshape(-1, 3).mean(0), *(-np.log(np.clip(tile, 1, 255) / 255)).reshape(-1, 3).mean(0)])
            labels.append(cls[r, c] == DENSE)
        n = int((cls != BACKGROUND).sum())
        feats[-n:] = list(np.array(feats[-n:]) - np.array(feats[-n:]).mean(0))
    feats, labels = np.array(feats), np.array(labels)
    aucs = [roc_auc_score(labels, feats[:, k]) for k in range(feats.shape[1])]
    assert max(abs(a - 0.5) for a in aucs) < 0.08, aucs
    # jointly too: a logistic regression on the six means, fitted on half of the tiles
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    half = np.arange(len(labels)) % 2 == 0
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(feats[half], labels[half])
    assert abs(roc_auc_score(labels[~half], lr.decision_function(feats[~half])) - 0.5) < 0.1


def test_layout_is_contiguous_with_background_and_requested_fraction():
    rng = np.random.default_rng(0)
    g = layout(rng, 0.7, 0.3)
    tissue = g != BACKGROUND
    assert abs(tissue.mean() - 0.7) < 0.01 and abs((g == DENSE).sum() / tissue.sum() - 0.3) < 0.02
    from scipy.ndimage import label

    n_blobs = label(g == DENSE)[1]
    assert n_blobs <= 6  # blobs of several tiles, not salt and pepper (~77 dense tiles)
    assert 0.0 <= dense_at_edge(g) <= 1.0 and dense_at_edge(np.ones((4, 4), np.int8)) == 0.0


def test_planted_couplings_and_outcome_model(small):
    sim = simulate_cohort(0, 300)
    genes, expr, frac = sim["genes"], sim["expression"], sim["covariates"]["dense_fraction"]
    r = {g: np.corrcoef(expr[:, genes.index(g)], frac)[0, 1] for g in (*SETTINGS.epithelial_genes, *SETTINGS.stromal_genes,
                                                                       *SETTINGS.control_genes)}
    assert min(r[g] for g in SETTINGS.epithelial_genes) > 0.4 and max(r[g] for g in SETTINGS.stromal_genes) < -0.4
    assert max(abs(r[g]) for g in SETTINGS.control_genes) < 0.2
    # centre confounds: it shifts the dense fraction and the hazard
    centres = sim["covariates"]["centre"]
    assert frac[centres == "C"].mean() - frac[centres == "A"].mean() > 0.1
    from pathviz.survival import harrell_c

    o = sim["outcomes"]
    assert harrell_c(o["time"], o["event"], sim["model"]["lp"]).c_index > 0.62
    assert 0.5 < o["event"].mean() < 0.85


def test_interactions_detectable_with_true_groups_and_null_holds():
    sim = simulate_cohort(0, 500)
    power = interaction_power(sim, n_sim=40, redraw_assignment=True)  # the design's power, not one draw's
    assert power["ca19_9"] >= 0.8 and power["treatment"] >= 0.75  # 0.975 / 0.885 over 200 draws
    null = Settings(coef={**SETTINGS.coef, "ca19_9_high_in_low_risk": 0.0, "treatment_in_high_risk": 0.0})
    sim0 = simulate_cohort(0, 500, null)
    p0 = interaction_power(sim0, n_sim=30, settings=null)
    assert p0["ca19_9"] <= 0.2 and p0["treatment"] <= 0.2  # about alpha = 0.05


def test_models_never_need_the_ground_truth(small, tmp_path, monkeypatch):
    """Everything a model reads loads and trains with ground_truth.json moved away."""
    import shutil

    from pathviz.risk.stratify import stratify_by_risk

    copy = tmp_path / "cohort"
    shutil.copytree(small, copy, ignore=shutil.ignore_patterns("ground_truth.json", "slides"))
    assert not (copy / "ground_truth.json").exists()
    cohort = load_benchmark_cohort(copy)
    assert "split" not in cohort.clinical_covariates() and "slide" not in cohort.clinical_covariates()
    assert {"time", "event", "os_time", "os_event"} <= cohort.outcome_columns
    strat = stratify_by_risk(cohort, evaluate_on="all", check_groups=False)
    assert np.isfinite(strat.table["risk"]).all()


def test_elastic_jitter_moves_pixels_smoothly_and_keeps_the_colours(sources):
    """The deformation is real (most pixels move), smooth (neighbours move alike), bounded and
    adds no colour: every output pixel is one of the tile's own pixels."""
    pools = tile_pools(sources)
    tile = matched_tiles(pools)[0]
    out = elastic_jitter(tile, np.random.default_rng(1), SETTINGS.elastic_px)
    assert out.shape == tile.shape and not np.array_equal(out, tile)
    own = {tuple(c) for c in tile.reshape(-1, 3)}
    assert all(tuple(c) in own for c in out.reshape(-1, 3)[::7])
    # where the tile is displaced: a coordinate image shows displacements of a few px, smoothly varying
    coords = np.stack(np.mgrid[0:128, 0:128], -1).astype(np.uint8)
    moved = elastic_jitter(np.concatenate([coords, np.zeros((128, 128, 1), np.uint8)], -1), np.random.default_rng(1),
                           SETTINGS.elastic_px)[..., :2].astype(int) - coords
    assert 0.5 < np.abs(moved).mean() < 3 * SETTINGS.elastic_px and np.abs(np.diff(moved, axis=0)).mean() < 0.5
    assert np.array_equal(elastic_jitter(tile, np.random.default_rng(1), 0.0), tile)


def test_centre_stain_scales_haematoxylin_and_eosin_by_colour_deconvolution(sources, small):
    """``apply_stain`` scales the H and E amounts that scikit-image's colour deconvolution measures
    (a check with an independent implementation); (1, 1) is the identity; the generated cohort
    records each slide's factors and the centres differ as :data:`SETTINGS` says."""
    from skimage.color import rgb2hed

    tile = tile_pools(sources).tiles[3]
    assert np.array_equal(apply_stain(tile, (1.0, 1.0)), tile)
    h0, e0 = rgb2hed(tile)[..., 0].mean(), rgb2hed(tile)[..., 1].mean()
    hed = rgb2hed(apply_stain(tile, (1.2, 0.8)))
    assert hed[..., 0].mean() / h0 == pytest.approx(1.2, rel=0.05)
    assert hed[..., 1].mean() / e0 == pytest.approx(0.8, rel=0.05)
    sim = simulate_cohort(0, 300)
    from pathviz.cohort.benchmark import centre_stain

    draws = {c: np.array([centre_stain(np.random.default_rng(k), c) for k in range(200)]) for c in "ABC"}
    for c, (fh, fe) in SETTINGS.centre_stain.items():
        assert np.exp(np.log(draws[c]).mean(0)) == pytest.approx((fh, fe), rel=0.02)
    assert set(sim["centres"]) == set(SETTINGS.centre_stain)
    truth = json.loads((small / "ground_truth.json").read_text())
    for p in truth["patients"].values():
        fh, fe = SETTINGS.centre_stain[p["centre"]]
        assert abs(np.log(p["stain_factors"][0] / fh)) < 4 * SETTINGS.centre_stain_sd
        assert abs(np.log(p["stain_factors"][1] / fe)) < 4 * SETTINGS.centre_stain_sd
