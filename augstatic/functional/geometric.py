"""Geometric image functions (flips, transpose, warps); dtype-agnostic unless noted."""

from __future__ import annotations

import cv2
import numpy as np


def hflip(image: np.ndarray) -> np.ndarray:
    """Mirrors left-right (cv2.flip is several times faster than slicing plus copy)."""
    return cv2.flip(image, 1)


def vflip(image: np.ndarray) -> np.ndarray:
    """Mirrors top-bottom."""
    return cv2.flip(image, 0)


def transpose(image: np.ndarray) -> np.ndarray:
    """Swaps rows and columns (HxWxC -> WxHxC)."""
    if image.ndim == 3 and image.shape[2] == 1:
        return cv2.transpose(image[:, :, 0])[:, :, None]
    return cv2.transpose(image)


def remap(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray, interpolation: int,
          border_mode: int, fill: float = 0.0) -> np.ndarray:
    """Samples `image` at float32 (map_x, map_y) with OpenCV's remap."""
    return cv2.remap(image, map_x, map_y, interpolation, borderMode=border_mode,
                     borderValue=fill).reshape(image.shape)


def optical_distortion_maps(height: int, width: int, k: float, dx: float,
                            dy: float) -> tuple[np.ndarray, np.ndarray]:
    """float32 sampling maps of the radial lens model (OpenCV's initUndistortRectifyMap with
    camera matrix [[W, 0, W/2 + dx], [0, H, H/2 + dy]], k1 = k2 = k and its default new
    camera matrix centred at ((W - 1) / 2, (H - 1) / 2)).

    Computed directly in numpy: r^2 is an outer sum of per-column and per-row terms, which
    halves the cost of the general OpenCV routine.
    """
    x = (np.arange(width, dtype=np.float32) - np.float32((width - 1) / 2)) / np.float32(width)
    y = (np.arange(height, dtype=np.float32) - np.float32((height - 1) / 2)) / np.float32(height)
    r2 = np.add.outer(y * y, x * x)
    factor = r2 + np.float32(1.0)
    factor *= r2
    factor *= np.float32(k)
    factor += np.float32(1.0)  # 1 + k r^2 + k r^4
    map_x = factor * (np.float32(width) * x)[None, :]
    map_x += np.float32(width / 2 + dx)
    factor *= (np.float32(height) * y)[:, None]
    factor += np.float32(height / 2 + dy)
    return map_x, factor


def grid_distortion_axis(size: int, num_steps: int, steps: np.ndarray) -> np.ndarray:
    """Source coordinate of every output pixel along one axis (Albumentations' generate_grid).

    Args:
      size: axis length.
      num_steps: grid cells along the axis.
      steps: num_steps + 1 relative cell lengths (already normalised).
    """
    step = size // num_steps
    coords = np.zeros(size, np.float32)
    previous = 0.0
    for index, relative in enumerate(steps):
        start = index * step
        end = min(start + step, size)
        current = previous + step * relative
        if end > start:
            coords[start:end] = np.linspace(previous, current, end - start)
        previous = current
    return coords


def normalize_grid_steps(size: int, num_steps: int, steps) -> np.ndarray:
    """Albumentations' normalisation: shrink the short last cell, keep the grid inside the image."""
    steps = np.array(steps, dtype=np.float64)
    step = size // num_steps
    last = min(size, (num_steps + 1) * step) - num_steps * step
    steps[-1] *= last / step
    return steps * ((size / step) / steps.sum())


def separable_remap(image: np.ndarray, xs: np.ndarray, ys: np.ndarray, interpolation: int,
                    border_mode: int) -> np.ndarray:
    """Remap whose source x depends only on the column and y only on the row."""
    map_x = np.broadcast_to(xs[None, :], (ys.size, xs.size))
    map_y = np.broadcast_to(ys[:, None], (ys.size, xs.size))
    return remap(image, np.ascontiguousarray(map_x), np.ascontiguousarray(map_y), interpolation,
                 border_mode)


def rotate(image: np.ndarray, angle: float, interpolation: int, border_mode: int,
           fill: float = 0.0) -> np.ndarray:
    """Rotates by `angle` degrees (counter-clockwise) about the image centre, same size."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D(((width - 1) * 0.5, (height - 1) * 0.5), angle, 1.0)
    return cv2.warpAffine(image, matrix, (width, height), flags=interpolation,
                          borderMode=border_mode, borderValue=fill).reshape(image.shape)


def crop_and_resize(image: np.ndarray, top: int, left: int, crop_height: int, crop_width: int,
                    size: tuple[int, int], interpolation: int) -> np.ndarray:
    """Crops [top:top+h, left:left+w] and resizes it to `size` (height, width)."""
    crop = image[top:top + crop_height, left:left + crop_width]
    out = cv2.resize(crop, (size[1], size[0]), interpolation=interpolation)
    return out.reshape(size + image.shape[2:])


def elastic_maps(fields: np.ndarray, alpha: float, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Absolute float32 sampling maps from raw (2, H, W) displacement noise.

    As in Albumentations 2: the noise is divided by its largest magnitude, smoothed by a
    Gaussian of `sigma` (automatic kernel size, replicated border) and scaled by `alpha`.
    """
    _, height, width = fields.shape
    peak = float(np.abs(fields).max())
    scale = np.float32(alpha / peak) if peak > 1e-6 else np.float32(alpha)
    dx = cv2.GaussianBlur(fields[0], (0, 0), sigma, borderType=cv2.BORDER_REPLICATE) * scale
    dy = cv2.GaussianBlur(fields[1], (0, 0), sigma, borderType=cv2.BORDER_REPLICATE) * scale
    dx += np.arange(width, dtype=np.float32)[None, :]
    dy += np.arange(height, dtype=np.float32)[:, None]
    return dx, dy
