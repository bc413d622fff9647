"""PAGE-Net (Hao et al., PSB 2020; seed 000): pathology + genome + demography survival network.

* :class:`PatchCNN` - the pathology-specific pre-trained CNN: three pairs of 5x5 dilated
  convolutions (dilation 2) each followed by 2x2 max-pooling and dropout 0.3, flatten, a dense
  layer and a linear output, pre-trained with MSE on survival time on patches of *uncensored*
  training patients only. The last pooling layer's ``N`` (seed: 50) feature maps are the
  survival-discriminative features. Channel widths before the last pair are reduced for CPU
  (16, 32, then 50 maps). Three documented additions to the seed, each measured on the demo cohort:
  per-channel input standardisation and batch normalisation after each convolution (without them
  12-33 of the 50 maps were dead - constant zero - and on 2 of 3 splits the CNN's prediction did
  not track the planted dense fraction), and reflect padding (zero padding gives the patch border
  a context of its own, which the maps can key on instead of tissue).
* :func:`two_stage_pool` - per map, the top-K1 values of each patch are 3-norm pooled (a patch
  score per map); per map, the top-K2 patches of a slide are 3-norm pooled (a slide score per
  map): an N-vector per slide (seed: N=50, M=1000 patches, K1=65, K2=100; scaled to the demo).
* :class:`PAGENet` - integration: pathology hidden layer (30, dropout 0.3) on the N slide scores,
  the Cox-PASNet genome layers (gene -> pathway mask -> H1 100 -> H2 30, dropout 0.7 / 0.5; shared
  code), and the clinical layer (age), joined at the Cox layer giving the prognostic index; tanh.
  :func:`fit_pagenet_ensemble` bags 5 such networks (as Cox-PASNet), each with its own inner
  validation split for early stopping and the learning-rate x L2 grid.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
from torch import nn

from pathviz.nn.coxpasnet import (
    INNER_VALIDATION_FRACTION,
    L2_GRID,
    LR_GRID,
    CoxPASNet,
    TrainConfig,
    adam_with_free_clinical,
)
from pathviz.nn.losses import cox_partial_likelihood_loss
from pathviz.survival.concordance import harrell_c
from pathviz.survival.splits import train_validation_split


class PatchCNN(nn.Module):
    """Patch-wise dilated CNN (see module docstring). Input ``float[n, 3, P, P]`` in [0, 1]."""

    def __init__(self, channels: tuple[int, int, int] = (16, 32, 50), patch: int = 64, dropout: float = 0.3, dense: int = 64,
                 batch_norm: bool = True, padding_mode: str = "reflect"):
        super().__init__()
        layers, c_in = [], 3
        norm = (lambda c: nn.BatchNorm2d(c)) if batch_norm else (lambda c: nn.Identity())
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 5, dilation=2, padding=4, padding_mode=padding_mode), norm(c), nn.ReLU(),
                       nn.Conv2d(c, c, 5, dilation=2, padding=4, padding_mode=padding_mode), norm(c), nn.ReLU(),
                       nn.MaxPool2d(2), nn.Dropout(dropout)]
            c_in = c
        # input standardisation (per channel), set from the pre-training patches
        self.register_buffer("input_mean", torch.full((1, 3, 1, 1), 0.5))
        self.register_buffer("input_std", torch.full((1, 3, 1, 1), 0.25))
        self.features = nn.Sequential(*layers)
        side = patch // 8
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels[-1] * side * side, dense), nn.ReLU(),
                                  nn.Linear(dense, 1))
        self.n_maps = channels[-1]

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        """The last pooling layer's maps ``float[n, N, P/8, P/8]`` (after ReLU, so >= 0). In eval
        mode dropout is off, so these are deterministic."""
        return self.features((x - self.input_mean) / self.input_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted (scaled) survival time ``float[n]``."""
        return self.head(self.feature_maps(x)).squeeze(1)


def p_norm_pool(x: torch.Tensor, dim: int, p: float = 3.0) -> torch.Tensor:
    """``(sum x^p)^(1/p)`` along ``dim`` (x >= 0): the seed's 3-norm pooling."""
    return x.clamp(min=0).pow(p).sum(dim=dim).pow(1.0 / p)


def patch_scores(maps: torch.Tensor, k1: int, p: float = 3.0) -> torch.Tensor:
    """Stage 1: per patch and map, p-norm of the top-``k1`` values: ``float[n_patches, N]``."""
    flat = maps.flatten(2)
    k = min(k1, flat.shape[2])
    return p_norm_pool(flat.topk(k, dim=2).values, dim=2, p=p)


def pool_patches(scores: torch.Tensor, k2: int, p: float = 3.0) -> torch.Tensor:
    """Stage 2: per map, p-norm of the top-``k2`` patch scores along the patch axis (dim -2):
    ``float[..., n_patches, N] -> float[..., N]`` (works on one slide or a batch of slides)."""
    k = min(k2, scores.shape[-2])
    return p_norm_pool(scores.topk(k, dim=-2).values, dim=-2, p=p)


def two_stage_pool(maps: torch.Tensor, k1: int, k2: int, p: float = 3.0) -> torch.Tensor:
    """Slide vector ``float[N]`` from one slide's patch maps ``float[n_patches, N, h, w]``:
    stage 1 (:func:`patch_scores`), then stage 2 (:func:`pool_patches`)."""
    return pool_patches(patch_scores(maps, k1, p), k2, p)


def pretrain_patch_cnn(patches: np.ndarray, targets: np.ndarray, val_patches: np.ndarray, val_targets: np.ndarray,
                       epochs: int = 8, lr: float = 1e-3, batch: int = 128, seed: int = 0, device: str = "cpu",
                       channels=(16, 32, 50), augment: bool = True) -> tuple[PatchCNN, dict]:
    """Pre-train the CNN with MSE on (scaled) survival time; early stopping on validation MSE.

    Args:
        patches: ``uint8[n, P, P, 3]`` patches of *uncensored* training patients only (the caller
            guarantees it: :func:`pathviz.jobs.pagenet.pretraining_patients`).
        targets: ``float[n]`` each patch's patient survival target (the PAGE-Net job uses the
            standardised log survival time of the patient).
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = PatchCNN(channels=channels, patch=patches.shape[1]).to(device)
    pix = patches[rng.choice(len(patches), min(len(patches), 2000), replace=False)].reshape(-1, 3) / 255.0
    net.input_mean.copy_(torch.as_tensor(pix.mean(0), dtype=torch.float32).view(1, 3, 1, 1))
    net.input_std.copy_(torch.as_tensor(pix.std(0) + 1e-3, dtype=torch.float32).view(1, 3, 1, 1))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.7)  # seed: decay 0.7 every 5 epochs
    to_x = lambda a: torch.as_tensor(a, device=device).permute(0, 3, 1, 2).float() / 255.0  # noqa: E731
    best, best_state, history = np.inf, None, []
    t0 = time.perf_counter()
    for epoch in range(epochs):
        net.train()
        order = rng.permutation(len(patches))
        for s in range(0, len(order), batch):
            idx = order[s : s + batch]
            opt.zero_grad()
            x = to_x(patches[idx])
            if augment:  # tissue has no orientation: random rotation by 90 degrees and flip per batch
                x = torch.rot90(x, int(rng.integers(4)), dims=(2, 3))
                x = x.flip(3) if rng.random() < 0.5 else x
            loss = nn.functional.mse_loss(net(x), torch.as_tensor(targets[idx], device=device).float())
            loss.backward()
            opt.step()
        sched.step()
        net.eval()
        with torch.no_grad():
            pred = torch.cat([net(to_x(val_patches[s : s + 512])) for s in range(0, len(val_patches), 512)]).cpu().numpy()
        mse = float(np.mean((pred - val_targets) ** 2))
        history.append(mse)
        if mse < best:
            best, best_state = mse, copy.deepcopy(net.state_dict())
    net.load_state_dict(best_state)
    net.eval()
    return net, {"val_mse": best, "epochs": epochs, "history": history, "seconds": time.perf_counter() - t0}


class PAGENet(nn.Module):
    """Integration network (see module docstring).

    Args:
        mask: ``bool[n_genes, n_pathways]``; n_maps: pathology features per slide (N);
        n_clinical: clinical covariates (age).
    """

    def __init__(self, mask, n_maps: int, n_clinical: int, h_path: int = 30, dropout_path: float = 0.3,
                 h1: int = 100, h2: int = 30, dropout_pathway: float = 0.7, dropout_h1: float = 0.5):
        super().__init__()
        self.genome = CoxPASNet(mask, 0, h1, h2, dropout_pathway, dropout_h1)
        self.path_hidden = nn.Linear(n_maps, h_path)
        self.drop_path = nn.Dropout(dropout_path)
        self.cox = nn.Linear(h_path + h2, 1, bias=False)
        self.cox_clinical = nn.Linear(n_clinical, 1, bias=False) if n_clinical else None

    def forward(self, slide_features: torch.Tensor, genes: torch.Tensor, clinical: torch.Tensor) -> torch.Tensor:
        """Prognostic index ``float[n]`` from slide features ``float[n, n_maps]``, genes
        ``float[n, n_genes]`` (z-scored) and clinical covariates ``float[n, n_clinical]``."""
        hp = torch.tanh(self.path_hidden(self.drop_path(slide_features)))
        empty = genes.new_zeros((genes.shape[0], 0))
        h2 = self.genome.hidden(genes, empty)["h2"]
        risk = self.cox(torch.cat([hp, h2], dim=1)).squeeze(1)
        if self.cox_clinical is not None:
            risk = risk + self.cox_clinical(clinical).squeeze(1)
        return risk


def train_pagenet(mask, S_tr, G_tr, C_tr, t_tr, e_tr, S_va, G_va, C_va, t_va, e_va, lr: float, l2: float,
                  max_epochs: int = TrainConfig.max_epochs, patience: int = TrainConfig.patience, seed: int = 0,
                  device: str = "cpu",
                  init_clinical=None, zero_cox: bool = True) -> tuple[PAGENet, float, int]:
    """Full-batch Adam with Efron Cox loss; best validation C-index kept. Returns (net, C, epoch).

    ``zero_cox``: the Cox layer's weights on the pathology and genome hidden units start at 0, so
    training starts from the clinical Cox model (``init_clinical``) rather than from a random
    index, and early stopping on a small validation set compares real gains, not init noise."""
    torch.manual_seed(seed)
    net = PAGENet(mask, S_tr.shape[1], C_tr.shape[1]).to(device)
    if zero_cox:
        with torch.no_grad():
            net.cox.weight.zero_()
    opt = adam_with_free_clinical(net, net.cox_clinical, lr, l2, init_clinical)
    T = lambda a: torch.as_tensor(np.asarray(a, np.float32), device=device)  # noqa: E731
    tr = [T(S_tr), T(G_tr), T(C_tr)]
    va = [T(S_va), T(G_va), T(C_va)]
    Ttr, Etr = T(t_tr), T(e_tr)
    best, best_state, best_epoch = -1.0, None, 0
    for epoch in range(1, max_epochs + 1):
        net.train()
        opt.zero_grad()
        cox_partial_likelihood_loss(net(*tr), Ttr, Etr).backward()
        opt.step()
        net.genome.pathway.project()
        net.eval()
        with torch.no_grad():
            r = net(*va).cpu().numpy()
        c = harrell_c(t_va, e_va, r).c_index if np.ptp(r) > 0 else 0.5
        if c > best + 1e-6:
            best, best_state, best_epoch = c, copy.deepcopy(net.state_dict()), epoch
        elif epoch - best_epoch >= patience:
            break
    net.load_state_dict(best_state)
    net.eval()
    return net, float(best), best_epoch


class PAGENetEnsemble(nn.Module):
    """Bagged PAGE-Net: the prognostic index ``float[n]`` is the mean of the members' indices (as
    :class:`~pathviz.nn.coxpasnet.CoxPASNetEnsemble`); layer attributions
    (:func:`pathviz.explain.pagenet.pagenet_pathway_ranking`) average over ``members``."""

    def __init__(self, members: list[PAGENet]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, slide_features: torch.Tensor, genes: torch.Tensor, clinical: torch.Tensor) -> torch.Tensor:
        """Mean prognostic index of the members: ``float[n]``."""
        return torch.stack([m(slide_features, genes, clinical) for m in self.members]).mean(0)


def fit_pagenet_ensemble(mask, S, G, C, t, e, grid_lr=LR_GRID, grid_l2=L2_GRID, n_members: int = 5, seed: int = 0,
                         device: str = "cpu", init_clinical=None,
                         validation_fraction: float = INNER_VALIDATION_FRACTION) -> tuple[PAGENetEnsemble, list[dict]]:
    """Bag ``n_members`` PAGE-Nets, each with its own stratified inner train/validation split of
    the given (non-test) patients and its own grid search over learning rate x L2 on that
    validation C-index (early stopping on it too). Arrays as :func:`train_pagenet`.

    Returns ``(ensemble, grid rows)``; each row: member, lr, l2, val_c_index, best_epoch.
    """
    members, rows = [], []
    for k in range(n_members):
        itr, iva = train_validation_split(np.asarray(e), validation_fraction, seed * 1000 + k)
        best = None
        for lr in grid_lr:
            for l2 in grid_l2:
                net, c_val, ep = train_pagenet(mask, S[itr], G[itr], C[itr], t[itr], e[itr], S[iva], G[iva], C[iva], t[iva],
                                               e[iva], lr, l2, seed=seed * 1000 + k, device=device, init_clinical=init_clinical)
                rows.append({"member": k, "lr": lr, "l2": l2, "val_c_index": c_val, "best_epoch": ep})
                if best is None or c_val > best[1]:
                    best = (net, c_val)
        members.append(best[0])
    return PAGENetEnsemble(members).to(device).eval(), rows
