"""Geometric transforms: flips, transpose, rotation, crops and distortions."""

from __future__ import annotations

import cv2
import numpy as np

from augstatic import validation
from augstatic.core import Transform, batch_rows
from augstatic.functional import geometric as F
from augstatic.registry import register


@register
class HorizontalFlip(Transform):
    """Mirrors the image left-right."""

    def apply(self, image, params):
        return F.hflip(image)

    def apply_batch_deterministic(self, images):
        return F.hflip(batch_rows(images)).reshape(images.shape)


@register
class VerticalFlip(Transform):
    """Mirrors the image top-bottom."""

    def apply(self, image, params):
        return F.vflip(image)

    def apply_batch_deterministic(self, images):
        out = np.empty_like(images)
        for image, target in zip(images, out):  # cv2.flip straight into the batch buffer
            cv2.flip(image, 0, dst=target)
        return out


@register
class Transpose(Transform):
    """Swaps rows and columns: an HxWxC image becomes WxHxC."""

    def apply(self, image, params):
        return F.transpose(image)

    def apply_batch_deterministic(self, images):
        n, h, w, c = images.shape
        out = np.empty((n, w, h, c), dtype=images.dtype)
        for image, target in zip(images, out):  # cv2.transpose straight into the batch buffer
            if c == 1:
                cv2.transpose(image[:, :, 0], dst=target[:, :, 0])
            else:
                cv2.transpose(image, dst=target)
        return out


class _Warp(Transform):
    """Base of warps with an interpolation and a border mode (names kept in `params`)."""

    def _set_warp(self, interpolation: str, border_mode: str) -> None:
        self._config["interpolation"] = validation.interpolation("interpolation", interpolation)
        self._config["border_mode"] = validation.border_mode("border_mode", border_mode)
        self._interp = validation.INTERPOLATIONS[interpolation]
        self._border = validation.BORDER_MODES[border_mode]


@register
class Rotate(_Warp):
    """Rotates about the centre by an angle drawn from `limit` (degrees), same output size.

    Args:
      limit: (low, high) angle in degrees, or x meaning (-x, x).
      interpolation: 'nearest', 'linear', 'cubic', 'area' or 'lanczos4'.
      border_mode: 'constant', 'replicate', 'reflect', 'wrap' or 'reflect_101'.
      fill: border value for 'constant' (8-bit units).
      p: probability of applying.
    """

    def __init__(self, limit=(-90.0, 90.0), interpolation: str = "linear",
                 border_mode: str = "reflect_101", fill: float = 0.0, p: float = 1.0):
        super().__init__(p=p)
        self._config = {"limit": validation.number_range("limit", limit, -360.0, 360.0, symmetric=True),
                        "fill": validation.number("fill", fill, 0.0, 255.0)}
        self._set_warp(interpolation, border_mode)

    def sample(self, rng, shape):
        return float(rng.uniform(*self._config["limit"]))

    def apply(self, image, params):
        fill = self._config["fill"] if image.dtype == np.uint8 else self._config["fill"] / 255.0
        return F.rotate(image, params, self._interp, self._border, fill)


@register
class RandomResizedCrop(Transform):
    """Crops a random area fraction (`scale`) and aspect ratio (`ratio`), resized to `size`.

    Args:
      size: (height, width) of the output; None keeps the input size.
      scale: (low, high) fraction of the image area to crop.
      ratio: (low, high) width / height aspect ratio of the crop (log-uniform).
      interpolation: resize interpolation name.
      p: probability of applying (when not applied the input is returned unresized).
    """

    def __init__(self, size=None, scale=(0.08, 1.0), ratio=(0.75, 4.0 / 3.0),
                 interpolation: str = "linear", p: float = 1.0):
        super().__init__(p=p)
        scale = validation.number_range("scale", scale, 0.0, 1.0)
        if scale[1] <= 0:
            raise ValueError(f"scale must have a positive upper end, got {scale!r}")
        self._config = {"size": None if size is None else validation.size_pair("size", size),
                        "scale": scale,
                        "ratio": validation.number_range("ratio", ratio, 1e-3),
                        "interpolation": validation.interpolation("interpolation", interpolation)}
        if self._config["ratio"][0] <= 0:
            raise ValueError(f"ratio must be positive, got {ratio!r}")
        self._interp = validation.INTERPOLATIONS[interpolation]

    def sample(self, rng, shape):
        """torchvision's rule: 10 tries for a fitting crop, else the central crop."""
        height, width = shape[:2]
        area = height * width
        log_ratio = np.log(self._config["ratio"])
        for _ in range(10):
            target = area * rng.uniform(*self._config["scale"])
            aspect = float(np.exp(rng.uniform(*log_ratio)))
            crop_w = int(round(np.sqrt(target * aspect)))
            crop_h = int(round(np.sqrt(target / aspect)))
            if 0 < crop_w <= width and 0 < crop_h <= height:
                top = int(rng.integers(0, height - crop_h + 1))
                left = int(rng.integers(0, width - crop_w + 1))
                return top, left, crop_h, crop_w
        aspect = width / height
        low, high = self._config["ratio"]
        if aspect < low:
            crop_w, crop_h = width, int(round(width / low))
        elif aspect > high:
            crop_h, crop_w = height, int(round(height * high))
        else:
            crop_w, crop_h = width, height
        crop_h, crop_w = max(1, min(crop_h, height)), max(1, min(crop_w, width))
        return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w

    def apply(self, image, params):
        size = self._config["size"] or image.shape[:2]
        return F.crop_and_resize(image, *params, tuple(size), self._interp)


@register
class OpticalDistortion(_Warp):
    """Radial lens distortion k ~ U(distort_limit) about a centre shifted by U(shift_limit).

    Args:
      distort_limit: (low, high) or x meaning (-x, x): k1 = k2 coefficient (paper: 0.05).
      shift_limit: (low, high) or x meaning (-x, x): optical-centre shift as a fraction of the
        width / height (paper: 0.05).
      interpolation: resampling name (paper: 'linear').
      border_mode: border name (paper: 'reflect_101').
      p: probability of applying.
    """

    def __init__(self, distort_limit=0.05, shift_limit=0.05, interpolation: str = "linear",
                 border_mode: str = "reflect_101", p: float = 1.0):
        super().__init__(p=p)
        self._config = {
            "distort_limit": validation.number_range("distort_limit", distort_limit, -1.0, 1.0, True),
            "shift_limit": validation.number_range("shift_limit", shift_limit, -1.0, 1.0, True)}
        self._set_warp(interpolation, border_mode)

    def sample(self, rng, shape):
        k = float(rng.uniform(*self._config["distort_limit"]))
        dx, dy = rng.uniform(*self._config["shift_limit"], size=2)
        return k, float(dx) * shape[1], float(dy) * shape[0]

    def apply(self, image, params):
        height, width = image.shape[:2]
        map_xy, map_frac = F.optical_distortion_maps(height, width, *params)
        return F.remap(image, map_xy, map_frac, self._interp, self._border)


@register
class GridDistortion(_Warp):
    """Stretches the cells of a num_steps x num_steps grid by 1 + U(distort_limit).

    Args:
      num_steps: grid cells per side (paper: 5).
      distort_limit: (low, high) or x meaning (-x, x) (paper: 0.3).
      interpolation: resampling name (paper: 'linear').
      border_mode: border name (paper: 'reflect_101').
      normalized: rescale steps so the distortion stays inside the image (Albumentations).
      p: probability of applying.
    """

    def __init__(self, num_steps: int = 5, distort_limit=0.3, interpolation: str = "linear",
                 border_mode: str = "reflect_101", normalized: bool = True, p: float = 1.0):
        super().__init__(p=p)
        self._config = {"num_steps": validation.integer("num_steps", num_steps, 1),
                        "distort_limit": validation.number_range("distort_limit", distort_limit,
                                                                 -1.0, 1.0, True),
                        "normalized": validation.flag("normalized", normalized)}
        self._set_warp(interpolation, border_mode)

    def sample(self, rng, shape):
        steps = 1.0 + rng.uniform(*self._config["distort_limit"], size=(2, self._config["num_steps"] + 1))
        return steps[0], steps[1]

    def apply(self, image, params):
        steps_x, steps_y = params
        height, width = image.shape[:2]
        num_steps = self._config["num_steps"]
        axes = []
        for size, steps in ((width, steps_x), (height, steps_y)):
            if size < num_steps:  # cells would be empty: leave this axis undistorted
                axes.append(np.arange(size, dtype=np.float32))
                continue
            if self._config["normalized"]:
                steps = F.normalize_grid_steps(size, num_steps, steps)
            axes.append(F.grid_distortion_axis(size, num_steps, steps))
        return F.separable_remap(image, axes[0], axes[1], self._interp, self._border)


@register
class ElasticTransform(_Warp):
    """Elastic deformation: Gaussian-smoothed random displacements (Albumentations 2).

    Args:
      alpha: displacement scale in pixels.
      sigma: Gaussian smoothing of the displacement field.
      interpolation: resampling name.
      border_mode: border name.
      p: probability of applying.
    """

    def __init__(self, alpha: float = 1.0, sigma: float = 50.0, interpolation: str = "linear",
                 border_mode: str = "reflect_101", p: float = 1.0):
        super().__init__(p=p)
        self._config = {"alpha": validation.number("alpha", alpha, 0.0),
                        "sigma": validation.number("sigma", sigma, 1e-3)}
        self._set_warp(interpolation, border_mode)

    def sample(self, rng, shape):
        return rng.standard_normal((2,) + tuple(shape[:2]), dtype=np.float32)

    def apply(self, image, params):
        map_x, map_y = F.elastic_maps(params, self._config["alpha"], self._config["sigma"])
        return F.remap(image, map_x, map_y, self._interp, self._border)
