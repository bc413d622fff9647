"""Negative Cox partial log-likelihood for neural survival models (PyTorch).

Efron's handling of tied event times (Efron, JASA 1977) by default, Breslow's on request; the same
likelihood lifelines and R ``coxph`` maximise, so a linear "network" trained with it reproduces
their coefficients (tested). Shared by Cox-PASNet and PAGE-Net.
"""

from __future__ import annotations

import torch


def cox_partial_likelihood_loss(risk: torch.Tensor, time: torch.Tensor, event: torch.Tensor, ties: str = "efron") -> torch.Tensor:
    """Mean negative Cox partial log-likelihood over events.

    Args:
        risk: float[n] prognostic index (log relative hazard).
        time: float[n] follow-up; event: float/bool[n] 1 = event.
        ties: ``"efron"`` or ``"breslow"``.

    Returns:
        Scalar tensor; 0 when the batch has no event (so it contributes no gradient).

    Raises:
        ValueError: unknown ``ties``.
    """
    if ties not in ("efron", "breslow"):
        raise ValueError(f"ties must be 'efron' or 'breslow', got {ties!r}")
    risk = risk.reshape(-1)
    time = time.reshape(-1).to(risk.dtype)
    event = event.reshape(-1).to(risk.dtype)
    n_events = event.sum()
    if n_events == 0:
        return risk.sum() * 0.0
    order = torch.argsort(time, descending=True, stable=True)
    r, t, e = risk[order], time[order], event[order]
    # subtract the max for numerical stability
    shift = r.max().detach()
    w = torch.exp(r - shift)
    cum_w = torch.cumsum(w, 0)  # sum over t_j >= t_i ... up to position i (descending times)
    # risk-set sum at each unique time = cum_w at the last position holding that time
    uniq, inverse, counts = torch.unique_consecutive(t, return_inverse=True, return_counts=True)
    last = torch.cumsum(counts, 0) - 1
    risk_set = cum_w[last][inverse]  # per patient: sum of w over t_j >= t_i
    ev = e > 0
    if ties == "breslow":
        log_denominator = torch.log(risk_set[ev]) + shift
        return -(r[ev] - log_denominator).sum() / n_events
    # Efron: for the d deaths tied at a time, the l-th (l = 0..d-1) uses S0 - l/d * T0
    d = torch.zeros_like(uniq).index_add_(0, inverse, e)
    T0 = torch.zeros_like(uniq).index_add_(0, inverse, w * e)
    ev_groups = inverse[ev]
    # rank of each death within its tie group: 0..d-1
    ones = torch.ones_like(ev_groups, dtype=risk.dtype)
    csum = torch.cumsum(ones, 0)
    group_start = torch.zeros_like(uniq).index_add_(0, ev_groups, ones)
    first_pos = torch.cumsum(group_start, 0) - group_start  # index in ev-order where each group starts
    l_index = csum - 1 - first_pos[ev_groups]
    frac = l_index / d[ev_groups]
    denom = risk_set[ev] - frac * T0[ev_groups]
    return -(r[ev] - (torch.log(denom) + shift)).sum() / n_events
