"""Pathway and gene rankings of Cox-PASNet (seed 000: "ranking the nodes with partial
derivatives, as conducted by Cox-PASNet").

Method (documented choice): Integrated Gradients (Sundararajan et al., ICML 2017; captum
``LayerIntegratedGradients`` / ``IntegratedGradients``) of the prognostic index, from the baseline
of an average patient (all z-scored genes 0) to each patient, at the pathway layer (one attribution
per pathway node) and at the gene inputs. A node's importance is the mean absolute attribution
over patients; its direction is the sign of the Spearman correlation between the prognostic index
and the pathway score (mean z-scored expression of the pathway's genes used by the model): + means
higher expression of the pathway, higher risk. Integrated Gradients averages the partial
derivatives along the path, so it reduces to the seed's partial derivatives for a linear network
while staying faithful (attributions sum to PI(x) - PI(baseline)) when tanh layers saturate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from captum.attr import IntegratedGradients, LayerIntegratedGradients

from pathviz.survival import GroupComparison, km_by_group

IG_STEPS = 32


@dataclass
class PathwayRanking:
    """Ranked pathways: DataFrame with ``rank, pathway, description, importance, direction,
    size, genes`` (member genes used by the model), best first."""

    table: pd.DataFrame


def _inputs(model, clinical: pd.DataFrame, omics: pd.DataFrame):
    G, C = model._tensors(clinical, omics)
    return G, C


def pathway_ranking(model, clinical: pd.DataFrame, omics: pd.DataFrame) -> PathwayRanking:
    """Rank the pathway nodes of a fitted :class:`~pathviz.nn.CoxPASNetModel` on these patients."""
    net = model.net_
    net.eval()
    G, C = _inputs(model, clinical, omics)
    # the ensemble's index is the members' mean: a pathway's attribution is the mean of its
    # attributions in each member (completeness holds member by member)
    attr = 0.0
    for member in net.members:
        lig = LayerIntegratedGradients(lambda g, c, m=member: m(g, c), member.pathway)
        a = lig.attribute(G, baselines=torch.zeros_like(G), additional_forward_args=(C,), n_steps=IG_STEPS)
        attr = attr + a.detach().cpu().numpy() / len(net.members)  # [n, n_pathways]
    with torch.no_grad():
        pi = net(G, C).cpu().numpy()
    desc = model.meta_.get("pathway_descriptions", {}) if hasattr(model, "meta_") else {
        s.name: s.description for s in model.library.sets}
    return ranking_table(attr, pi, G.cpu().numpy(), model.mask_, model.pathways_, model.genes_, desc)


def ranking_table(attr: np.ndarray, pi: np.ndarray, genes_z: np.ndarray, mask: np.ndarray, pathways: list[str],
                  genes: list[str], descriptions: dict[str, str] | None = None) -> PathwayRanking:
    """The ranking table from pathway-layer attributions (shared by Cox-PASNet and PAGE-Net).

    Args:
        attr: ``float[n_patients, n_pathways]`` attributions of the prognostic index.
        pi: ``float[n_patients]`` prognostic index; genes_z: ``float[n_patients, n_genes]`` the
            model's (z-scored) gene inputs; mask: ``bool[n_genes, n_pathways]``.
    """
    importance = np.abs(attr).mean(axis=0)
    m = np.asarray(mask, dtype=float)
    scores = genes_z @ m / np.maximum(m.sum(axis=0), 1)  # pathway score per patient
    pi_rank = pd.Series(pi).rank().to_numpy()
    direction = []
    for j in range(scores.shape[1]):
        s = scores[:, j]
        if np.ptp(s) == 0 or np.ptp(pi) == 0:
            direction.append(0)
        else:
            direction.append(int(np.sign(np.corrcoef(pd.Series(s).rank().to_numpy(), pi_rank)[0, 1])))
    desc = descriptions or {}
    members = [" ".join(np.asarray(genes)[np.asarray(mask)[:, j]]) for j in range(m.shape[1])]
    table = pd.DataFrame({"pathway": list(pathways), "description": [desc.get(p, "") for p in pathways],
                          "importance": importance, "direction": direction, "size": m.sum(axis=0).astype(int),
                          "genes": members})
    table = table.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return PathwayRanking(table)


def gene_ranking(model, clinical: pd.DataFrame, omics: pd.DataFrame) -> pd.DataFrame:
    """Genes ranked by mean |Integrated Gradients| of the prognostic index (inputs: z-scored
    expression); columns ``rank, gene, importance, direction, pathways`` (how many kept pathways
    contain the gene)."""
    net = model.net_
    net.eval()
    G, C = _inputs(model, clinical, omics)
    ig = IntegratedGradients(lambda g, c: net(g, c))
    attr = ig.attribute(G, baselines=torch.zeros_like(G), additional_forward_args=(C,), n_steps=IG_STEPS)
    attr = attr.detach().cpu().numpy()
    g = G.cpu().numpy()
    with np.errstate(invalid="ignore"):
        sign = np.sign(np.nanmean(attr * np.sign(g), axis=0))
    table = pd.DataFrame({"gene": model.genes_, "importance": np.abs(attr).mean(axis=0), "direction": sign.astype(int),
                          "pathways": model.mask_.sum(axis=1)})
    table = table.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table


def ranking_stability(rankings: list[pd.DataFrame], top: int = 10) -> pd.DataFrame:
    """How often each pathway is in the top ``top`` across repeated fits: ``pathway, in_top,
    runs, stability`` (fraction), plus its mean rank."""
    counts: dict[str, int] = {}
    ranks: dict[str, list[int]] = {}
    for r in rankings:
        for p, k in zip(r["pathway"], r["rank"]):
            ranks.setdefault(p, []).append(int(k))
            if k <= top:
                counts[p] = counts.get(p, 0) + 1
    rows = [{"pathway": p, "in_top": counts.get(p, 0), "runs": len(rankings), "stability": counts.get(p, 0) / len(rankings),
             "mean_rank": float(np.mean(v))} for p, v in ranks.items()]
    return pd.DataFrame(rows).sort_values(["stability", "mean_rank"], ascending=[False, True]).reset_index(drop=True)


def node_km(model, clinical: pd.DataFrame, omics: pd.DataFrame, layer: str, node: int | str) -> tuple[GroupComparison, float]:
    """Patients split at the median activation of one node (a pathway by name or index, or an
    ``h1``/``h2`` node by index): KM, log-rank and HR (high vs low), as the seed's Fig. 5.

    Returns ``(comparison, median activation)``.
    """
    acts = model.node_activations(clinical, omics)[layer]
    j = model.pathways_.index(node) if isinstance(node, str) else int(node)
    a = acts[:, j]
    med = float(np.median(a))
    groups = np.where(a > med, "high", "low").astype(object)
    return km_by_group(clinical["time"], clinical["event"], groups, reference="low", ordered=["low", "high"]), med
