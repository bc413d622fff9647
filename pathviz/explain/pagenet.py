"""Interpretation of PAGE-Net (seed 000): which patches drive a patient's prognostic index, which
survival-discriminative maps matter, and which pathways of the genome layers rank highest.

* Patch contributions: Input x Gradient (captum ``InputXGradient``; Shrikumar et al. 2016) of the
  patient's prognostic index with respect to the patch scores ``float[n_patches, N]`` (stage-1
  pooled maps), through stage-2 pooling, the training standardisation and the integration network.
  A patch's contribution is the sum over maps; patches outside a map's top-K2 get no contribution
  from that map (they do not reach the slide feature). Flagged patches are the top contributors.
* Pathway ranking: Integrated Gradients at the genome pathway layer, exactly as
  :func:`pathviz.explain.pathway_ranking` does for Cox-PASNet (shared table code).
* :func:`read_pagenet_rankings`: the stored rankings of a trained model folder, as the pathway page
  shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from captum.attr import InputXGradient, IntegratedGradients, LayerIntegratedGradients

from pathviz.explain.pathways import IG_STEPS, PathwayRanking, ranking_table
from pathviz.genomics import readable_descriptions
from pathviz.nn.pagenet import pool_patches

#: Columns of PAGE-Net's pathway ranking shown on the pathway page, in order.
PAGENET_PATHWAY_COLUMNS = ["rank", "pathway", "description", "importance", "direction", "size"]
#: Rows of each PAGE-Net ranking shown on the page (the downloads hold all rows).
PAGENET_TOP = 50


@dataclass
class PageNetRankings:
    """PAGE-Net's stored rankings: ``pathways`` (``pathway_ranking.csv``, KEGG descriptions made
    readable by :func:`pathviz.genomics.readable_descriptions`) and ``genes``
    (``gene_ranking.csv``), all rows, best first."""

    pathways: pd.DataFrame
    genes: pd.DataFrame

    def pathway_view(self, top: int = PAGENET_TOP) -> pd.DataFrame:
        """The first ``top`` pathways, columns :data:`PAGENET_PATHWAY_COLUMNS`."""
        return self.pathways[PAGENET_PATHWAY_COLUMNS].head(top)

    def gene_view(self, top: int = PAGENET_TOP) -> pd.DataFrame:
        """The first ``top`` genes, all columns."""
        return self.genes.head(top)


def read_pagenet_rankings(folder: str | Path) -> PageNetRankings:
    """The rankings a PAGE-Net model folder (``pathviz train pagenet``) stores.

    Raises:
        OSError: the folder lacks ``pathway_ranking.csv`` or ``gene_ranking.csv``.
    """
    folder = Path(folder)
    pathways = pd.read_csv(folder / "pathway_ranking.csv")
    pathways["description"] = readable_descriptions(pathways["pathway"], pathways["description"])
    return PageNetRankings(pathways, pd.read_csv(folder / "gene_ranking.csv"))


def patch_contributions(net, patch_scores: np.ndarray, feature_mean: np.ndarray, feature_sd: np.ndarray,
                        genes: np.ndarray, clinical: np.ndarray, k2: int) -> tuple[np.ndarray, np.ndarray]:
    """Each patch's contribution to one patient's prognostic index.

    Args:
        net: a fitted :class:`~pathviz.nn.pagenet.PAGENet` (eval mode is set here).
        patch_scores: ``float[n_patches, N]`` stage-1 scores of the patient's slide.
        feature_mean, feature_sd: ``float[N]`` the standardisation of slide features (training).
        genes: ``float[n_genes]`` z-scored expression; clinical: ``float[n_clinical]``.
        k2: stage-2 top-K2.

    Returns:
        ``(per_patch float[n_patches], per_patch_and_map float[n_patches, N])`` in PI units
        (Input x Gradient; positive pushes risk up).
    """
    net.eval()
    device = next(net.parameters()).device
    T = lambda a: torch.as_tensor(np.asarray(a, np.float32), device=device)  # noqa: E731
    mean, sd, g, c = T(feature_mean), T(feature_sd), T(genes)[None], T(clinical)[None]

    def forward(scores: torch.Tensor) -> torch.Tensor:
        feats = (pool_patches(scores, k2) - mean) / sd
        return net(feats, g.expand(len(scores), -1), c.expand(len(scores), -1))

    x = T(patch_scores)[None].requires_grad_(True)
    attr = InputXGradient(forward).attribute(x)[0].detach().cpu().numpy()
    return attr.sum(axis=1), attr


def pagenet_pathway_ranking(net, slide_features: np.ndarray, genes: np.ndarray, clinical: np.ndarray, mask: np.ndarray,
                            pathways: list[str], gene_names: list[str], descriptions: dict[str, str] | None = None
                            ) -> PathwayRanking:
    """Pathway nodes of PAGE-Net's genome layers ranked by mean |Integrated Gradients| of the
    prognostic index (baseline: the average patient's expression, all z-scores 0), slide features
    and clinical inputs held at each patient's values.

    Args:
        slide_features: ``float[n, N]`` standardised; genes: ``float[n, n_genes]`` z-scored;
        clinical: ``float[n, n_clinical]``; mask: ``bool[n_genes, n_pathways]``.
    """
    net.eval()
    device = next(net.parameters()).device
    T = lambda a: torch.as_tensor(np.asarray(a, np.float32), device=device)  # noqa: E731
    S, G, C = T(slide_features), T(genes), T(clinical)
    members = list(net.members) if hasattr(net, "members") else [net]
    attr = 0.0
    for m in members:  # the ensemble's index is the members' mean, so are its attributions
        lig = LayerIntegratedGradients(lambda g, s, c, m=m: m(s, g, c), m.genome.pathway)
        a = lig.attribute(G, baselines=torch.zeros_like(G), additional_forward_args=(S, C), n_steps=IG_STEPS)
        attr = attr + a.detach() / len(members)
    with torch.no_grad():
        pi = net(S, G, C).cpu().numpy()
    return ranking_table(attr.cpu().numpy(), pi, genes, mask, pathways, gene_names, descriptions)


def pagenet_gene_ranking(net, slide_features: np.ndarray, genes: np.ndarray, clinical: np.ndarray, mask: np.ndarray,
                         gene_names: list[str]) -> pd.DataFrame:
    """Genes ranked by mean |Integrated Gradients| of PAGE-Net's prognostic index at the gene
    inputs (baseline: z-scores 0); columns ``rank, gene, importance, direction, pathways``, as
    :func:`pathviz.explain.gene_ranking` for Cox-PASNet."""
    net.eval()
    device = next(net.parameters()).device
    T = lambda a: torch.as_tensor(np.asarray(a, np.float32), device=device)  # noqa: E731
    G = T(genes)
    attr = IntegratedGradients(lambda g, s, c: net(s, g, c)).attribute(
        G, baselines=torch.zeros_like(G), additional_forward_args=(T(slide_features), T(clinical)), n_steps=IG_STEPS)
    attr = attr.detach().cpu().numpy()
    with np.errstate(invalid="ignore"):
        sign = np.nan_to_num(np.sign(np.nanmean(attr * np.sign(genes), axis=0)))
    table = pd.DataFrame({"gene": list(gene_names), "importance": np.abs(attr).mean(axis=0), "direction": sign.astype(int),
                          "pathways": np.asarray(mask).sum(axis=1)})
    table = table.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table
