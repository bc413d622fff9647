"""Our Macenko stain normalisation (pathviz.slide.stain) checked against torchstain's (the numpy
backend, a port of the reference implementation) on the same real H&E tiles (issue 14).

Both use the same reference stains and maximum concentrations, OD threshold 0.15 and angle
percentile 1. They agree on the stain vectors. They differ, by design, in two places:
* the 99th-percentile maximum concentrations are taken over stained pixels only here (background
  excluded, as for the stain vectors), over every pixel in torchstain: a few per cent apart;
* the output is rounded here and truncated there (half a grey level on average).
So the normalised tiles agree to a few grey levels, which is what the test holds them to.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pathviz.slide.stain import MacenkoNormaliser, estimate_stains

torchstain = pytest.importorskip("torchstain")


def _tiles(demo_png, n=6, size=256):
    img = np.asarray(Image.open(demo_png).convert("RGB"))
    rng = np.random.default_rng(0)
    for _ in range(n):
        y, x = rng.integers(0, img.shape[0] - size), rng.integers(0, img.shape[1] - size)
        yield img[y:y + size, x:x + size]


def test_stain_vectors_equal_torchstain_and_maximum_concentrations_within_ten_percent(demo_png):
    for tile in _tiles(demo_png):
        ref = torchstain.normalizers.MacenkoNormalizer(backend="numpy")
        ref.fit(tile)
        theirs = np.abs(ref.HERef) / np.linalg.norm(ref.HERef, axis=0)
        ours = estimate_stains(tile)
        assert np.allclose((theirs * ours.stains).sum(0), 1.0, atol=1e-6)  # same H and E directions
        assert np.allclose(ours.max_concentrations, ref.maxCRef, rtol=0.10)


def test_normalised_tiles_agree_with_torchstain_to_a_few_grey_levels(demo_png):
    for tile in _tiles(demo_png):
        theirs, _, _ = torchstain.normalizers.MacenkoNormalizer(backend="numpy").normalize(
            I=tile, Io=240, alpha=1, beta=0.15, stains=True)
        ours = MacenkoNormaliser().fit(tile).transform(tile)
        diff = np.abs(ours.astype(int) - theirs.astype(int))
        assert diff.mean() < 3.0 and np.percentile(diff, 99) <= 10, (diff.mean(), np.percentile(diff, 99))
