"""Blur and convolution functions (box, Gaussian, median, motion, glass, sharpen, emboss)."""

from __future__ import annotations

import cv2
import numpy as np

_IDENTITY_3X3 = np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float32)


def box_blur(image: np.ndarray, ksize: int) -> np.ndarray:
    """Mean over a ksize x ksize window (reflect-101 border)."""
    return cv2.blur(image, (ksize, ksize)).reshape(image.shape)


# cv2.GaussianBlur with sigma 0 and ksize <= 7 uses fixed dyadic kernels ([1 2 1]/4,
# [1 4 6 4 1]/16, [2 7 14 18 14 7 2]/64) and, on uint8, rounds halves up. With the same kernels
# cv2.sepFilter2D's float32 sums are exact, and adding half of the last kernel place rounds its
# halves up too: the same bytes (tests/augstatic/test_augstatic_exact.py), 1.2-2x faster from about
# 200x200 px, slower below (benchmarks/results/augstatic_vs_albumentations*.md).
_SMALL_GAUSSIAN = {ksize: (cv2.getGaussianKernel(ksize, 0).astype(np.float32), 2.0 ** -(2 * bits + 1))
                   for ksize, bits in ((3, 2), (5, 4), (7, 6))}
_SEPARABLE_MIN_VALUES = 200 * 200 * 3


def gaussian_blur(image: np.ndarray, ksize: int, sigma: float) -> np.ndarray:
    """Gaussian blur; sigma 0 derives sigma from ksize (OpenCV: 0.3*((k-1)/2 - 1) + 0.8)."""
    if (sigma == 0 and ksize in _SMALL_GAUSSIAN and image.dtype == np.uint8
            and image.size >= _SEPARABLE_MIN_VALUES):
        kernel, delta = _SMALL_GAUSSIAN[ksize]
        return cv2.sepFilter2D(image, -1, kernel, kernel, delta=delta).reshape(image.shape)
    return cv2.GaussianBlur(image, (ksize, ksize), sigmaX=sigma, sigmaY=sigma).reshape(image.shape)


def median_blur(image: np.ndarray, ksize: int) -> np.ndarray:
    """Median over a ksize x ksize window (uint8; OpenCV limits float input to ksize <= 5)."""
    return cv2.medianBlur(image, ksize).reshape(image.shape)


def convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """2-D correlation with `kernel` (reflect-101 border); saturates uint8, clips float32."""
    out = cv2.filter2D(image, -1, kernel).reshape(image.shape)
    return out if image.dtype == np.uint8 else np.clip(out, 0.0, 1.0, out=out)


def motion_kernel(ksize: int, angle: float, direction: float, shift: tuple[float, float]) -> np.ndarray:
    """A normalised line kernel (Albumentations-2 construction).

    Args:
      ksize: odd kernel size.
      angle: line angle in degrees.
      direction: -1 (only backward) .. 0 (symmetric) .. 1 (only forward).
      shift: (x, y) offset of the line in pixels.
    """
    kernel = np.zeros((ksize, ksize), dtype=np.float32)
    center, half = ksize // 2, ksize // 2
    direction = float(np.clip(direction, -1.0, 1.0))
    start = -half * (1.0 - direction) if direction > 0 else float(-half)
    end = half * (1.0 + direction) if direction < 0 else float(half)
    t = np.linspace(start, end, ksize)
    radians = np.deg2rad(angle)
    x = np.clip(np.round(center + np.cos(radians) * t + shift[0]), 0, ksize - 1).astype(int)
    y = np.clip(np.round(center + np.sin(radians) * t + shift[1]), 0, ksize - 1).astype(int)
    kernel[y, x] = 1.0
    return kernel / kernel.sum()


def glass_swap_indices(height: int, width: int, max_delta: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of every swapped pixel, in Albumentations' order (rows fastest)."""
    rows = np.arange(height - max_delta, max_delta, -1)
    cols = np.arange(width - max_delta, max_delta, -1)
    return np.tile(rows, cols.shape[0]), np.repeat(cols, rows.shape[0])


def glass_blur(image: np.ndarray, sigma: float, max_delta: int, offsets: np.ndarray) -> np.ndarray:
    """Gaussian blur, local pixel swaps, Gaussian blur (Albumentations' "fast" mode).

    Args:
      image: HxWxC or HxW image.
      sigma: Gaussian sigma of both blurs.
      max_delta: largest swap distance; pixels within it of the border are not swap origins.
      offsets: (n_pixels, iterations, 2) integer (dy, dx) per swapped pixel and iteration,
        n_pixels as given by `glass_swap_indices`.
    """
    height, width = image.shape[:2]
    blurred = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma)
    rows, cols = glass_swap_indices(height, width, max_delta)
    if rows.size:
        # Flat indices into a (H*W, C) view: one gather and two scatters per iteration, the
        # same simultaneous-swap semantics as Albumentations' fancy-indexed tuple assignment.
        flat = blurred.reshape(height * width, -1)
        source = rows * width + cols
        for iteration in range(offsets.shape[1]):
            target = (rows + offsets[:, iteration, 0]) * width + cols + offsets[:, iteration, 1]
            at_target = flat[target]
            at_source = flat[source]
            flat[source] = at_target
            flat[target] = at_source
    return cv2.GaussianBlur(blurred, (0, 0), sigmaX=sigma).reshape(image.shape)


def sharpen_kernel(alpha: float, lightness: float) -> np.ndarray:
    """(1 - alpha) * identity + alpha * [[-1,-1,-1],[-1,8+lightness,-1],[-1,-1,-1]]."""
    effect = np.array([[-1, -1, -1], [-1, 8 + lightness, -1], [-1, -1, -1]], dtype=np.float32)
    return ((1 - alpha) * _IDENTITY_3X3 + alpha * effect).astype(np.float32)


def emboss_kernel(alpha: float, strength: float) -> np.ndarray:
    """(1 - alpha) * identity + alpha * the emboss kernel of `strength`."""
    s = strength
    effect = np.array([[-1 - s, -s, 0], [-s, 1, s], [0, s, 1 + s]], dtype=np.float32)
    return ((1 - alpha) * _IDENTITY_3X3 + alpha * effect).astype(np.float32)
