"""Neural survival models (PyTorch modules and their training loops only): Cox partial
likelihood, masked sparse layers, Cox-PASNet, PAGE-Net.

Cohort-level wrappers (preprocessing, Breslow baseline, save / load) live in :mod:`pathviz.risk`
(e.g. :class:`pathviz.risk.coxpasnet.CoxPASNetModel`); nothing here imports :mod:`pathviz.risk`.
"""

from pathviz.nn.coxpasnet import (
    INNER_VALIDATION_FRACTION,
    L2_GRID,
    LR_GRID,
    CoxPASNet,
    CoxPASNetEnsemble,
    TrainConfig,
    TrainResult,
    train_coxpasnet,
)
from pathviz.nn.layers import MaskedLinear
from pathviz.nn.losses import cox_partial_likelihood_loss

__all__ = ["INNER_VALIDATION_FRACTION", "L2_GRID", "LR_GRID", "CoxPASNet", "CoxPASNetEnsemble", "MaskedLinear",
           "TrainConfig", "TrainResult", "cox_partial_likelihood_loss", "train_coxpasnet"]
