"""PAGE-Net pieces: two-stage pooling by hand, pre-training on uncensored patients only, the
integration network's mask, the feature store."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pathviz.nn.pagenet import PAGENet, PatchCNN, patch_scores, two_stage_pool
from pathviz.errors import PathVizError
from pathviz.jobs.pagenet import cnn_input_px, k2_for, patient_split, pretraining_patients, shrink, three_way_split
from pathviz.store.features import FeatureStore


def test_two_stage_pooling_equals_hand_computation():
    maps = torch.tensor([
        [[[1.0, 2.0], [3.0, 0.0]], [[0.0, 0.0], [0.0, 4.0]]],   # patch 0: map 0, map 1
        [[[2.0, 2.0], [2.0, 2.0]], [[1.0, 1.0], [0.0, 0.0]]],   # patch 1
        [[[0.0, 5.0], [0.0, 0.0]], [[3.0, 0.0], [0.0, 0.0]]],   # patch 2
    ])
    # stage 1, K1 = 2: per patch and map, 3-norm of the 2 largest values
    s1 = patch_scores(maps, k1=2)
    hand1 = np.array([[(3**3 + 2**3) ** (1 / 3), 4.0], [(2**3 * 2) ** (1 / 3), (2.0) ** (1 / 3)], [5.0, 3.0]])
    np.testing.assert_allclose(s1.numpy(), hand1, rtol=1e-6)
    # stage 2, K2 = 2: per map, 3-norm of the 2 largest patch scores
    slide = two_stage_pool(maps, k1=2, k2=2)
    hand2 = [(5**3 + hand1[0, 0] ** 3) ** (1 / 3), (4**3 + 3**3) ** (1 / 3)]
    np.testing.assert_allclose(slide.numpy(), hand2, rtol=1e-6)


def test_pretraining_never_sees_censored_patients():
    rng = np.random.default_rng(0)
    event = rng.integers(0, 2, 200)
    pids = [f"P{i}" for i in range(200)]
    split = three_way_split(event, seed=1)
    chosen = pretraining_patients(pids, split, event, "train") + pretraining_patients(pids, split, event, "validation")
    ev = dict(zip(pids, event))
    assert chosen and all(ev[p] == 1 for p in chosen)
    assert {split[pids.index(p)] for p in chosen} <= {"train", "validation"}
    # split is stratified by event and seeded
    for part in ("train", "validation", "test"):
        assert abs(event[split == part].mean() - event.mean()) < 0.05
    assert (three_way_split(event, seed=1) == split).all()


def test_a_cohort_split_keeps_its_test_patients_and_resplits_the_rest():
    rng = np.random.default_rng(2)
    event = rng.integers(0, 2, 400)
    fixed = rng.choice(np.array(["train", "validation", "test"], dtype=object), 400, p=[0.6, 0.2, 0.2])
    a, b = patient_split(event, 0, fixed), patient_split(event, 1, fixed)
    assert ((a == "test") == (fixed == "test")).all() and ((b == "test") == (fixed == "test")).all()
    assert not (a == b).all()  # another split seed re-splits train / validation
    rest = fixed != "test"
    assert abs((a[rest] == "validation").mean() - 0.25) < 0.02
    assert abs(event[a == "validation"].mean() - event[rest].mean()) < 0.05  # stratified by event
    assert (patient_split(event, 0, fixed) == a).all()  # seeded
    assert (patient_split(event, 3) == three_way_split(event, 3)).all()  # no cohort split: 60/20/20


def test_cnn_input_resolution_and_pool_sizes():
    assert cnn_input_px(256, 0.5) == 64 and cnn_input_px(64, 1.0) == 32  # both at 2 um/px
    with pytest.raises(PathVizError, match="cannot be box-averaged.*256 px at 0.5"):
        cnn_input_px(250, 0.5)  # 62.5 px
    with pytest.raises(PathVizError, match="cannot be box-averaged"):
        cnn_input_px(16, 0.5)  # coarser than the CNN's resolution: 4 px
    assert k2_for(64) == 32 and k2_for(1) == 1 and k2_for(0) == 1


def test_patch_cnn_shapes_and_maps_non_negative():
    net = PatchCNN(patch=32).eval()
    x = torch.rand(4, 3, 32, 32)
    assert net(x).shape == (4,)
    maps = net.feature_maps(x)
    assert maps.shape == (4, 50, 4, 4) and (maps >= 0).all()


def test_pagenet_genome_mask_enforced():
    mask = np.zeros((6, 2), bool)
    mask[:3, 0] = mask[3:, 1] = True
    net = PAGENet(mask, n_maps=5, n_clinical=1)
    out = net(torch.randn(7, 5), torch.randn(7, 6), torch.randn(7, 1))
    out.sum().backward()
    w_grad = net.genome.pathway.weight.grad
    assert torch.all(w_grad[~torch.as_tensor(mask).T] == 0)


def test_shrink_box_average():
    p = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    s = shrink(p, 2)
    assert s.shape == (2, 2, 2, 3)
    assert s[0, 0, 0, 0] == round(p[0, :2, :2, 0].mean())


def test_feature_store_round_trip_and_versioning(ws, planted_tiff):
    rec = ws.add_slide(planted_tiff, copy=True)
    store = FeatureStore(ws, "v1")
    assert not store.has(rec.slide_id)
    store.save(rec.slide_id, np.zeros((3, 2), np.int64), np.ones((3, 50)), np.ones((3, 50, 4, 4)))
    back = store.load(rec.slide_id)
    assert back["maps"].dtype == np.float16 and back["scores"].shape == (3, 50)
    assert not FeatureStore(ws, "v2").has(rec.slide_id)  # a new model version never reads stale features


def _net_reading_map0() -> PAGENet:
    """A PAGE-Net whose index rises with slide feature 0 only (genome and map 1 silenced)."""
    mask = np.ones((4, 1), bool)
    net = PAGENet(mask, n_maps=2, n_clinical=1).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.path_hidden.weight[0, 0] = 1.0
        net.cox.weight[0, 0] = 2.0
    return net


def test_patch_contributions_flag_the_patches_that_drive_risk():
    from pathviz.explain.pagenet import patch_contributions

    scores = np.array([[0.1, 5.0], [0.2, 0.0], [3.0, 0.1], [0.0, 0.0], [2.5, 4.0]], np.float32)  # [patches, maps]
    per_patch, per_map = patch_contributions(_net_reading_map0(), scores, np.zeros(2), np.ones(2), np.zeros(4), np.zeros(1), k2=2)
    assert per_map.shape == (5, 2) and np.allclose(per_map[:, 1], 0)  # map 1 does not move the index
    assert set(np.argsort(-per_patch)[:2]) == {2, 4}  # the two high map-0 patches
    assert per_patch[[0, 1, 3]] == pytest.approx(0)  # outside map 0's top-K2: no contribution


def test_pagenet_pathway_ranking_finds_the_pathway_the_index_reads():
    from pathviz.explain.pagenet import pagenet_pathway_ranking

    mask = np.zeros((6, 3), bool)
    mask[0:2, 0] = mask[2:4, 1] = mask[4:6, 2] = True
    net = PAGENet(mask, n_maps=2, n_clinical=1).eval()
    with torch.no_grad():
        net.genome.pathway.weight.mul_(torch.as_tensor(mask.T, dtype=torch.float32))
        net.genome.pathway.weight[0] = 0.0  # pathways 0 and 2 carry no signal
        net.genome.pathway.weight[2] = 0.0
    rng = np.random.default_rng(0)
    table = pagenet_pathway_ranking(net, rng.normal(size=(30, 2)), rng.normal(size=(30, 6)), rng.normal(size=(30, 1)), mask,
                                    ["P0", "P1", "P2"], [f"G{i}" for i in range(6)]).table
    assert table["pathway"].iloc[0] == "P1" and table["importance"].iloc[1] == pytest.approx(0, abs=1e-9)
