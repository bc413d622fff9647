"""Cox-PASNet: a pathway-based sparse deep network for survival (Hao et al., BMC Bioinformatics
2018; the genome-specific layers of PAGE-Net, seed 000 section 2.3).

Architecture: gene layer -> pathway layer (a :class:`~pathviz.nn.layers.MaskedLinear` following
the gene x pathway mask, so every pathway node is a named pathway) -> H1 (100) -> H2 (30) -> Cox
layer on ``[H2, clinical]`` giving the prognostic index (no bias: the baseline hazard absorbs it).
The clinical weights start from the clinical-only Cox fit on the same training rows and are not
L2-penalised, so the network learns the genomic risk on top of the known clinical factors (with
the seed's uniform treatment, TCGA networks under-used age and fell below a clinical-only Cox).
tanh activations; dropout 0.7 after the pathway layer and 0.5 after H1 (the seed's rates); L2
weight decay; Adam; early stopping on the validation C-index; a small grid over learning rate and
L2 chosen on validation data. The seed's sparse coding is available as ``sparse_coding=True``:
after each epoch, the weights of H1/H2 whose magnitude is below the ``sparsity`` quantile of their
layer are set to zero (small sub-networks are trained in turn by the dropout masks).
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from pathviz.nn.layers import MaskedLinear
from pathviz.nn.losses import cox_partial_likelihood_loss
from pathviz.survival.concordance import harrell_c

#: Learning-rate and L2 grids searched on each bagged member's inner validation split, by
#: :class:`pathviz.risk.coxpasnet.CoxPASNetModel` and PAGE-Net (:func:`pathviz.nn.pagenet.fit_pagenet_ensemble`).
LR_GRID: tuple[float, ...] = (3e-3, 1e-2)
L2_GRID: tuple[float, ...] = (1e-4, 1e-2)
#: Share of the training patients held out (stratified by event) as each member's inner validation
#: split, which drives early stopping and the grid choice.
INNER_VALIDATION_FRACTION = 0.2


class CoxPASNet(nn.Module):
    """The network (see module docstring).

    Args:
        mask: ``bool[n_genes, n_pathways]``.
        n_clinical: number of clinical covariates joined at the Cox layer (age at least).
        h1, h2: hidden sizes (seed: 100, 30).
        dropout_pathway, dropout_h1: dropout rates (seed: 0.7, 0.5).
    """

    def __init__(self, mask, n_clinical: int, h1: int = 100, h2: int = 30, dropout_pathway: float = 0.7,
                 dropout_h1: float = 0.5):
        super().__init__()
        self.pathway = MaskedLinear(torch.as_tensor(mask))
        n_path = self.pathway.mask.shape[0]
        self.h1 = nn.Linear(n_path, h1)
        self.h2 = nn.Linear(h1, h2)
        self.cox = nn.Linear(h2, 1, bias=False)
        # clinical covariates reach the Cox layer directly, with their own (unpenalised) weights
        self.cox_clinical = nn.Linear(n_clinical, 1, bias=False) if n_clinical else None
        self.drop_pathway = nn.Dropout(dropout_pathway)
        self.drop_h1 = nn.Dropout(dropout_h1)
        self.n_clinical = n_clinical

    def pathway_nodes(self, genes: torch.Tensor) -> torch.Tensor:
        """Pathway-layer activations ``float[n, n_pathways]`` (tanh)."""
        return torch.tanh(self.pathway(genes))

    def forward_from_pathways(self, p: torch.Tensor, clinical: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """From pathway-node activations ``p`` ``float[n, n_pathways]`` and clinical covariates
        ``float[n, n_clinical]``: ``(prognostic index float[n], {"pathway", "h1", "h2"} activations)``."""
        a1 = torch.tanh(self.h1(self.drop_pathway(p)))
        a2 = torch.tanh(self.h2(self.drop_h1(a1)))
        risk = self.cox(a2).squeeze(1)
        if self.cox_clinical is not None:
            risk = risk + self.cox_clinical(clinical).squeeze(1)
        return risk, {"pathway": p, "h1": a1, "h2": a2}

    def forward(self, genes: torch.Tensor, clinical: torch.Tensor) -> torch.Tensor:
        """Prognostic index ``float[n]`` (higher = worse)."""
        return self.forward_from_pathways(self.pathway_nodes(genes), clinical)[0]

    def hidden(self, genes: torch.Tensor, clinical: torch.Tensor) -> dict:
        """All node activations (pathway, h1, h2) for interpretation (eval mode)."""
        return self.forward_from_pathways(self.pathway_nodes(genes), clinical)[1]

    @torch.no_grad()
    def sparse_code(self, sparsity: float) -> None:
        """Zero the smallest-magnitude ``sparsity`` fraction of H1/H2 weights (seed's sparse coding)."""
        for layer in (self.h1, self.h2):
            w = layer.weight
            thr = torch.quantile(w.abs().flatten(), sparsity)
            w.mul_((w.abs() >= thr).to(w.dtype))


def adam_with_free_clinical(net: nn.Module, clinical_layer: nn.Linear | None, lr: float, l2: float,
                            init_clinical=None) -> torch.optim.Adam:
    """Adam with L2 ``l2`` on every parameter except the clinical covariates' Cox weights, which
    start at ``init_clinical`` (e.g. the clinical-only Cox coefficients) and are not penalised.
    Shared by Cox-PASNet and PAGE-Net."""
    if init_clinical is not None and clinical_layer is not None:
        with torch.no_grad():
            clinical_layer.weight.copy_(torch.as_tensor(np.asarray(init_clinical, np.float32)).reshape(1, -1))
    free = list(clinical_layer.parameters()) if clinical_layer is not None else []
    other = [p for p in net.parameters() if all(p is not q for q in free)]
    groups = [{"params": other, "weight_decay": l2}] + ([{"params": free, "weight_decay": 0.0}] if free else [])
    return torch.optim.Adam(groups, lr=lr)


@dataclass
class TrainConfig:
    """Training hyper-parameters (recorded with every trained model). ``lr`` / ``l2`` are a single
    run's values; :class:`~pathviz.risk.coxpasnet.CoxPASNetModel` replaces them by each point of
    :data:`LR_GRID` x :data:`L2_GRID`. ``max_epochs`` / ``patience`` are also PAGE-Net's defaults."""

    lr: float = 1e-3
    l2: float = 1e-3
    max_epochs: int = 300
    patience: int = 40
    h1: int = 100
    h2: int = 30
    dropout_pathway: float = 0.7
    dropout_h1: float = 0.5
    sparse_coding: bool = False
    sparsity: float = 0.5
    ties: str = "efron"
    seed: int = 0


@dataclass
class TrainResult:
    """Best validation C-index, the epoch it was reached, epochs run, seconds, device."""

    val_c_index: float
    best_epoch: int
    epochs: int
    seconds: float
    device: str
    history: list[tuple[int, float, float]] = field(default_factory=list)  # (epoch, train loss, val C)


def train_coxpasnet(mask: np.ndarray, genes_tr: np.ndarray, clin_tr: np.ndarray, t_tr: np.ndarray, e_tr: np.ndarray,
                    genes_va: np.ndarray, clin_va: np.ndarray, t_va: np.ndarray, e_va: np.ndarray,
                    cfg: TrainConfig, device: str = "cpu", init_clinical=None) -> tuple[CoxPASNet, TrainResult]:
    """Train one network full-batch with Adam; keep the weights of the best validation C-index.

    ``init_clinical``: starting weights of the clinical covariates at the Cox layer (e.g. the
    clinical-only Cox coefficients); those weights carry no L2 penalty.

    Arrays: genes ``float32[n, n_genes]`` (z-scored), clinical ``float32[n, n_clinical]``,
    times in months, events 0/1.
    """
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    net = CoxPASNet(mask, clin_tr.shape[1], cfg.h1, cfg.h2, cfg.dropout_pathway, cfg.dropout_h1).to(device)
    opt = adam_with_free_clinical(net, net.cox_clinical, cfg.lr, cfg.l2, init_clinical)
    as_t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32), device=device)  # noqa: E731
    Gtr, Ctr, Ttr, Etr = as_t(genes_tr), as_t(clin_tr), as_t(t_tr), as_t(e_tr)
    Gva, Cva = as_t(genes_va), as_t(clin_va)
    best_c, best_epoch, best_state = -1.0, 0, None
    history = []
    epoch = 0
    for epoch in range(1, cfg.max_epochs + 1):
        net.train()
        opt.zero_grad()
        loss = cox_partial_likelihood_loss(net(Gtr, Ctr), Ttr, Etr, cfg.ties)
        loss.backward()
        opt.step()
        net.pathway.project()
        if cfg.sparse_coding:
            net.sparse_code(cfg.sparsity)
        net.eval()
        with torch.no_grad():
            risk_va = net(Gva, Cva).cpu().numpy()
        c = harrell_c(t_va, e_va, risk_va).c_index if np.ptp(risk_va) > 0 else 0.5
        history.append((epoch, float(loss.item()), float(c)))
        if c > best_c + 1e-6:
            best_c, best_epoch, best_state = c, epoch, copy.deepcopy(net.state_dict())
        elif epoch - best_epoch >= cfg.patience:
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return net, TrainResult(float(best_c), best_epoch, epoch, time.perf_counter() - t0, device, history)


def config_dict(cfg: TrainConfig) -> dict:
    """``cfg`` as a JSON-ready dict."""
    return asdict(cfg)


class CoxPASNetEnsemble(nn.Module):
    """Members trained on different inner train/validation splits; the prognostic index is the
    mean of the members' indices (bagging, in the spirit of the seed's training of randomly
    selected small sub-networks; it steadies the noisy early stopping on small validation sets)."""

    def __init__(self, members: list[CoxPASNet]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, genes: torch.Tensor, clinical: torch.Tensor) -> torch.Tensor:
        """Mean prognostic index of the members: ``float[n]``."""
        return torch.stack([m(genes, clinical) for m in self.members]).mean(dim=0)
