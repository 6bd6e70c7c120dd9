"""The policy ops as standalone transforms (torchvision v2 semantics, see functional.policy_ops).

Each op takes the magnitude torchvision's policies give it, drawn uniformly from
`magnitude_range` ((low, high), or x meaning (-x, x): the sign torchvision draws):
shear factor for ShearX/ShearY, whole pixels for TranslateX/TranslateY (truncated toward 0,
as torchvision's int()), factor - 1 for Brightness/Color/Contrast/Sharpness. Posterize,
Solarize, Rotate and Equalize are the existing transforms of those names; the policies call
the torchvision-exact functions directly (see augstatic.policies).

float32 input is quantised to 8 bits and returned as float32 (torchvision defines these ops
on uint8); grayscale is processed as one channel, as torchvision does (Color leaves it as is).
"""

from __future__ import annotations

from augstatic import validation
from augstatic.core import Transform
from augstatic.functional import policy_ops as F
from augstatic.registry import register


class _PolicyOp(Transform):
    float_native = False

    def _set_magnitude(self, magnitude_range, low: float, high: float) -> None:
        self._config["magnitude_range"] = validation.number_range(
            "magnitude_range", magnitude_range, low, high, symmetric=True)

    def sample(self, rng, shape):
        return float(rng.uniform(*self._config["magnitude_range"]))


class _GeometricOp(_PolicyOp):
    def __init__(self, magnitude_range, interpolation: str, fill: float, p: float, low: float,
                 high: float):
        super().__init__(p=p)
        self._set_magnitude(magnitude_range, low, high)
        self._config["interpolation"] = validation.choice("interpolation", interpolation,
                                                          ("nearest", "linear"))
        self._config["fill"] = validation.number("fill", fill, 0.0, 255.0)
        self._interp = validation.INTERPOLATIONS[interpolation]


@register
class Identity(Transform):
    """Returns the image unchanged (a copy): the policies' no-op."""

    def apply(self, image, params):
        return F.identity(image)


@register
class ShearX(_GeometricOp):
    """Horizontal shear x_in = x + m * y about the top-left corner, black fill (torchvision).

    Args:
      magnitude_range: shear factor m (tan of the shear angle); x means (-x, x).
      interpolation: 'nearest' (torchvision's policy default) or 'linear'.
      fill: value of the uncovered area (8-bit units).
      p: probability of applying.
    """

    def __init__(self, magnitude_range=0.3, interpolation: str = "nearest", fill: float = 0.0,
                 p: float = 1.0):
        super().__init__(magnitude_range, interpolation, fill, p, -10.0, 10.0)

    def apply(self, image, params):
        return F.shear_x(image, params, self._interp, self._config["fill"])


@register
class ShearY(ShearX):
    """Vertical shear y_in = y + m * x about the top-left corner (see ShearX)."""

    def apply(self, image, params):
        return F.shear_y(image, params, self._interp, self._config["fill"])


@register
class TranslateX(_GeometricOp):
    """Shifts the content right by int(m) pixels (left for m < 0), black fill.

    Args:
      magnitude_range: shift in pixels; x means (-x, x) (default: TrivialAugmentWide's 32).
      interpolation: 'nearest' or 'linear' (whole-pixel shifts: both give the same result).
      fill: value of the uncovered area (8-bit units).
      p: probability of applying.
    """

    def __init__(self, magnitude_range=32.0, interpolation: str = "nearest", fill: float = 0.0,
                 p: float = 1.0):
        super().__init__(magnitude_range, interpolation, fill, p, -1e5, 1e5)

    def apply(self, image, params):
        return F.translate(image, int(params), 0, self._interp, self._config["fill"])


@register
class TranslateY(TranslateX):
    """Shifts the content down by int(m) pixels (up for m < 0), see TranslateX."""

    def apply(self, image, params):
        return F.translate(image, 0, int(params), self._interp, self._config["fill"])


class _FactorOp(_PolicyOp):
    """An enhancement with factor 1 + m, m drawn from `magnitude_range` in [-1, 10]."""

    def __init__(self, magnitude_range=0.9, p: float = 1.0):
        super().__init__(p=p)
        self._set_magnitude(magnitude_range, -1.0, 10.0)


@register
class Brightness(_FactorOp):
    """x * (1 + m), truncated (torchvision adjust_brightness); default m in (-0.9, 0.9)."""

    def apply(self, image, params):
        return F.brightness(image, 1.0 + params)


@register
class Color(_FactorOp):
    """Saturation: blend with the gray image by 1 + m (adjust_saturation); grayscale unchanged."""

    def apply(self, image, params):
        return F.color(image, 1.0 + params)


@register
class Contrast(_FactorOp):
    """Blend with the mean gray level by 1 + m (torchvision adjust_contrast)."""

    def apply(self, image, params):
        return F.contrast(image, 1.0 + params)


@register
class Sharpness(_FactorOp):
    """Blend with the 3x3-smoothed image by 1 + m, border kept (adjust_sharpness)."""

    def apply(self, image, params):
        return F.sharpness(image, 1.0 + params)


@register
class AutoContrast(Transform):
    """Stretches each channel's [min, max] to [0, 255] (torchvision autocontrast)."""

    float_native = False

    def apply(self, image, params):
        return F.autocontrast(image)
