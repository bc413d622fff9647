"""Sparse layers: a linear layer whose connectivity is fixed by a binary mask."""

from __future__ import annotations

import math

import torch
from torch import nn


class MaskedLinear(nn.Module):
    """``y = x @ (W * M)^T + b`` with a fixed binary mask ``M: bool[out, in]``.

    The mask is applied in the forward pass, so gradients of weights outside the mask are exactly
    zero and no connection outside the mask is ever created; those weights are also zeroed at
    initialisation and after every :meth:`project` call, so the stored weights stay interpretable.

    Args:
        mask: ``bool[in_features, out_features]`` (gene x pathway, as the pathway_mask).
    """

    def __init__(self, mask: torch.Tensor, bias: bool = True):
        super().__init__()
        m = torch.as_tensor(mask, dtype=torch.float32).T.contiguous()  # [out, in]
        self.register_buffer("mask", m)
        self.weight = nn.Parameter(torch.empty_like(m))
        self.bias = nn.Parameter(torch.zeros(m.shape[0])) if bias else None
        fan_in = m.sum(dim=1).clamp(min=1)
        with torch.no_grad():
            bound = (1.0 / fan_in.sqrt()).unsqueeze(1) * math.sqrt(3.0)
            self.weight.uniform_(-1.0, 1.0).mul_(bound).mul_(m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``float[n, in_features] -> float[n, out_features]`` through the masked weights."""
        return nn.functional.linear(x, self.weight * self.mask, self.bias)

    @torch.no_grad()
    def project(self) -> None:
        """Zero the stored weights outside the mask (they never receive gradient anyway)."""
        self.weight.mul_(self.mask)
