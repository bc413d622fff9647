"""Interpretation: pathway and gene rankings of pathway-informed networks (captum attributions)."""

from pathviz.explain.pathways import PathwayRanking, gene_ranking, node_km, pathway_ranking, ranking_stability

__all__ = ["PathwayRanking", "gene_ranking", "node_km", "pathway_ranking", "ranking_stability"]
