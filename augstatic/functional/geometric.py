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
    """Samples `image` at (map_x, map_y); float32 maps are converted to OpenCV's fixed-point
    format first, which makes the remap itself several times faster (1/32-pixel precision)."""
    if map_x.dtype == np.float32 and interpolation != cv2.INTER_NEAREST:
        map_x, map_y = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)
    return cv2.remap(image, map_x, map_y, interpolation, borderMode=border_mode,
                     borderValue=fill).reshape(image.shape)


def optical_distortion_maps(height: int, width: int, k: float, dx: float,
                            dy: float) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-point maps of the radial lens model: camera matrix [[W,0,cx],[0,H,cy]], k1 = k2 = k.

    Args:
      height, width: image size.
      k: radial distortion coefficient.
      dx, dy: shift of the optical centre from the image centre, in pixels.
    """
    camera = np.array([[width, 0, width * 0.5 + dx], [0, height, height * 0.5 + dy], [0, 0, 1]],
                      dtype=np.float32)
    distortion = np.array([k, k, 0, 0, 0], dtype=np.float32)
    return cv2.initUndistortRectifyMap(camera, distortion, None, None, (width, height),
                                       cv2.CV_16SC2)


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
