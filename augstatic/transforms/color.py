"""Colour transforms on RGB: PCA lighting, jitter, hue/saturation, channel operations."""

from __future__ import annotations

import numpy as np

from augstatic import validation
from augstatic.core import Transform
from augstatic.functional import color as F
from augstatic.registry import register


@register
class FancyPCA(Transform):
    """PCA colour augmentation (AlexNet), Albumentations 2 semantics.

    Args:
      alpha: standard deviation of the per-component scale factors (paper: 0.1).
      p: probability of applying.
    """

    needs_rgb = True

    def __init__(self, alpha: float = 0.1, p: float = 1.0):
        super().__init__(p=p)
        self._config = {"alpha": validation.number("alpha", alpha, 0.0)}

    def sample(self, rng, shape):
        return rng.normal(0.0, self._config["alpha"], 3)

    def apply(self, image, params):
        return F.fancy_pca(image, params)
