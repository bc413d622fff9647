"""Interpretation: pathway and gene rankings of pathway-informed networks (captum attributions)."""

from pathviz.explain.pathways import (
    ActivationHeatmap,
    PathwayRanking,
    activation_heatmap,
    filter_genes,
    filter_pathways,
    gene_ranking,
    model_comparison_table,
    node_km,
    node_labels,
    pathway_ranking,
    pathway_table,
    ranking_stability,
    read_model_comparison,
)

__all__ = ["ActivationHeatmap", "PathwayRanking", "activation_heatmap", "filter_genes", "filter_pathways", "gene_ranking",
           "model_comparison_table", "node_km", "node_labels", "pathway_ranking", "pathway_table", "ranking_stability",
           "read_model_comparison"]
