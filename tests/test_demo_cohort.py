"""The multimodal demo cohort generator: deterministic, real OpenSlide slides, measurable truth."""

from __future__ import annotations

import hashlib

import numpy as np
import openslide
import pytest
from PIL import Image
from skimage.color import rgb2hed

from pathviz.cohort import load_survset
from pathviz.cohort.demo import DEMO_MPP, GRID, LABEL, TILE, generate, load_demo_cohort, read_ground_truth
from pathviz.genomics import default_library


@pytest.fixture(scope="module")
def sources(demo_svs, demo_png):
    with openslide.OpenSlide(str(demo_svs)) as osr:
        svs = np.asarray(osr.read_region((0, 0), 0, osr.dimensions).convert("RGB"))
    return [("svs", svs), ("png", np.asarray(Image.open(demo_png).convert("RGB")))]


@pytest.fixture(scope="module")
def small_inputs():
    gse = load_survset("gse1992")
    lib = default_library("kegg")
    return gse.omics.iloc[:8], gse.clinical["age"].to_numpy(float)[:8], ("KEGG_hsa04110", lib.get("KEGG_hsa04110").genes)


def digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_generator_is_deterministic_for_a_seed(tmp_path, sources, small_inputs):
    expr, ages, pathway = small_inputs
    a = generate(tmp_path / "a", sources, expr, ages, pathway, seed=3)
    b = generate(tmp_path / "b", sources, expr, ages, pathway, seed=3)
    c = generate(tmp_path / "c", sources, expr, ages, pathway, seed=4)
    assert a == b and digest(tmp_path / "a") == digest(tmp_path / "b")
    assert a["patients"] != c["patients"]


def test_openslide_reads_generated_slide_with_mpp(tmp_path, sources, small_inputs):
    expr, ages, pathway = small_inputs
    generate(tmp_path / "d", sources, expr, ages, pathway, seed=0)
    with openslide.OpenSlide(str(tmp_path / "d" / "slides" / "DEMO-001.tif")) as s:
        assert s.dimensions == (GRID * TILE, GRID * TILE)
        assert float(s.properties["openslide.mpp-x"]) == pytest.approx(DEMO_MPP)
        assert s.level_count >= 3
    cohort = load_demo_cohort(tmp_path / "d")
    assert cohort.semi_synthetic and cohort.markers == ["ca19_9"] and cohort.treatment == "treatment"
    assert "simulated outcomes" in LABEL and cohort.n == 8
    assert list(cohort.omics.columns[:3]) == list(expr.columns[:3])  # real profiles kept


def test_dense_tiles_are_measurably_nuclei_dense(tmp_path, sources, small_inputs):
    expr, ages, pathway = small_inputs
    truth = generate(tmp_path / "e", sources, expr, ages, pathway, seed=1)
    gaps = []
    for pid, info in truth["patients"].items():
        img = np.asarray(openslide.OpenSlide(str(tmp_path / "e" / "slides" / f"{pid}.tif")).read_region(
            (0, 0), 0, (GRID * TILE, GRID * TILE)).convert("RGB"))
        h = rgb2hed(img)[..., 0]
        dense = {(x, y) for x, y, _, _ in info["dense_tiles"]}
        vals = {(c * TILE, r * TILE): h[r * TILE:(r + 1) * TILE, c * TILE:(c + 1) * TILE].mean()
                for r in range(GRID) for c in range(GRID)}
        if dense and len(dense) < GRID * GRID:
            gaps.append(np.mean([v for k, v in vals.items() if k in dense]) - np.mean([v for k, v in vals.items() if k not in dense]))
    assert np.mean(gaps) > 0 and np.mean(np.array(gaps) > 0) >= 0.85


def test_ground_truth_documents_the_model(tmp_path, sources, small_inputs):
    expr, ages, pathway = small_inputs
    generate(tmp_path / "f", sources, expr, ages, pathway, seed=0)
    gt = read_ground_truth(tmp_path / "f")
    assert gt["planted_pathway"] == "KEGG_hsa04110" and len(gt["planted_pathway_genes"]) >= 10
    assert set(gt["coefficients"]) == {"dense_fraction", "pathway", "age", "ca19_9_high_in_low_risk", "treatment_in_high_risk"}
    for info in gt["patients"].values():
        assert info["true_group"] in ("low", "high") and info["centre"] in gt["centres"]
        assert info["dense_fraction"] == pytest.approx(len(info["dense_tiles"]) / GRID**2)
