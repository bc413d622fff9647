"""Training jobs that produce model folders (weights, config, metrics, rankings, model card)."""

from pathviz.training.coxpasnet_job import load_library, rank_model, train_pathway_model
from pathviz.training.pagenet_job import FeatureStore, train_pagenet_model

__all__ = ["FeatureStore", "load_library", "rank_model", "train_pagenet_model", "train_pathway_model"]
