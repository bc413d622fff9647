"""Neural survival models (PyTorch): Cox partial likelihood, masked sparse layers, Cox-PASNet."""

from pathviz.nn.coxpasnet import CoxPASNet, TrainConfig, TrainResult, train_coxpasnet
from pathviz.nn.layers import MaskedLinear
from pathviz.nn.losses import cox_partial_likelihood_loss
from pathviz.nn.pathway_model import CoxPASNetModel

__all__ = ["CoxPASNet", "CoxPASNetModel", "MaskedLinear", "TrainConfig", "TrainResult", "cox_partial_likelihood_loss",
           "train_coxpasnet"]
