"""Colour functions on RGB images (colour matrices, PCA lighting, hue/saturation)."""

from __future__ import annotations

import cv2
import numpy as np


def pixel_covariance(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (C,) and covariance (C, C) of the pixels of an HxWxC image, in [0, 1] units."""
    pixels = image.reshape(-1, image.shape[-1]) if image.ndim == 3 else image.reshape(-1, 1)
    covariance, mean = cv2.calcCovarMatrix(pixels, None, cv2.COVAR_NORMAL | cv2.COVAR_ROWS
                                           | cv2.COVAR_SCALE, cv2.CV_64F)
    scale = 255.0 if image.dtype == np.uint8 else 1.0
    return mean.ravel() / scale, covariance / (scale * scale)


def fancy_pca(image: np.ndarray, alpha_vector: np.ndarray) -> np.ndarray:
    """Albumentations-2 Fancy PCA: x + V diag(alpha * lambda) (x - mean), clipped.

    The pixel covariance's eigenvectors V (sorted by descending eigenvalue lambda) scale the
    centred pixels; as this is affine in x it runs as one cv2.transform call.

    Args:
      image: HxWx3 uint8 or float32 RGB image.
      alpha_vector: (3,) scale factors, one per principal component.
    """
    mean, covariance = pixel_covariance(image)
    eig_vals, eig_vecs = np.linalg.eigh(covariance)
    order = eig_vals[::-1].argsort()
    eig_vals, eig_vecs = eig_vals[order], eig_vecs[:, order]
    mixing = eig_vecs @ np.diag(np.asarray(alpha_vector, dtype=np.float64) * eig_vals)
    scale = 255.0 if image.dtype == np.uint8 else 1.0
    matrix = np.empty((3, 4))
    matrix[:, :3] = np.eye(3) + mixing
    matrix[:, 3] = -(mixing @ mean) * scale
    out = cv2.transform(image, matrix)
    return out if image.dtype == np.uint8 else np.clip(out, 0.0, 1.0, out=out)
