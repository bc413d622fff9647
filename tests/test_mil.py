"""Patch encoders, attention MIL and cross-attention (issue 14): attention sums to 1 per bag,
cross-attention follows its RNA query and ignores patch order, the per-patient Cox loss is
pathviz.nn's, planted signal is recovered, weights load safely (a pickle payload is refused)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from pathviz.errors import PathVizError
from pathviz.nn.losses import cox_partial_likelihood_loss
from pathviz.nn.mil import (BagTrainConfig, CrossAttentionFusion, GatedAttentionMIL, MeanFusion, bag_cox_loss, pad_bags,
                            predict, predict_patch_scores, sample_mask, train_bag_model)


def _bags(seed=0, n=6, dim=8):
    rng = np.random.default_rng(seed)
    return pad_bags([rng.normal(size=(int(rng.integers(3, 12)), dim)).astype(np.float32) for _ in range(n)])


@pytest.mark.parametrize("make", [lambda d: GatedAttentionMIL(d, 16, 8), lambda d: CrossAttentionFusion(d, 5, 16),
                                  lambda d: MeanFusion(d, 5, 16)])
def test_attention_sums_to_one_per_bag_and_is_zero_on_padding(make):
    x, m = _bags()
    rna = np.random.default_rng(1).normal(size=(len(x), 5)).astype(np.float32)
    risk, att = predict(make(x.shape[2]), x, m, rna)
    assert risk.shape == (len(x),) and att.shape == m.shape
    assert np.allclose(att.sum(1), 1.0, atol=1e-6) and np.all(att[~m] == 0) and np.all(att[m] > 0)


def test_patch_scores_decompose_the_risk_additively():
    """Javed et al. 2022: risk = sum_k a_k s_k (gated MIL, mean pooling); cross-attention adds an
    RNA term that does not depend on the patches, and its scores do not depend on the query."""
    torch.manual_seed(0)
    x, m = _bags(n=5, dim=8)
    rna = np.random.default_rng(1).normal(size=(len(x), 5)).astype(np.float32)
    for model in (GatedAttentionMIL(8, 16, 8), MeanFusion(8, 0, 16)):
        risk, att = predict(model, x, m)
        s = predict_patch_scores(model, x, m)
        assert np.all(s[~m] == 0) and np.allclose((att * s).sum(1), risk, atol=1e-5)
    model = CrossAttentionFusion(8, 5, 16)
    rest = []
    for q in (rna, -rna):
        risk, att = predict(model, x, m, q)
        rest.append(risk - (att * predict_patch_scores(model, x, m)).sum(1))
    x2 = x.copy()
    x2[m] += 1.0  # other patches, the same RNA: the RNA term stays
    risk2, att2 = predict(model, x2, m, rna)
    assert np.allclose(risk2 - (att2 * predict_patch_scores(model, x2, m)).sum(1), rest[0], atol=1e-5)
    assert np.abs(rest[0] - rest[1]).max() > 1e-4  # and it is the query's


def test_cross_attention_follows_the_query_and_ignores_patch_order():
    torch.manual_seed(0)
    x, m = _bags(n=1, dim=8)
    model = CrossAttentionFusion(8, 5, 16).eval()
    rna = np.random.default_rng(2).normal(size=(1, 5)).astype(np.float32)
    r1, a1 = predict(model, x, m, rna)
    r2, a2 = predict(model, x, m, -rna)
    assert abs(r1[0] - r2[0]) > 1e-4 and np.abs(a1 - a2).max() > 1e-4  # another query, another answer
    n = int(m[0].sum())
    perm = np.random.default_rng(3).permutation(n)
    xp = x.copy()
    xp[0, :n] = x[0, perm]
    r3, a3 = predict(model, xp, m, rna)
    assert r3[0] == pytest.approx(r1[0], abs=1e-5) and np.allclose(a3[0, :n], a1[0, :n][perm], atol=1e-6)


def test_per_patient_cox_loss_is_pathviz_nn_loss_on_the_same_risks():
    x, m = _bags(n=9)
    rng = np.random.default_rng(4)
    t = torch.tensor(rng.exponential(10, 9), dtype=torch.float32)
    e = torch.tensor(rng.random(9) < 0.7, dtype=torch.float32)
    t[3] = t[5]  # a tie
    model = GatedAttentionMIL(8, 16, 8).eval()
    xt, mt = torch.from_numpy(x), torch.from_numpy(m)
    with torch.no_grad():
        risk, _ = model(xt, mt)
        assert float(bag_cox_loss(model, xt, mt, None, t, e)) == pytest.approx(
            float(cox_partial_likelihood_loss(risk, t, e)), abs=1e-6)
    # the risk set is the whole batch of patients: dropping the censored patient followed longest
    # (in the risk set of every event) changes the loss
    keep = torch.ones(9, dtype=torch.bool)
    censored = torch.nonzero(e == 0).ravel()
    keep[int(censored[torch.argmax(t[censored])])] = False
    with torch.no_grad():
        assert float(bag_cox_loss(model, xt[keep], mt[keep], None, t[keep], e[keep])) != pytest.approx(
            float(bag_cox_loss(model, xt, mt, None, t, e)), abs=1e-6)


def test_sample_mask_keeps_at_most_b_real_patches():
    x, m = _bags(n=20)
    sub = sample_mask(torch.from_numpy(m), 4, torch.Generator().manual_seed(0)).numpy()
    assert np.all(sub <= m) and np.all(sub.sum(1) == np.minimum(m.sum(1), 4))


def _planted(n=240, seed=0, dim=16, rna_switch=False, shift=2.0):
    """Bags of 24 patches of three types: 'A' patches carry +shift on feature 0, 'B' patches on
    feature 1, and both carry their patient's grade of that type on feature 2 (gA, gB ~ N(0, 1)).
    The hazard follows gA (or, with ``rna_switch``, gA when the RNA program is high and gB when it
    is low): a model must attend to the right type to read it, since pooling all patches mixes the
    two grades."""
    rng = np.random.default_rng(seed)
    bags, labels = [], []
    g = rng.normal(size=(n, 2))
    program = rng.normal(size=n)
    for i in range(n):
        kind = rng.choice(3, 24, p=[0.3, 0.3, 0.4])  # 0 = A, 1 = B, 2 = other
        f = rng.normal(size=(24, dim)).astype(np.float32)
        f[kind == 0, 0] += shift
        f[kind == 1, 1] += shift
        f[kind == 0, 2] += g[i, 0]
        f[kind == 1, 2] += g[i, 1]
        bags.append(f)
        labels.append(kind)
    driver = np.where(program > 0, g[:, 0], g[:, 1]) if rna_switch else g[:, 0]
    t = rng.exponential(np.exp(-1.5 * driver))
    c = rng.exponential(2.0, n)
    x, m = pad_bags(bags)
    rna = np.stack([program, rng.normal(size=n), rng.normal(size=n)], 1).astype(np.float32)
    return x, m, rna, np.minimum(t, c), (t <= c).astype(int), labels, program


def test_gated_attention_mil_recovers_planted_patches():
    """Hazard follows the grade of type-A patches: the model finds it (test C > 0.7; measured 0.80)
    and its top-3 attended patches are mostly type A (chance 0.3; measured 0.77)."""
    from pathviz.survival import harrell_c

    x, m, _, t, e, labels, _ = _planted(n=400)
    idx = np.arange(len(x))
    tr, va, te = idx % 5 < 3, idx % 5 == 3, idx % 5 == 4
    torch.manual_seed(0)
    model, info = train_bag_model(GatedAttentionMIL(16, 32, 16, dropout=0.1), x, m, None, t, e, tr, va,
                                  BagTrainConfig(epochs=150, lr=5e-3, weight_decay=1e-3, bag_size=16, patience=60))
    risk, att = predict(model, x, m)
    assert harrell_c(t[te], e[te], risk[te]).c_index > 0.7
    top = [labels[i][np.argsort(-att[i, :24])[:3]] for i in np.flatnonzero(te)]
    assert np.mean([np.mean(k == 0) for k in top]) > 0.6


def _a_minus_b(att, labels):
    return np.array([np.nanmean(np.where(lab == 0, a[:24], np.nan)) - np.nanmean(np.where(lab == 1, a[:24], np.nan))
                     for a, lab in zip(att, labels)])


def test_cross_attention_switches_its_attention_with_the_rna_program():
    """Hazard follows the A grade when the RNA program is high and the B grade when it is low: the
    cross-attention attends more to A in program-high patients than in program-low ones, and
    asking with the opposite program moves the attention (measured: A-minus-B weight +0.010 vs
    -0.021; moved for every program-high test patient; test C 0.59)."""
    from pathviz.survival import harrell_c

    x, m, rna, t, e, labels, program = _planted(n=400, seed=1, rna_switch=True)
    idx = np.arange(len(x))
    tr, va, te = idx % 5 < 3, idx % 5 == 3, idx % 5 == 4
    torch.manual_seed(0)
    model, _ = train_bag_model(CrossAttentionFusion(16, 3, 32, dropout=0.1), x, m, rna, t, e, tr, va,
                               BagTrainConfig(epochs=300, lr=5e-3, weight_decay=1e-4, bag_size=0, patience=100))
    risk, att = predict(model, x, m, rna)
    assert harrell_c(t[te], e[te], risk[te]).c_index > 0.55
    diff = _a_minus_b(att, labels)
    high, low = te & (program > 0.5), te & (program < -0.5)
    assert np.nanmean(diff[high]) > np.nanmean(diff[low]) + 0.01
    flipped = rna.copy()
    flipped[:, 0] *= -1
    moved = _a_minus_b(predict(model, x, m, flipped)[1], labels)
    assert np.mean(moved[high] < diff[high]) > 0.8


# -- encoders ----------------------------------------------------------------------------------
def _patches(n=5, px=64, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (n, px, px, 3), dtype=np.uint8)


def test_encoder_weights_round_trip_through_safetensors_and_state_dict(tmp_path):
    from safetensors.torch import save_file

    from pathviz.nn.encoders import build_encoder, sha256_of

    ref = build_encoder("resnet18", device="cpu", seed=7, input_px=64)
    assert ref.weights_sha256 is None and "randomly initialised" in ref.notice
    state = {f"module.{k}": v.clone() for k, v in ref.module.state_dict().items()}  # a DataParallel-style checkpoint
    state["fc.weight"] = torch.zeros(1000, 512)  # an ImageNet head the encoder drops
    pt, st = tmp_path / "r18.pt", tmp_path / "r18.safetensors"
    torch.save({"state_dict": state}, pt)
    save_file({k: v.contiguous() for k, v in state.items()}, str(st))
    want = ref.encode(_patches())
    for path in (pt, st):
        enc = build_encoder("resnet18", weights=path, device="cpu", seed=99, input_px=64)
        assert enc.weights_sha256 == sha256_of(path) and np.allclose(enc.encode(_patches()), want, atol=1e-5)
        assert enc.version(True) != ref.version(True) and enc.version(True) != enc.version(False)
    other = build_encoder("resnet18", device="cpu", seed=8, input_px=64)
    assert not np.allclose(other.encode(_patches()), want)


def test_a_weights_file_with_a_pickle_payload_is_refused_and_never_run(tmp_path):
    from pathviz.nn.encoders import build_encoder

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    bad = tmp_path / "evil.pt"
    bad.write_bytes(pickle.dumps({"conv1.weight": Payload()}))
    with pytest.raises(PathVizError, match="not a plain state dict"):
        build_encoder("resnet18", weights=bad, device="cpu")
    assert not marker.exists()
    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(PathVizError, match="not a readable safetensors"):
        build_encoder("resnet18", weights=tmp_path / "junk.safetensors", device="cpu")


def test_weights_of_another_architecture_and_unknown_names_are_refused_by_name(tmp_path):
    from pathviz.nn.encoders import build_encoder

    torch.save(build_encoder("pagenet_cnn", device="cpu").module.state_dict(), tmp_path / "cnn.pt")
    with pytest.raises(PathVizError, match="does not fit encoder 'resnet18'.*missing"):
        build_encoder("resnet18", weights=tmp_path / "cnn.pt", device="cpu")
    with pytest.raises(PathVizError, match="Unknown patch encoder 'vgg'.*resnet18"):
        build_encoder("vgg")
    with pytest.raises(PathVizError, match="timm has no model"):
        build_encoder("timm:no_such_model_xyz")


def test_pagenet_cnn_and_timm_encoders_by_name(tmp_path):
    from pathviz.nn.encoders import build_encoder
    from pathviz.nn.pagenet import PatchCNN

    torch.manual_seed(3)
    cnn = PatchCNN(patch=64)
    torch.save(cnn.state_dict(), tmp_path / "cnn.pt")  # as PAGE-Net saves it
    enc = build_encoder("pagenet_cnn", weights=tmp_path / "cnn.pt", device="cpu")
    x = _patches(3)
    with torch.no_grad():
        want = cnn.eval().feature_maps(torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255).mean(dim=(2, 3)).numpy()
    assert np.allclose(enc.encode(x), want, atol=1e-5)
    t = build_encoder("timm:resnet10t", device="cpu")
    assert t.encode(_patches(2, 96)).shape == (2, t.spec.dim) == (2, 512)
    assert t.spec.input_px == t.module.pretrained_cfg["input_size"][-1]  # the model's own input size
