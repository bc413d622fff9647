"""Macenko stain normalisation on the real tiatoolbox H&E image: a centre's stain strength is
removed (a centre's stain perturbation is undone), nuclei-dense regions stay denser, and bad
input gets a clear error."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage.color import hed2rgb, rgb2hed

from pathviz.errors import PathVizError
from pathviz.slide.stain import REFERENCE_STAINS, MacenkoNormaliser, estimate_stains


def stain(tile: np.ndarray, factors: tuple[float, float]) -> np.ndarray:
    """A centre's stain strength: haematoxylin and eosin concentrations (HED space) of an RGB tile
    scaled by ``factors``."""
    hed = rgb2hed(tile)
    hed[..., 0] *= factors[0]
    hed[..., 1] *= factors[1]
    return (np.clip(hed2rgb(hed), 0, 1) * 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def he(demo_png) -> np.ndarray:
    return np.asarray(Image.open(demo_png).convert("RGB"))[:512, :512]


def test_stain_vectors_are_haematoxylin_then_eosin(he):
    est = estimate_stains(he)
    assert est.stains.shape == (3, 2)
    np.testing.assert_allclose(np.linalg.norm(est.stains, axis=0), 1.0, atol=1e-9)
    # each estimated vector is closest to the matching reference stain (H absorbs red most)
    cos = est.stains.T @ REFERENCE_STAINS
    assert cos[0, 0] > cos[0, 1] and cos[1, 1] > cos[1, 0]


def test_normalisation_undoes_a_centre_stain_perturbation(he):
    strong, weak = stain(he, (1.3, 0.8)), stain(he, (0.75, 1.25))
    raw_gap = np.abs(strong.astype(float) - weak.astype(float)).mean()
    a = MacenkoNormaliser().fit(strong).transform(strong).astype(float)
    b = MacenkoNormaliser().fit(weak).transform(weak).astype(float)
    assert np.abs(a - b).mean() < 0.3 * raw_gap  # most of the between-centre difference is gone


def test_normalisation_keeps_dense_regions_denser(he):
    norm = MacenkoNormaliser().fit(he).transform(he)
    tiles = [(y, x) for y in range(0, 512, 64) for x in range(0, 512, 64)]
    raw_h = np.array([rgb2hed(he[y:y + 64, x:x + 64])[..., 0].mean() for y, x in tiles])
    norm_h = np.array([rgb2hed(norm[y:y + 64, x:x + 64])[..., 0].mean() for y, x in tiles])
    assert np.corrcoef(raw_h, norm_h)[0, 1] > 0.9
    assert norm.shape == he.shape and norm.dtype == np.uint8


def test_blank_image_is_refused_with_a_fix():
    with pytest.raises(PathVizError, match="too few to estimate"):
        estimate_stains(np.full((64, 64, 3), 245, np.uint8))
    with pytest.raises(PathVizError, match="before fit"):
        MacenkoNormaliser().transform(np.zeros((4, 4, 3), np.uint8))
