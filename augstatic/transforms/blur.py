"""Blur and convolution transforms."""

from __future__ import annotations

import numpy as np

from augstatic import validation
from augstatic.core import Transform
from augstatic.functional import blur as F
from augstatic.registry import register


def sample_odd(rng: np.random.Generator, low: int, high: int) -> int:
    """Uniform draw among the odd integers in [low, high]."""
    return low + 2 * int(rng.integers(0, (high - low) // 2 + 1)) if high > low else low


class _KernelBlur(Transform):
    """Base of blurs with a random odd kernel size from `blur_limit`."""

    def __init__(self, blur_limit=(3, 7), p: float = 1.0):
        super().__init__(p=p)
        self._config = {"blur_limit": validation.odd_kernel_range("blur_limit", blur_limit)}

    def sample(self, rng, shape):
        return sample_odd(rng, *self._config["blur_limit"])


@register
class Blur(_KernelBlur):
    """Box (mean) blur with an odd kernel size drawn from `blur_limit` (paper: 3..7)."""

    def apply(self, image, params):
        return F.box_blur(image, params)


@register
class MedianBlur(_KernelBlur):
    """Median blur with an odd kernel size drawn from `blur_limit` (paper: 3..7)."""

    float_native = False  # OpenCV's float median only supports kernels up to 5

    def apply(self, image, params):
        return F.median_blur(image, params)


@register
class GaussianBlur(_KernelBlur):
    """Gaussian blur: odd kernel from `blur_limit`, sigma from `sigma_limit`.

    Args:
      blur_limit: (low, high) odd kernel sizes (paper: 3..7).
      sigma_limit: (low, high) sigma range; (0, 0) derives sigma from the kernel size
        (OpenCV: 0.3 * ((k - 1) / 2 - 1) + 0.8), the paper's setting.
      p: probability of applying.
    """

    def __init__(self, blur_limit=(3, 7), sigma_limit=(0.0, 0.0), p: float = 1.0):
        super().__init__(blur_limit, p=p)
        self._config["sigma_limit"] = validation.number_range("sigma_limit", sigma_limit, 0.0)

    def sample(self, rng, shape):
        ksize = sample_odd(rng, *self._config["blur_limit"])
        low, high = self._config["sigma_limit"]
        return ksize, (float(rng.uniform(low, high)) if high > 0 else 0.0)

    def apply(self, image, params):
        return F.gaussian_blur(image, *params)


@register
class MotionBlur(_KernelBlur):
    """Blur along a random line (Albumentations-2 kernel): size, angle, direction, shift.

    Args:
      blur_limit: (low, high) odd kernel sizes (paper: 3..7).
      angle_range: (low, high) line angle in degrees.
      direction_range: (low, high) in [-1, 1]: backward-only .. symmetric .. forward-only.
      allow_shifted: randomly shift the line off the kernel centre.
      p: probability of applying.
    """

    def __init__(self, blur_limit=(3, 7), angle_range=(0.0, 360.0), direction_range=(-1.0, 1.0),
                 allow_shifted: bool = True, p: float = 1.0):
        super().__init__(blur_limit, p=p)
        self._config.update({
            "angle_range": validation.number_range("angle_range", angle_range, 0.0, 360.0),
            "direction_range": validation.number_range("direction_range", direction_range, -1.0, 1.0),
            "allow_shifted": validation.flag("allow_shifted", allow_shifted),
        })

    def sample(self, rng, shape):
        ksize = sample_odd(rng, *self._config["blur_limit"])
        angle = rng.uniform(*self._config["angle_range"])
        direction = rng.uniform(*self._config["direction_range"])
        shift = (0.0, 0.0)
        if self._config["allow_shifted"]:
            shift = tuple(rng.uniform(-1.0, 1.0, 2) * (ksize // 2) / 2)
        return F.motion_kernel(ksize, angle, direction, shift)

    def apply(self, image, params):
        return F.convolve(image, params)


@register
class GlassBlur(Transform):
    """Glass effect: Gaussian blur, random local pixel swaps, Gaussian blur again.

    Args:
      sigma: Gaussian sigma (paper: 0.7).
      max_delta: largest swap distance in pixels (paper: 4).
      iterations: swap passes (paper: 2).
      p: probability of applying.
    """

    def __init__(self, sigma: float = 0.7, max_delta: int = 4, iterations: int = 2, p: float = 1.0):
        super().__init__(p=p)
        self._config = {"sigma": validation.number("sigma", sigma, 0.0),
                        "max_delta": validation.integer("max_delta", max_delta, 1),
                        "iterations": validation.integer("iterations", iterations, 1)}

    def sample(self, rng, shape):
        delta = self._config["max_delta"]
        count = max(0, shape[0] - 2 * delta) * max(0, shape[1] - 2 * delta)
        size = (count, self._config["iterations"], 2)
        span = 2 * delta
        if span & (span - 1) == 0 and span <= 256:
            # Power-of-two span: masking raw bytes gives exactly uniform integers in
            # [-delta, delta), several times faster than Generator.integers.
            raw = np.frombuffer(rng.bytes(int(np.prod(size))), dtype=np.uint8).reshape(size)
            return (raw & np.uint8(span - 1)).astype(np.intp) - delta
        return rng.integers(-delta, delta, size=size, dtype=np.int16).astype(np.intp)

    def apply(self, image, params):
        return F.glass_blur(image, self._config["sigma"], self._config["max_delta"], params)


@register
class Sharpen(Transform):
    """Sharpens with a Laplacian kernel blended into the identity.

    Args:
      alpha: (low, high) blend of the sharpening kernel (paper: 0.2..0.5).
      lightness: (low, high) centre weight added to 8 (paper: 0.5..1.0).
      p: probability of applying.
    """

    def __init__(self, alpha=(0.2, 0.5), lightness=(0.5, 1.0), p: float = 1.0):
        super().__init__(p=p)
        self._config = {"alpha": validation.number_range("alpha", alpha, 0.0, 1.0),
                        "lightness": validation.number_range("lightness", lightness, 0.0)}

    def sample(self, rng, shape):
        return F.sharpen_kernel(rng.uniform(*self._config["alpha"]),
                                rng.uniform(*self._config["lightness"]))

    def apply(self, image, params):
        return F.convolve(image, params)


@register
class Emboss(Transform):
    """Embosses with a directional kernel blended into the identity.

    Args:
      alpha: (low, high) blend of the emboss kernel (paper: 0.2..0.5).
      strength: (low, high) emboss strength (paper: 0.2..0.7).
      p: probability of applying.
    """

    def __init__(self, alpha=(0.2, 0.5), strength=(0.2, 0.7), p: float = 1.0):
        super().__init__(p=p)
        self._config = {"alpha": validation.number_range("alpha", alpha, 0.0, 1.0),
                        "strength": validation.number_range("strength", strength, 0.0)}

    def sample(self, rng, shape):
        return F.emboss_kernel(rng.uniform(*self._config["alpha"]),
                               rng.uniform(*self._config["strength"]))

    def apply(self, image, params):
        return F.convolve(image, params)
