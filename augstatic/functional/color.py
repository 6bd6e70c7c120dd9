"""Colour functions on HxWx3 RGB images (colour matrices, PCA lighting, hue/saturation)."""

from __future__ import annotations

import cv2
import numpy as np

from augstatic.functional import pixel

# ITU-R 601 luma weights (OpenCV's RGB2GRAY).
_LUMA = np.array([0.299, 0.587, 0.114])
_SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])


def _transform(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Per-pixel affine colour map (3x3 or 3x4); saturates uint8, clips float32 to [0, 1]."""
    out = cv2.transform(image, matrix)
    return out if image.dtype == np.uint8 else np.clip(out, 0.0, 1.0, out=out)


def to_gray(image: np.ndarray) -> np.ndarray:
    """Luma (ITU-R 601) replicated into 3 equal channels: OpenCV's RGB2GRAY, then GRAY2RGB.

    On uint8 that is OpenCV's 14-bit fixed-point luma, the bytes of Albumentations' ToGray;
    a 3x3 colour matrix (`cv2.transform`) rounds 2 % of colours one level apart and is 1.5x
    slower at 512 px.
    """
    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)


def to_sepia(image: np.ndarray) -> np.ndarray:
    """The classic sepia colour matrix."""
    return _transform(image, _SEPIA)


def channel_shuffle(image: np.ndarray, order) -> np.ndarray:
    """Reorders the channels: output channel c is input channel order[c]."""
    # A permutation matrix through cv2.transform: one SIMD pass, faster than merge or
    # fancy indexing.
    return cv2.transform(image, np.eye(3)[list(order)])


def channel_dropout(image: np.ndarray, channels, fill: float) -> np.ndarray:
    """Sets the listed channels to `fill`."""
    if image.dtype == np.uint8:
        dropped = set(int(i) for i in channels)
        out = pixel.and_scalar(image, [0 if c in dropped else 255 for c in range(3)])
        if fill:  # dropped channels are 0 now, so adding `fill` there sets them to it
            out = pixel.add_scalar(out, [int(round(fill)) if c in dropped else 0 for c in range(3)])
        return out
    out = image.copy()
    out[:, :, list(channels)] = fill
    return out


def pixel_covariance(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (3,) and covariance (3, 3) of the pixels, in [0, 1] units."""
    covariance, mean = cv2.calcCovarMatrix(image.reshape(-1, 3), None,
                                           cv2.COVAR_NORMAL | cv2.COVAR_ROWS | cv2.COVAR_SCALE,
                                           cv2.CV_64F)
    scale = 255.0 if image.dtype == np.uint8 else 1.0
    return mean.ravel() / scale, covariance / (scale * scale)


def fancy_pca(image: np.ndarray, alpha_vector) -> np.ndarray:
    """Albumentations-2 Fancy PCA: x + V diag(alpha * lambda) (x - mean), clipped.

    V are the eigenvectors of the pixel covariance sorted by descending eigenvalue lambda. The
    map is affine in x, so it runs as one cv2.transform call.
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
    return _transform(image, matrix)


def adjust_brightness(image: np.ndarray, factor: float) -> np.ndarray:
    """Multiplies by `factor` (torchvision semantics)."""
    return pixel.multiply(image, factor)


def adjust_contrast(image: np.ndarray, factor: float) -> np.ndarray:
    """Blends with the mean luma: x * factor + mean * (1 - factor) (torchvision semantics)."""
    # Mean luma = luma weights . per-channel means: one reduction pass, no gray image.
    mean = float(_LUMA @ np.asarray(cv2.mean(image)[:3]))
    if image.dtype == np.uint8:
        return pixel.scale_shift(image, factor, mean * (1.0 - factor))
    return np.clip(image * np.float32(factor) + np.float32(mean * (1.0 - factor)), 0.0, 1.0)


def adjust_saturation(image: np.ndarray, factor: float) -> np.ndarray:
    """Blends with the grayscale image: x * factor + gray * (1 - factor)."""
    # Linear in x: one 3x3 colour matrix instead of gray conversion plus blending.
    matrix = factor * np.eye(3) + (1.0 - factor) * np.tile(_LUMA, (3, 1))
    return _transform(image, matrix)


def rotate_hue_plane(hue: np.ndarray, shift: int) -> np.ndarray:
    """(hue + shift) mod 180 on a contiguous uint8 OpenCV hue plane (values 0..179).

    Four saturating SIMD passes instead of a lookup table (cv2.LUT is slow in this build):
    pixels that wrap (hue >= 180 - shift) lose 180 - shift, the others gain shift.
    """
    shift = int(shift) % 180
    if shift == 0:
        return hue.copy()
    _, down = cv2.threshold(hue, 179 - shift, 180 - shift, cv2.THRESH_BINARY)
    _, up = cv2.threshold(hue, 179 - shift, shift, cv2.THRESH_BINARY_INV)
    return cv2.add(cv2.subtract(hue, down), up)


def adjust_hue(image: np.ndarray, factor: float) -> np.ndarray:
    """Rotates hue by `factor` of a full turn (torchvision semantics)."""
    if image.dtype == np.uint8:
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        hue, sat, val = cv2.split(hsv)
        hue = rotate_hue_plane(hue, int(np.floor(180.0 * factor)))
        return cv2.cvtColor(cv2.merge((hue, sat, val)), cv2.COLOR_HSV2RGB)
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    hsv[:, :, 0] = np.mod(hsv[:, :, 0] + factor * 360.0, 360.0)
    return np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), 0.0, 1.0)


def shift_hsv(image: np.ndarray, hue_shift: float, sat_shift: float, val_shift: float) -> np.ndarray:
    """Shifts hue (OpenCV 0..179 units, wrapping), saturation and value (0..255, saturating).

    Pixels with zero saturation stay gray, as in Albumentations. uint8 only.
    """
    hue, sat, val = cv2.split(cv2.cvtColor(image, cv2.COLOR_RGB2HSV))
    hue = rotate_hue_plane(hue, int(np.floor(hue_shift)))
    sat_step, val_step = int(np.rint(sat_shift)), int(np.rint(val_shift))
    if sat_step:
        _, coloured = cv2.threshold(sat, 0, 255, cv2.THRESH_BINARY)  # 0 where gray
        sat = cv2.bitwise_and(pixel.add_scalar(sat, sat_step), coloured)
    if val_step:
        val = pixel.add_scalar(val, val_step)
    return cv2.cvtColor(cv2.merge((hue, sat, val)), cv2.COLOR_HSV2RGB)
