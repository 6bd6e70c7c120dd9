"""Noise functions: the random fields are inputs, so these stay pure."""

from __future__ import annotations

import cv2
import numpy as np


def add_noise(image: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Adds a float32 `noise` field (pixel units of the image dtype) with saturation.

    uint8 results are rounded and clipped to [0, 255]; float32 results clipped to [0, 1].
    """
    if image.dtype == np.uint8:
        # One saturating OpenCV call: uint8 + float32 -> uint8 with rounding.
        return cv2.add(image, noise, dtype=cv2.CV_8U)
    return np.clip(image + noise, 0.0, 1.0)


def poisson_from_uniform(uniforms: np.ndarray, rate: float) -> np.ndarray:
    """Poisson(rate) counts (float32) from uniforms in [0, 1) by inverting the CDF.

    Exact for any rate; the loop runs until the CDF is within float precision of 1, a handful
    of steps for the small rates of ISO noise.
    """
    counts = np.zeros(uniforms.shape, dtype=np.float32)
    if rate <= 0:
        return counts
    probability = np.exp(-rate)
    cumulative = probability
    k = 0
    while cumulative < 1.0 - 1e-7 and k < 10 * rate + 50:
        counts += uniforms >= np.float32(cumulative)
        k += 1
        probability *= rate / k
        cumulative += probability
    return counts


def multiply_noise(image: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Multiplies elementwise by `factors` (broadcast over channels), saturating."""
    if image.dtype == np.uint8:
        if factors.shape != image.shape:
            factors = np.ascontiguousarray(np.broadcast_to(factors, image.shape))
        return cv2.multiply(image, factors, dtype=cv2.CV_8U)
    return np.clip(image * factors, 0.0, 1.0)


def iso_noise(image: np.ndarray, color_shift: float, intensity: float, uniforms: np.ndarray,
              normals: np.ndarray) -> np.ndarray:
    """Camera sensor noise in HLS space (Albumentations-2 formula) on float32 [0, 1] RGB.

    Lightness gets Poisson(std(L) * intensity) counts scaled by intensity * (1 - L); hue gets
    Normal(0, color_shift * intensity) (degrees).

    Args:
      image: HxWx3 float32 RGB in [0, 1].
      color_shift: hue noise scale.
      intensity: noise strength.
      uniforms: HxW uniforms in [0, 1), turned into the Poisson counts.
      normals: HxW standard normals for the hue noise.
    """
    hls = cv2.cvtColor(image, cv2.COLOR_RGB2HLS)
    _, std = cv2.meanStdDev(hls)
    counts = poisson_from_uniform(uniforms, float(std[1, 0]) * intensity)
    hue = hls[:, :, 0]
    hue += normals * np.float32(color_shift * intensity)
    lightness = hls[:, :, 1]
    lightness += counts * np.float32(intensity) * (1.0 - lightness)
    np.clip(lightness, 0.0, 1.0, out=lightness)
    out = cv2.cvtColor(hls, cv2.COLOR_HLS2RGB)
    return np.clip(out, 0.0, 1.0, out=out)
