"""Stain normalisation of H&E images: Macenko et al., "A method for normalizing histology slides
for quantitative analysis", ISBI 2009.

A slide's two stain vectors (haematoxylin, eosin) are estimated in optical-density (OD) space from
its tissue pixels: the plane of the two largest principal directions of the OD values, and on it the
robust extreme angles (``alpha`` and ``100 - alpha`` percentiles). Each pixel's stain concentrations
are the least-squares solution against those vectors; the slide's robust maximum concentrations
(99th percentile) are scaled to a reference's, and the image is rebuilt with the reference's stain
vectors. Because the maximum is a high percentile of *pixel* concentrations (nuclei), it is set by
the staining, not by how many nuclei-dense regions a slide has, so a slide's biology is kept while
its centre's stain strength is removed.

The default reference is the one published with the reference implementation (Macenko's MATLAB
code, reused by most Python ports): stain matrix ``[[0.5626, 0.2159], [0.7201, 0.8012],
[0.4062, 0.5581]]`` and maximum concentrations ``[1.9705, 1.0308]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pathviz.errors import PathVizError

IO = 240.0  # background (transmitted light) intensity, as in the reference implementation
REFERENCE_STAINS = np.array([[0.5626, 0.2159], [0.7201, 0.8012], [0.4062, 0.5581]])
REFERENCE_MAX_CONCENTRATIONS = np.array([1.9705, 1.0308])


def optical_density(rgb: np.ndarray) -> np.ndarray:
    """``float[..., 3]`` optical density ``-log((I + 1) / IO)`` of ``uint8[..., 3]`` RGB."""
    return -np.log((rgb.astype(np.float64) + 1.0) / IO)


@dataclass(frozen=True)
class StainEstimate:
    """One image's stains: ``stains`` float[3, 2] (unit OD vectors, haematoxylin first) and
    ``max_concentrations`` float[2] (99th percentile of each stain's concentration)."""

    stains: np.ndarray
    max_concentrations: np.ndarray

    def concentrations(self, rgb: np.ndarray) -> np.ndarray:
        """``float[..., 2]`` haematoxylin and eosin concentrations of ``uint8[..., 3]`` pixels."""
        od = optical_density(rgb).reshape(-1, 3)
        conc = np.linalg.lstsq(self.stains, od.T, rcond=None)[0].T
        return conc.reshape(*rgb.shape[:-1], 2)


def estimate_stains(rgb: np.ndarray, beta: float = 0.15, alpha: float = 1.0, max_pixels: int = 200_000,
                    seed: int = 0) -> StainEstimate:
    """Macenko stain vectors and maximum concentrations of an H&E image (or stack of patches).

    Args:
        rgb: ``uint8[..., 3]`` pixels (an image, a stack of patches, or a pixel list).
        beta: OD threshold; pixels with any channel below it (background) are ignored.
        alpha: percentile of the extreme angles (robust minimum / maximum).
        max_pixels: at most this many tissue pixels are used (a seeded random sample).

    Raises:
        PathVizError: fewer than 500 tissue pixels (a blank or non-H&E image).
    """
    od = optical_density(np.asarray(rgb)).reshape(-1, 3)
    od = od[(od > beta).all(axis=1)]
    if len(od) < 500:
        raise PathVizError(f"Only {len(od)} stained pixels: too few to estimate H&E stain vectors.",
                           "stain normalisation needs an H&E image with tissue; skip it for blank or non-H&E images.")
    if len(od) > max_pixels:
        od = od[np.random.default_rng(seed).choice(len(od), max_pixels, replace=False)]
    _, vecs = np.linalg.eigh(np.cov(od.T))
    plane = vecs[:, [2, 1]]  # two largest principal directions
    plane = plane * np.sign(plane[np.argmax(np.abs(plane[:, 0])), 0])  # first direction into positive OD
    if plane[:, 1].sum() < 0:
        plane[:, 1] = -plane[:, 1]
    proj = od @ plane
    phi = np.arctan2(proj[:, 1], proj[:, 0])
    lo, hi = np.percentile(phi, [alpha, 100 - alpha])
    v1 = plane @ np.array([np.cos(lo), np.sin(lo)])
    v2 = plane @ np.array([np.cos(hi), np.sin(hi)])
    # haematoxylin absorbs more red light than eosin: the vector with the larger red OD goes first
    he = np.stack([v1, v2], axis=1) if v1[0] > v2[0] else np.stack([v2, v1], axis=1)
    he = np.abs(he) / np.linalg.norm(he, axis=0, keepdims=True)
    conc = np.linalg.lstsq(he, od.T, rcond=None)[0]
    return StainEstimate(he, np.percentile(conc, 99, axis=1))


class MacenkoNormaliser:
    """Maps an image's stains onto a reference's (Macenko 2009; module docstring).

    ``fit(slide_pixels)`` estimates the source slide's stains once; ``transform(patches)`` then
    normalises any of its patches (``uint8[..., 3]`` in, ``uint8[..., 3]`` out, same shape).
    """

    def __init__(self, reference: StainEstimate | None = None):
        self.reference = reference or StainEstimate(REFERENCE_STAINS, REFERENCE_MAX_CONCENTRATIONS)
        self.source: StainEstimate | None = None

    def fit(self, rgb: np.ndarray, **kw) -> "MacenkoNormaliser":
        self.source = estimate_stains(rgb, **kw)
        return self

    def transform(self, rgb: np.ndarray) -> np.ndarray:
        if self.source is None:
            raise PathVizError("MacenkoNormaliser.transform called before fit.", "call fit(slide_pixels) first.")
        rgb = np.asarray(rgb)
        conc = self.source.concentrations(rgb).reshape(-1, 2)
        conc *= self.reference.max_concentrations / np.maximum(self.source.max_concentrations, 1e-6)
        out = IO * np.exp(-conc @ self.reference.stains.T)
        return np.clip(out, 0, 255).round().astype(np.uint8).reshape(rgb.shape)
