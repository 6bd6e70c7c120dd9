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
