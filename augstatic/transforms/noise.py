"""Noise transforms: Gaussian, ISO camera noise, multiplicative noise."""

from __future__ import annotations

import cv2
import numpy as np

from augstatic import validation
from augstatic.core import Transform
from augstatic.functional import noise as F
from augstatic.functional import pixel as P
from augstatic.registry import register


@register
class GaussNoise(Transform):
    """Adds Gaussian noise: variance ~ U(var_limit) in pixel units of 0..255, mean `mean`.

    Normal values come from a 65536-quantile table indexed by uniform 16-bit draws (see
    `functional.noise.normal_quantiles`): exact after 8-bit rounding and much faster.

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
        return sigma, F.uniform_indices(rng, field_shape)

    def apply(self, image, params):
        sigma, indices = params
        return F.gauss_noise(image, sigma, self._config["mean"], indices)


@register
class ISONoise(Transform):
    """Camera sensor noise: Poisson lightness noise and Gaussian hue noise in HLS space.

    Args:
      color_shift: (low, high) hue noise scale (paper: 0.01..0.05).
      intensity: (low, high) overall strength (paper: 0.1..0.5).
      p: probability of applying.
    """

    needs_rgb = True

    def __init__(self, color_shift=(0.01, 0.05), intensity=(0.1, 0.5), p: float = 1.0):
        super().__init__(p=p)
        self._config = {"color_shift": validation.number_range("color_shift", color_shift, 0.0, 1.0),
                        "intensity": validation.number_range("intensity", intensity, 0.0)}

    def sample(self, rng, shape):
        color_shift = float(rng.uniform(*self._config["color_shift"]))
        intensity = float(rng.uniform(*self._config["intensity"]))
        uniforms = rng.random(shape[:2], dtype=np.float32)
        hue = rng.standard_normal(shape[:2], dtype=np.float32)
        return color_shift, intensity, uniforms, hue

    def apply(self, image, params):
        if image.dtype == np.uint8:
            as_float = image.astype(np.float32) * np.float32(1 / 255)
            return cv2.convertScaleAbs(F.iso_noise(as_float, *params), alpha=255.0)
        return F.iso_noise(image, *params)


@register
class MultiplicativeNoise(Transform):
    """Multiplies by a random factor (paper: 0.9..1.1, one factor for the whole image).

    Args:
      multiplier: (low, high) factor range.
      per_channel: one factor per channel.
      elementwise: one factor per pixel (and per channel when `per_channel`).
      p: probability of applying.
    """

    def __init__(self, multiplier=(0.9, 1.1), per_channel: bool = False, elementwise: bool = False,
                 p: float = 1.0):
        super().__init__(p=p)
        self._config = {"multiplier": validation.number_range("multiplier", multiplier, 0.0),
                        "per_channel": validation.flag("per_channel", per_channel),
                        "elementwise": validation.flag("elementwise", elementwise)}

    def sample(self, rng, shape):
        channels = shape[2] if len(shape) == 3 else 1
        if self._config["elementwise"]:
            size = shape[:2] + ((channels,) if self._config["per_channel"] else (1,))
        else:
            size = (channels,) if self._config["per_channel"] else (1,)
        return rng.uniform(*self._config["multiplier"], size=size).astype(np.float32)

    def apply(self, image, params):
        if not self._config["elementwise"]:
            if params.size == 1:
                return P.multiply(image, float(params[0]))
            return P.multiply_channels(image, params.astype(np.float64))
        factors = params if image.ndim == 3 else params[:, :, 0]
        return F.multiply_noise(image, factors)
