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

The pathway page only renders: its searches (:func:`filter_pathways`, :func:`filter_genes`), the
ranking table's columns (:func:`pathway_table`), the node labels (:func:`node_labels`), the
patients x pathways heatmap (:func:`activation_heatmap`) and the model comparison
(:func:`model_comparison_table`) are computed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from captum.attr import IntegratedGradients, LayerIntegratedGradients

from pathviz.survival import GroupComparison, km_by_group

IG_STEPS = 32
#: Columns of the ranked-pathway table shown on the pathway page, in order (those present).
PATHWAY_TABLE_COLUMNS = ("rank", "pathway", "description", "importance", "direction", "stability", "size", "set_size",
                         "coverage", "genes")
#: Display names of the models in ``bench/results/genomic_models.csv``.
BENCH_MODEL_NAMES = {"coxpasnet": "Cox-PASNet", "coxnet": "elastic-net Cox (same genes + age)",
                     "clinical": "clinical Cox (age)"}


@dataclass
class PathwayRanking:
    """Ranked pathways: DataFrame with ``rank, pathway, description, importance, direction,
    size, genes`` (member genes used by the model), best first."""

    table: pd.DataFrame


def _inputs(model, clinical: pd.DataFrame, omics: pd.DataFrame):
    G, C = model._tensors(clinical, omics)
    return G, C


def pathway_ranking(model, clinical: pd.DataFrame, omics: pd.DataFrame) -> PathwayRanking:
    """Rank the pathway nodes of a fitted :class:`~pathviz.risk.coxpasnet.CoxPASNetModel` on these
    patients (``clinical`` indexed by patient_id, ``omics`` their expression): the
    :func:`ranking_table` of the members' mean pathway-layer Integrated Gradients."""
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


def _contains(column: pd.Series, q: str) -> pd.Series:
    return column.str.lower().str.contains(q, regex=False)


def filter_pathways(pathways: pd.DataFrame, query: str) -> pd.DataFrame:
    """Rows of a pathway ranking whose ``pathway`` id, ``description`` or member ``genes`` contain
    ``query`` (case-insensitive, plain text, surrounding blanks ignored); all rows for an empty
    query. Order and columns are kept."""
    if not query:
        return pathways
    q = query.strip().lower()
    return pathways[_contains(pathways["pathway"], q) | _contains(pathways["description"], q) | _contains(pathways["genes"], q)]


def filter_genes(genes: pd.DataFrame, query: str) -> pd.DataFrame:
    """Rows of a gene ranking whose ``gene`` contains ``query`` (case-insensitive, plain text);
    all rows for an empty query."""
    if not query:
        return genes
    return genes[_contains(genes["gene"], query.strip().lower())]


def pathway_table(pathways: pd.DataFrame) -> pd.DataFrame:
    """The columns of :data:`PATHWAY_TABLE_COLUMNS` that ``pathways`` has, in that order."""
    return pathways[[c for c in PATHWAY_TABLE_COLUMNS if c in pathways.columns]]


def node_labels(pathways: pd.DataFrame) -> dict[str, str]:
    """Pathway id -> label for a node chooser: its description, or the id when that is empty."""
    return {p: str(d) or p for p, d in zip(pathways["pathway"], pathways["description"])}


@dataclass
class ActivationHeatmap:
    """Pathway-node activations of patients ordered by prognostic index (lowest first).

    Attributes:
        activations: DataFrame ``float[n_patients, n_pathways]`` (tanh activations, index
            patient_id, columns the pathways in ranking order).
        prognostic_index: ``float[n_patients]`` of the same patients, same order.
    """

    activations: pd.DataFrame
    prognostic_index: np.ndarray

    def to_frame(self) -> pd.DataFrame:
        """The activations plus a ``prognostic_index`` column (the page's CSV download)."""
        return self.activations.assign(prognostic_index=self.prognostic_index)


def activation_heatmap(model, clinical: pd.DataFrame, omics: pd.DataFrame, pathways: list[str]) -> ActivationHeatmap:
    """Patients x pathways activation matrix of a fitted Cox-PASNet, patients sorted by their
    prognostic index (ascending), pathways in the given order.

    Args:
        model: a fitted :class:`~pathviz.risk.coxpasnet.CoxPASNetModel` (``node_activations``,
            ``predict_risk``, ``pathways_``).
        clinical: patients (index patient_id); omics: their expression.
        pathways: pathway ids of the model, e.g. the top of its ranking.

    Raises:
        ValueError: a pathway the model does not have.
    """
    acts = model.node_activations(clinical, omics)["pathway"]
    risk = model.predict_risk(clinical, omics)
    idx = [model.pathways_.index(p) for p in pathways]
    order = np.argsort(risk)
    heat = pd.DataFrame(acts[order][:, idx], index=clinical.index[order], columns=list(pathways))
    return ActivationHeatmap(heat, risk[order])


def model_comparison_table(bench: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The held-out C-index per cohort and model of ``bench/genomic_models.py``'s results.

    Args:
        bench: its CSV (columns ``cohort``, ``model``, ``c_index_mean``, ``c_index_sd``, ``splits``).

    Returns:
        ``(results, table)``: ``results`` is ``bench`` with a ``C-index`` text column
        (``"0.712 ± 0.031"``, mean ± sd over splits); ``table`` is cohorts x models of that text,
        models named by :data:`BENCH_MODEL_NAMES`.
    """
    results = bench.copy()
    results["C-index"] = results["c_index_mean"].map("{:.3f}".format) + " ± " + results["c_index_sd"].map("{:.3f}".format)
    table = results.pivot(index="cohort", columns="model", values="C-index").rename(columns=BENCH_MODEL_NAMES)
    return results, table


def read_model_comparison(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """:func:`model_comparison_table` of the CSV at ``path``; None when there is no such file."""
    path = Path(path)
    return model_comparison_table(pd.read_csv(path)) if path.exists() else None


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
