"""Noise transforms: Gaussian, ISO camera noise, multiplicative noise."""

from __future__ import annotations

import numpy as np

from augstatic import validation
from augstatic.core import Transform
from augstatic.functional import noise as F
from augstatic.registry import register


@register
class GaussNoise(Transform):
    """Adds Gaussian noise: variance ~ U(var_limit) in pixel units of 0..255, mean `mean`.

    Args:
      var_limit: (low, high) variance range, in squared 8-bit pixel units (paper: 10..50).
      mean: noise mean in 8-bit pixel units.
      per_channel: independent noise per channel; otherwise one field shared by all channels.
      p: probability of applying.
    """

    def __init__(self, var_limit=(10.0, 50.0), mean: float = 0.0, per_channel: bool = True,
                 p: float = 1.0):
        super().__init__(p=p)
        self._config = {
            "var_limit": validation.number_range("var_limit", var_limit, 0.0),
            "mean": validation.number("mean", mean, -255.0, 255.0),
            "per_channel": validation.choice("per_channel", per_channel, (True, False)),
        }

    def sample(self, rng, shape):
        low, high = self._config["var_limit"]
        sigma = float(np.sqrt(rng.uniform(low, high)))
        field_shape = shape if self._config["per_channel"] or len(shape) == 2 else shape[:2]
        noise = rng.standard_normal(field_shape, dtype=np.float32)
        return sigma, noise

    def apply(self, image, params):
        sigma, noise = params
        scale = 1.0 if image.dtype == np.uint8 else 1.0 / 255.0
        noise = noise * np.float32(sigma * scale)
        if self._config["mean"]:
            noise += np.float32(self._config["mean"] * scale)
        if noise.ndim == 2 and image.ndim == 3:
            noise = np.repeat(noise[:, :, None], image.shape[2], axis=2)
        return F.add_noise(image, noise)
