"""Augmentation policies with torchvision v2's op and magnitude tables: RandAugment,
TrivialAugmentWide, AugMix.

Reference: torchvision/transforms/v2/_auto_augment.py (torchvision 0.29.1). The draws follow
torchvision's order (op, magnitude bin, sign; AugMix: the two Dirichlet draws, then per chain
its depth and ops), from the Generator passed to the call. Ops are the torchvision-exact
functions of augstatic.functional.policy_ops, so on uint8 images the pixels equal
torchvision's for the same ops and magnitudes (nearest rotations aside: see that module).
float32 input is quantised to 8 bits (the policies are defined on uint8) and returned as float32.
"""

from __future__ import annotations

import functools

import numpy as np

from augstatic import validation
from augstatic.core import Transform
from augstatic.functional import policy_ops as F
from augstatic.registry import register

# Magnitude specs, as in torchvision's _AUGMENTATION_SPACE lambdas:
#   None: no magnitude; ("linspace", start, end): torch.linspace(start, end, num_bins), where
#   end may be ("width" | "height", k) meaning k * width / height; ("posterize", top, span):
#   (top - arange(num_bins) / ((num_bins - 1) / span)).round().int().
# Each row: op -> (spec, signed).
RANDAUGMENT_SPACE = {
    "Identity": (None, False),
    "ShearX": (("linspace", 0.0, 0.3), True),
    "ShearY": (("linspace", 0.0, 0.3), True),
    "TranslateX": (("linspace", 0.0, ("width", 150.0 / 331.0)), True),
    "TranslateY": (("linspace", 0.0, ("height", 150.0 / 331.0)), True),
    "Rotate": (("linspace", 0.0, 30.0), True),
    "Brightness": (("linspace", 0.0, 0.9), True),
    "Color": (("linspace", 0.0, 0.9), True),
    "Contrast": (("linspace", 0.0, 0.9), True),
    "Sharpness": (("linspace", 0.0, 0.9), True),
    "Posterize": (("posterize", 8, 4), False),
    "Solarize": (("linspace", 1.0, 0.0), False),
    "AutoContrast": (None, False),
    "Equalize": (None, False),
}

TRIVIALAUGMENT_WIDE_SPACE = {
    "Identity": (None, False),
    "ShearX": (("linspace", 0.0, 0.99), True),
    "ShearY": (("linspace", 0.0, 0.99), True),
    "TranslateX": (("linspace", 0.0, 32.0), True),
    "TranslateY": (("linspace", 0.0, 32.0), True),
    "Rotate": (("linspace", 0.0, 135.0), True),
    "Brightness": (("linspace", 0.0, 0.99), True),
    "Color": (("linspace", 0.0, 0.99), True),
    "Contrast": (("linspace", 0.0, 0.99), True),
    "Sharpness": (("linspace", 0.0, 0.99), True),
    "Posterize": (("posterize", 8, 6), False),
    "Solarize": (("linspace", 1.0, 0.0), False),
    "AutoContrast": (None, False),
    "Equalize": (None, False),
}

AUGMIX_PARTIAL_SPACE = {
    "ShearX": (("linspace", 0.0, 0.3), True),
    "ShearY": (("linspace", 0.0, 0.3), True),
    "TranslateX": (("linspace", 0.0, ("width", 1.0 / 3.0)), True),
    "TranslateY": (("linspace", 0.0, ("height", 1.0 / 3.0)), True),
    "Rotate": (("linspace", 0.0, 30.0), True),
    "Posterize": (("posterize", 4, 4), False),
    "Solarize": (("linspace", 1.0, 0.0), False),
    "AutoContrast": (None, False),
    "Equalize": (None, False),
}
AUGMIX_SPACE = {
    **AUGMIX_PARTIAL_SPACE,
    "Brightness": (("linspace", 0.0, 0.9), True),
    "Color": (("linspace", 0.0, 0.9), True),
    "Contrast": (("linspace", 0.0, 0.9), True),
    "Sharpness": (("linspace", 0.0, 0.9), True),
}
AUGMIX_PARAMETER_MAX = 10  # torchvision's AugMix._PARAMETER_MAX: bins of every AugMix table


def torch_linspace(start: float, end: float, steps: int) -> np.ndarray:
    """torch.linspace(start, end, steps) in float32, bit for bit (CPU kernel).

    torch fills the first half as start + step * i and the second as end - step * (steps-1-i),
    each one fused multiply-add of float32 values (exact in float64, then rounded once).
    """
    start, end = np.float32(start), np.float32(end)
    if steps == 1:
        return np.array([start], np.float32)
    step = np.float64(np.float32((end - start) / np.float32(steps - 1)))
    i = np.arange(steps, dtype=np.float64)
    values = np.where(i < steps // 2, np.float64(start) + step * i,
                      np.float64(end) - step * (steps - 1 - i))
    return values.astype(np.float32)


def magnitudes(spec, num_bins: int, height: int, width: int) -> np.ndarray | None:
    """The magnitude bins of one table row for an image of height x width (None: no magnitude)."""
    if spec is None:
        return None
    kind, first, second = spec
    if kind == "posterize":
        steps = np.arange(num_bins, dtype=np.float32) / np.float32((num_bins - 1) / second)
        return np.rint(np.float32(first) - steps).astype(np.int64)  # round half to even
    if isinstance(second, tuple):
        side, factor = second
        second = factor * (width if side == "width" else height)
    return torch_linspace(first, second, num_bins)


@functools.lru_cache(maxsize=256)
def _bins(space_name: str, op: str, num_bins: int, height: int, width: int):
    spec = _SPACES[space_name][op][0]
    return magnitudes(spec, num_bins, height, width)


_SPACES = {"randaugment": RANDAUGMENT_SPACE, "trivialaugmentwide": TRIVIALAUGMENT_WIDE_SPACE,
           "augmix": AUGMIX_SPACE, "augmix_partial": AUGMIX_PARTIAL_SPACE}


def apply_op(image: np.ndarray, op: str, magnitude: float, interpolation: int) -> np.ndarray:
    """torchvision's _apply_image_or_video_transform on a uint8 image, fill 0.

    Identity returns `image` itself (as torchvision does); every other op a new array.
    """
    if op == "Identity":
        return image
    if op == "ShearX":
        return F.shear_x(image, magnitude, interpolation)
    if op == "ShearY":
        return F.shear_y(image, magnitude, interpolation)
    if op == "TranslateX":
        return F.translate(image, int(magnitude), 0, interpolation)
    if op == "TranslateY":
        return F.translate(image, 0, int(magnitude), interpolation)
    if op == "Rotate":
        return F.rotate(image, magnitude, interpolation)
    if op == "Brightness":
        return F.brightness(image, 1.0 + magnitude)
    if op == "Color":
        return F.color(image, 1.0 + magnitude)
    if op == "Contrast":
        return F.contrast(image, 1.0 + magnitude)
    if op == "Sharpness":
        return F.sharpness(image, 1.0 + magnitude)
    if op == "Posterize":
        return F.posterize(image, int(magnitude))
    if op == "Solarize":
        return F.solarize(image, 255.0 * magnitude)
    if op == "AutoContrast":
        return F.autocontrast(image)
    if op == "Equalize":
        return F.equalize(image)
    raise ValueError(f"unknown policy op {op!r}; allowed: {sorted(RANDAUGMENT_SPACE)}")


class _Policy(Transform):
    """Base: `sample` draws the whole plan (ops and magnitudes), `apply` runs it."""

    float_native = False

    def _set_interpolation(self, interpolation: str) -> None:
        self._config["interpolation"] = validation.choice("interpolation", interpolation,
                                                          ("nearest", "linear"))
        self._interp = validation.INTERPOLATIONS[interpolation]

    def _draw_op(self, rng, space_name: str, bin_index, num_bins: int, shape) -> tuple:
        """One op and its signed magnitude, drawn in torchvision's order."""
        space = _SPACES[space_name]
        names = tuple(space)
        op = names[int(rng.integers(len(names)))]
        bins = _bins(space_name, op, num_bins, shape[0], shape[1])
        if bins is None:
            return op, 0.0
        index = bin_index if isinstance(bin_index, int) else int(rng.integers(bin_index[0]))
        magnitude = float(bins[index])
        if space[op][1] and rng.random() <= 0.5:
            magnitude = -magnitude
        return op, magnitude

    def _run(self, image: np.ndarray, ops) -> np.ndarray:
        out = image
        for op, magnitude in ops:
            out = apply_op(out, op, magnitude, self._interp)
        return out if out is not image else image.copy()


def _bins_count(num_magnitude_bins) -> int:
    return validation.integer("num_magnitude_bins", num_magnitude_bins, 2, 1000)


@register
class RandAugment(_Policy):
    """RandAugment (Cubuk et al. 2019) as torchvision v2: `num_ops` ops drawn uniformly from 14,
    each at bin `magnitude` of `num_magnitude_bins`, with a random sign where signed.

    Args:
      num_ops: ops applied in sequence (>= 0).
      magnitude: magnitude bin, in [0, num_magnitude_bins - 1].
      num_magnitude_bins: number of magnitude bins (>= 2).
      interpolation: 'nearest' (torchvision's default) or 'linear' for the geometric ops.
      p: probability of applying.
    """

    def __init__(self, num_ops: int = 2, magnitude: int = 9, num_magnitude_bins: int = 31,
                 interpolation: str = "nearest", p: float = 1.0):
        super().__init__(p=p)
        bins = _bins_count(num_magnitude_bins)
        self._config = {"num_ops": validation.integer("num_ops", num_ops, 0, 100),
                        "magnitude": validation.integer("magnitude", magnitude, 0, bins - 1),
                        "num_magnitude_bins": bins}
        self._set_interpolation(interpolation)

    def sample(self, rng, shape):
        config = self._config
        return [self._draw_op(rng, "randaugment", config["magnitude"], config["num_magnitude_bins"],
                              shape) for _ in range(config["num_ops"])]

    def apply(self, image, params):
        return self._run(image, params)


@register
class TrivialAugmentWide(_Policy):
    """TrivialAugment Wide (Müller & Hutter 2021) as torchvision v2: one op drawn uniformly
    from 14, at a magnitude bin drawn uniformly, with a random sign where signed.

    Args:
      num_magnitude_bins: number of magnitude bins (>= 2).
      interpolation: 'nearest' (torchvision's default) or 'linear' for the geometric ops.
      p: probability of applying.
    """

    def __init__(self, num_magnitude_bins: int = 31, interpolation: str = "nearest",
                 p: float = 1.0):
        super().__init__(p=p)
        self._config = {"num_magnitude_bins": _bins_count(num_magnitude_bins)}
        self._set_interpolation(interpolation)

    def sample(self, rng, shape):
        bins = self._config["num_magnitude_bins"]
        return [self._draw_op(rng, "trivialaugmentwide", (bins,), bins, shape)]

    def apply(self, image, params):
        return self._run(image, params)


@register
class AugMix(_Policy):
    """AugMix (Hendrycks et al. 2020) as torchvision v2: `mixture_width` chains of 1-3 ops
    (or `chain_depth`), mixed with Dirichlet weights and blended with the original by a
    Beta(alpha, alpha) weight; the float32 mix is truncated to uint8 as torchvision casts it.

    Args:
      severity: magnitude bins used, in [1, 10] (bins drawn in [0, severity - 1] of 10).
      mixture_width: number of chains (>= 1).
      chain_depth: ops per chain (>= 1), or -1 for a depth drawn uniformly in [1, 3].
      alpha: Dirichlet / Beta concentration (> 0).
      all_ops: include Brightness, Color, Contrast and Sharpness (torchvision's default).
      interpolation: 'linear' (torchvision's AugMix default) or 'nearest'.
      p: probability of applying.
    """

    def __init__(self, severity: int = 3, mixture_width: int = 3, chain_depth: int = -1,
                 alpha: float = 1.0, all_ops: bool = True, interpolation: str = "linear",
                 p: float = 1.0):
        super().__init__(p=p)
        depth = validation.integer("chain_depth", chain_depth, -1, 100)
        if depth == 0:
            raise ValueError("chain_depth must be -1 (random depth in [1, 3]) or an integer in "
                             "[1, 100], got 0")
        alpha = validation.number("alpha", alpha, 0.0)
        if alpha <= 0:
            raise ValueError(f"alpha must be a number > 0, got {alpha!r}")
        self._config = {"severity": validation.integer("severity", severity, 1,
                                                       AUGMIX_PARAMETER_MAX),
                        "mixture_width": validation.integer("mixture_width", mixture_width, 1, 100),
                        "chain_depth": depth, "alpha": alpha,
                        "all_ops": validation.flag("all_ops", all_ops)}
        self._set_interpolation(interpolation)
        self._space = "augmix" if self._config["all_ops"] else "augmix_partial"

    def sample(self, rng, shape):
        config = self._config
        alpha, width = config["alpha"], config["mixture_width"]
        # torch samples float32 Dirichlet weights; the products stay float32 as in torchvision.
        original = rng.dirichlet([alpha, alpha]).astype(np.float32)
        weights = rng.dirichlet([alpha] * width).astype(np.float32) * original[1]
        chains = []
        for _ in range(width):
            depth = config["chain_depth"] if config["chain_depth"] > 0 else int(rng.integers(1, 4))
            chains.append([self._draw_op(rng, self._space, (config["severity"],),
                                         AUGMIX_PARAMETER_MAX, shape) for _ in range(depth)])
        return original[0], weights, chains

    def apply(self, image, params):
        original, weights, chains = params
        mix = image.astype(np.float32)
        mix *= original
        for weight, chain in zip(weights, chains):
            aug = self._run(image, chain)
            mix += aug.astype(np.float32) * weight
        return np.clip(mix, 0.0, 255.0, out=mix).astype(np.uint8)


__all__ = ["AugMix", "RandAugment", "TrivialAugmentWide", "apply_op", "magnitudes",
           "torch_linspace", "RANDAUGMENT_SPACE", "TRIVIALAUGMENT_WIDE_SPACE", "AUGMIX_SPACE",
           "AUGMIX_PARTIAL_SPACE"]
