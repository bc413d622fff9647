"""Bag models over a slide's patch features, with a Cox head (issue 14).

* :class:`GatedAttentionMIL`: gated attention pooling (Ilse, Tomczak & Welling, "Attention-based
  deep multiple instance learning", ICML 2018, eq. 9):
  ``a_k = softmax_k(w^T (tanh(V h_k) * sigmoid(U h_k)))``, slide vector ``z = sum_k a_k h_k``,
  then a linear Cox head (the log relative hazard).
* :class:`CrossAttentionFusion`: seed 003's fusion. The patient's RNA profile, projected, is the
  query; the patch features, projected, are the keys and values; scaled dot-product attention
  with a softmax over the patient's patches (Vaswani et al. 2017, eq. 1); the attended vector,
  concatenated with the RNA embedding, goes to a Cox head.
* :class:`MeanFusion`: the averaging-fusion baseline seed 003 compares with (mean-pooled patches
  concatenated with the RNA embedding -> Cox head); with ``rna_dim=0`` it is mean-pooling MIL.

Every model also gives each patch a score on the risk scale (:func:`predict_patch_scores`):
its linear Cox head is applied to the patch's own embedding, so the slide's risk is the
attention-weighted mean of its patches' scores (plus, for the fusion models, the RNA term): the
additive decomposition of Javed et al., "Additive MIL: intrinsically interpretable multiple
instance learning for pathology", NeurIPS 2022. Attention says where the model pooled from; the
patch score says which way each patch pushes the risk.

Bags are padded: features ``float[B, N, D]`` with a mask ``bool[B, N]`` (True = a real patch);
attention is zero on padding and sums to 1 over each bag's real patches.

Training (:func:`train_bag_model`): the Cox partial likelihood
(:func:`pathviz.nn.losses.cox_partial_likelihood_loss`) is computed per *patient* over the whole
training risk set at every step; each patient's bag may be sampled to ``bag_size`` patches for
memory (seed 003's failure was a Cox loss over tiny bags of patches). Early stopping on the
validation C-index.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from pathviz.nn.losses import cox_partial_likelihood_loss


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax of ``float[B, N]`` over the True entries of ``mask`` (``bool[B, N]``); 0 elsewhere."""
    scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=1).nan_to_num(0.0)


class GatedAttentionMIL(nn.Module):
    """Gated attention MIL with a Cox head (Ilse et al. 2018, eq. 9).

    Args:
        dim: patch feature dimension D.
        hidden: width of the patch embedding (a linear layer + ReLU + dropout on the features).
        attn: width L of the attention network (V, U: L x hidden; w: L).
        dropout: dropout on the patch embedding.

    ``forward(x float[B, N, D], mask bool[B, N]) -> (risk float[B], attention float[B, N])``.
    """

    def __init__(self, dim: int, hidden: int = 128, attn: int = 64, dropout: float = 0.25):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.V = nn.Linear(hidden, attn)
        self.U = nn.Linear(hidden, attn)
        self.w = nn.Linear(attn, 1)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, rna: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.embed(x)
        a = masked_softmax(self.w(torch.tanh(self.V(h)) * torch.sigmoid(self.U(h))).squeeze(-1), mask)
        z = torch.einsum("bn,bnd->bd", a, h)
        return self.head(z).squeeze(-1), a

    def patch_scores(self, x: torch.Tensor, rna: torch.Tensor | None = None) -> torch.Tensor:
        """``float[B, N]``: the Cox head on each patch's embedding; ``risk = sum_k a_k s_k``."""
        return self.head(self.embed(x)).squeeze(-1)


class CrossAttentionFusion(nn.Module):
    """RNA-to-patch cross-attention with a Cox head (seed 003).

    Args:
        dim: patch feature dimension D; rna_dim: RNA input dimension R.
        d_model: width of query, keys and values.
        dropout: dropout on the projections.
        concat_rna: concatenate the RNA embedding with the attended vector before the head.

    ``forward(x float[B, N, D], mask bool[B, N], rna float[B, R]) -> (risk float[B], attention
    float[B, N])``: query ``q = W_q rna``, keys ``k_j = W_k h_j``, values ``v_j = W_v h_j``,
    ``a = softmax_j(q . k_j / sqrt(d_model))``, ``z = sum_j a_j v_j``.
    """

    def __init__(self, dim: int, rna_dim: int, d_model: int = 64, dropout: float = 0.25, concat_rna: bool = True):
        super().__init__()
        self.rna = nn.Sequential(nn.Linear(rna_dim, d_model), nn.ReLU(), nn.Dropout(dropout))
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Sequential(nn.Linear(dim, d_model), nn.Dropout(dropout))
        self.v = nn.Sequential(nn.Linear(dim, d_model), nn.ReLU(), nn.Dropout(dropout))
        self.concat_rna = concat_rna
        self.head = nn.Linear(d_model * (2 if concat_rna else 1), 1)
        self.scale = d_model ** -0.5

    def forward(self, x: torch.Tensor, mask: torch.Tensor, rna: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = self.rna(rna)
        q = self.q(r)
        a = masked_softmax(torch.einsum("bd,bnd->bn", q, self.k(x)) * self.scale, mask)
        z = torch.einsum("bn,bnd->bd", a, self.v(x))
        if self.concat_rna:
            z = torch.cat([z, r], dim=1)
        return self.head(z).squeeze(-1), a

    def patch_scores(self, x: torch.Tensor, rna: torch.Tensor | None = None) -> torch.Tensor:
        """``float[B, N]``: the head's attended-vector part on each patch's value (plus the bias):
        ``risk = sum_k a_k s_k + w_rna . r``. Values do not depend on the query, so neither do these."""
        d = self.head.in_features // (2 if self.concat_rna else 1)
        return self.v(x) @ self.head.weight[0, :d] + self.head.bias


class MeanFusion(nn.Module):
    """Averaging fusion (seed 003's baseline): mean of the embedded patches, concatenated with the
    RNA embedding (``rna_dim > 0``), then a Cox head. ``forward`` returns uniform attention."""

    def __init__(self, dim: int, rna_dim: int = 0, d_model: int = 64, dropout: float = 0.25):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(dim, d_model), nn.ReLU(), nn.Dropout(dropout))
        self.rna = nn.Sequential(nn.Linear(rna_dim, d_model), nn.ReLU(), nn.Dropout(dropout)) if rna_dim else None
        self.head = nn.Linear(d_model * (2 if rna_dim else 1), 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, rna: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        a = mask.float() / mask.float().sum(1, keepdim=True).clamp(min=1.0)
        z = torch.einsum("bn,bnd->bd", a, self.embed(x))
        if self.rna is not None:
            z = torch.cat([z, self.rna(rna)], dim=1)
        return self.head(z).squeeze(-1), a

    def patch_scores(self, x: torch.Tensor, rna: torch.Tensor | None = None) -> torch.Tensor:
        """``float[B, N]``: the head's pooled-patch part on each patch's embedding (plus the bias)."""
        h = self.embed(x)
        return h @ self.head.weight[0, :h.shape[-1]] + self.head.bias


def pad_bags(bags: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``float32[B, N_max, D]`` features and ``bool[B, N_max]`` mask from a list of ``float[n_i, D]``.

    Raises:
        ValueError: an empty list or an empty bag.
    """
    if not bags or any(len(b) == 0 for b in bags):
        raise ValueError("every bag needs at least one patch")
    n, d = max(len(b) for b in bags), bags[0].shape[1]
    x = np.zeros((len(bags), n, d), np.float32)
    m = np.zeros((len(bags), n), bool)
    for i, b in enumerate(bags):
        x[i, :len(b)] = b
        m[i, :len(b)] = True
    return x, m


def sample_mask(mask: torch.Tensor, bag_size: int, generator: torch.Generator) -> torch.Tensor:
    """A sub-mask keeping at most ``bag_size`` random real patches of each bag (all when fewer)."""
    if bag_size <= 0 or mask.sum(1).max() <= bag_size:
        return mask
    noise = torch.rand(mask.shape, generator=generator, device="cpu").to(mask.device).masked_fill(~mask, 2.0)
    keep = noise.argsort(dim=1)[:, :bag_size]
    out = torch.zeros_like(mask)
    out.scatter_(1, keep, True)
    return out & mask


def bag_cox_loss(model: nn.Module, x: torch.Tensor, mask: torch.Tensor, rna: torch.Tensor | None, time: torch.Tensor,
                 event: torch.Tensor) -> torch.Tensor:
    """The per-patient Cox loss of a bag model: every patient's bag goes through the model and the
    negative partial log-likelihood (Efron ties) is taken over ALL these patients' risks at once,
    so each event is compared with its whole risk set (not a mini-batch of patches).

    Args:
        x, mask: ``float[B, N, D]`` / ``bool[B, N]`` (a bag may be sub-sampled in ``mask``).
        rna: ``float[B, R]`` or None; time, event: ``float[B]``.

    Returns:
        Scalar tensor (:func:`pathviz.nn.losses.cox_partial_likelihood_loss` of the B risks).
    """
    risk, _ = model(x, mask, rna)
    return cox_partial_likelihood_loss(risk, time, event)


@dataclass
class BagTrainConfig:
    """Settings of :func:`train_bag_model` (frozen per model kind in :mod:`pathviz.jobs.mil`)."""

    epochs: int = 150
    lr: float = 1e-3
    weight_decay: float = 1e-3
    bag_size: int = 32  # patches sampled per patient per step (0 = all)
    patience: int = 30  # steps without a better validation C-index before stopping
    seed: int = 0
    device: str = "cpu"
    history: list = field(default_factory=list)


def predict(model: nn.Module, x: np.ndarray, mask: np.ndarray, rna: np.ndarray | None = None, device: str = "cpu",
            batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Risk ``float[B]`` and attention ``float[B, N]`` of every bag with ALL its patches (eval mode)."""
    model.eval()
    risks, atts = [], []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(x[i:i + batch]).to(device)
            mb = torch.from_numpy(mask[i:i + batch]).to(device)
            rb = torch.from_numpy(rna[i:i + batch]).to(device) if rna is not None else None
            r, a = model(xb, mb, rb)
            risks.append(r.float().cpu().numpy())
            atts.append(a.float().cpu().numpy())
    return np.concatenate(risks), np.concatenate(atts)


def predict_patch_scores(model: nn.Module, x: np.ndarray, mask: np.ndarray, device: str = "cpu",
                         batch: int = 256) -> np.ndarray:
    """Every patch's score on the risk scale, ``float[B, N]`` (0 on padding; eval mode): the model's
    Cox head applied to the patch alone (Javed et al. 2022). For :class:`GatedAttentionMIL` the
    risk of :func:`predict` is exactly ``sum_k attention_k * score_k``."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            s = model.patch_scores(torch.from_numpy(x[i:i + batch]).to(device))
            out.append(s.float().cpu().numpy())
    return np.where(mask, np.concatenate(out), 0.0).astype(np.float32)


def train_bag_model(model: nn.Module, x: np.ndarray, mask: np.ndarray, rna: np.ndarray | None, time: np.ndarray,
                    event: np.ndarray, train: np.ndarray, validation: np.ndarray,
                    config: BagTrainConfig | None = None) -> tuple[nn.Module, dict]:
    """Fit a bag model with the Cox partial likelihood over the whole training risk set per step.

    Args:
        model: a :class:`GatedAttentionMIL`, :class:`CrossAttentionFusion` or :class:`MeanFusion`.
        x, mask: padded bags ``float32[B, N, D]`` / ``bool[B, N]`` of all patients (:func:`pad_bags`).
        rna: ``float32[B, R]`` or None.
        time, event: ``float[B]`` / ``int[B]``.
        train, validation: ``bool[B]`` patient masks (validation drives early stopping).

    Returns:
        ``(model with the best validation C-index's weights, info)``; info has ``best_step``,
        ``val_c_index``, ``history`` (step, loss, val C).

    Raises:
        ValueError: no event among the training patients.
    """
    from pathviz.survival.concordance import harrell_c

    cfg = config or BagTrainConfig()
    if event[train].sum() == 0:
        raise ValueError("no event among the training patients: a Cox model cannot be fitted")
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    dev = cfg.device
    model = model.to(dev)
    xt = torch.from_numpy(x[train]).to(dev)
    mt = torch.from_numpy(mask[train]).to(dev)
    rt = torch.from_numpy(rna[train]).to(dev) if rna is not None else None
    tt = torch.from_numpy(np.asarray(time, np.float32)[train]).to(dev)
    et = torch.from_numpy(np.asarray(event, np.float32)[train]).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    best, best_c, best_step, stale, history = copy.deepcopy(model.state_dict()), -np.inf, 0, 0, []
    xv, mv = x[validation], mask[validation]  # copied once, not every step
    rv = rna[validation] if rna is not None else None
    for step in range(cfg.epochs):
        model.train()
        loss = bag_cox_loss(model, xt, sample_mask(mt, cfg.bag_size, gen), rt, tt, et)
        opt.zero_grad()
        loss.backward()
        opt.step()
        vr, _ = predict(model, xv, mv, rv, dev)
        vc = harrell_c(time[validation], event[validation], vr).c_index if event[validation].sum() else 0.5
        history.append((step, float(loss.detach()), float(vc)))
        if vc > best_c + 1e-6:
            best, best_c, best_step, stale = copy.deepcopy(model.state_dict()), vc, step, 0
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    model.load_state_dict(best)
    return model.eval(), {"best_step": best_step, "val_c_index": float(best_c), "steps": len(history), "history": history}
