"""Training jobs that produce model folders (weights, config, metrics, rankings, model card)."""

from pathviz.training.coxpasnet_job import load_library, rank_model, train_pathway_model

__all__ = ["load_library", "rank_model", "train_pathway_model"]
