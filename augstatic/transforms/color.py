"""Colour transforms on RGB: gray, sepia, channel operations, shifts, jitter, PCA lighting."""

from __future__ import annotations

import numpy as np

from augstatic import validation
from augstatic.core import Transform, batch_rows
from augstatic.functional import color as F
from augstatic.functional import pixel as P
from augstatic.registry import register


@register
class ToGray(Transform):
    """Converts to luma (ITU-R 601 weights) kept as 3 equal channels."""

    needs_rgb = True

    def apply(self, image, params):
        return F.to_gray(image)

    def apply_batch_deterministic(self, images):
        if images.shape[3] == 1:
            return images.copy()
        return F.to_gray(batch_rows(images)).reshape(images.shape)


@register
class ToSepia(Transform):
    """Applies the classic sepia colour matrix."""

    needs_rgb = True

    def apply(self, image, params):
        return F.to_sepia(image)

    def apply_batch_deterministic(self, images):
        if images.shape[3] == 1:
            return np.stack([self._apply_one(image, None) for image in images])
        return F.to_sepia(batch_rows(images)).reshape(images.shape)


@register
class ChannelShuffle(Transform):
    """Randomly permutes the RGB channels."""

    needs_rgb = True

    def sample(self, rng, shape):
        return rng.permutation(3)

    def apply(self, image, params):
        return F.channel_shuffle(image, params)


@register
class ChannelDropout(Transform):
    """Sets a random number (from `channel_drop_range`) of random channels to `fill`.

    Args:
      channel_drop_range: (low, high) number of channels to drop (paper: 1..1), high <= 2.
      fill: value of dropped channels (paper: 0), in 8-bit units.
      p: probability of applying.
    """

    needs_rgb = True

    def __init__(self, channel_drop_range=(1, 1), fill: float = 0, p: float = 1.0):
        super().__init__(p=p)
        self._config = {
            "channel_drop_range": validation.integer_range("channel_drop_range", channel_drop_range, 1, 2),
            "fill": validation.number("fill", fill, 0.0, 255.0),
        }

    def sample(self, rng, shape):
        low, high = self._config["channel_drop_range"]
        count = int(rng.integers(low, high + 1)) if high > low else low
        # Generator.choice without replacement costs tens of microseconds; for one channel
        # a single integer draw does, otherwise the head of a permutation.
        return (int(rng.integers(3)),) if count == 1 else tuple(rng.permutation(3)[:count])

    def apply(self, image, params):
        fill = self._config["fill"] if image.dtype == np.uint8 else self._config["fill"] / 255.0
        return F.channel_dropout(image, params, fill)


@register
class RGBShift(Transform):
    """Adds a random shift to each of the R, G and B channels (8-bit units, saturating).

    Args:
      r_shift_limit, g_shift_limit, b_shift_limit: (low, high) shift, or x meaning (-x, x)
        (paper: 20 each).
      p: probability of applying.
    """

    needs_rgb = True

    def __init__(self, r_shift_limit=20, g_shift_limit=20, b_shift_limit=20, p: float = 1.0):
        super().__init__(p=p)
        self._config = {
            name: validation.number_range(name, value, -255.0, 255.0, symmetric=True)
            for name, value in (("r_shift_limit", r_shift_limit), ("g_shift_limit", g_shift_limit),
                                ("b_shift_limit", b_shift_limit))}
        self._limits = np.array(list(self._config.values()))

    def sample(self, rng, shape):
        return rng.uniform(self._limits[:, 0], self._limits[:, 1])

    def apply(self, image, params):
        return P.shift_channels(image, params)


@register
class HueSaturationValue(Transform):
    """Shifts hue, saturation and value in OpenCV's 8-bit HSV (hue 0..179, wrapping).

    Args:
      hue_shift_limit: (low, high) or x meaning (-x, x) (paper: 20).
      sat_shift_limit: (low, high) or x (paper: 30).
      val_shift_limit: (low, high) or x (paper: 20).
      p: probability of applying.
    """

    needs_rgb = True
    float_native = False

    def __init__(self, hue_shift_limit=20, sat_shift_limit=30, val_shift_limit=20, p: float = 1.0):
        super().__init__(p=p)
        self._config = {
            "hue_shift_limit": validation.number_range("hue_shift_limit", hue_shift_limit, -180, 180, True),
            "sat_shift_limit": validation.number_range("sat_shift_limit", sat_shift_limit, -255, 255, True),
            "val_shift_limit": validation.number_range("val_shift_limit", val_shift_limit, -255, 255, True),
        }
        self._limits = np.array(list(self._config.values()))

    def sample(self, rng, shape):
        return rng.uniform(self._limits[:, 0], self._limits[:, 1])

    def apply(self, image, params):
        return F.shift_hsv(image, *params)


def _factor_range(arg: str, value, centre: float, low: float | None) -> tuple[float, float]:
    """x means (centre - x, centre + x) clipped at `low`; a pair is taken as is."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = validation.number(arg, value, 0.0)
        return (max(low, centre - value) if low is not None else centre - value, centre + value)
    return validation.number_range(arg, value, low)


@register
class ColorJitter(Transform):
    """Random brightness, contrast, saturation and hue, applied in a random order (torchvision).

    Args:
      brightness, contrast, saturation: factor range; x means (max(0, 1 - x), 1 + x)
        (paper: 0.2 each).
      hue: hue rotation range in turns; x means (-x, x), at most 0.5 (paper: 0.2).
      p: probability of applying.
    """

    needs_rgb = True

    def __init__(self, brightness=0.2, contrast=0.2, saturation=0.2, hue=0.2, p: float = 1.0):
        super().__init__(p=p)
        self._config = {"brightness": _factor_range("brightness", brightness, 1.0, 0.0),
                        "contrast": _factor_range("contrast", contrast, 1.0, 0.0),
                        "saturation": _factor_range("saturation", saturation, 1.0, 0.0),
                        "hue": _factor_range("hue", hue, 0.0, -0.5)}
        if not -0.5 <= self._config["hue"][0] <= self._config["hue"][1] <= 0.5:
            raise ValueError(f"hue must lie within [-0.5, 0.5], got {hue!r}")
        self._limits = np.array(list(self._config.values()))

    def sample(self, rng, shape):
        return rng.uniform(self._limits[:, 0], self._limits[:, 1]), rng.permutation(4)

    def apply(self, image, params):
        factors, order = params
        steps = (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue)
        out = image
        for index in order:
            out = steps[index](out, float(factors[index]))
        return out if out is not image else image.copy()


@register
class FancyPCA(Transform):
    """PCA colour augmentation (AlexNet), Albumentations-2 semantics.

    Args:
      alpha: standard deviation of the per-component scale factors (paper: 0.1).
      p: probability of applying.
    """

    needs_rgb = True

    def __init__(self, alpha: float = 0.1, p: float = 1.0):
        super().__init__(p=p)
        self._config = {"alpha": validation.number("alpha", alpha, 0.0)}

    def sample(self, rng, shape):
        return rng.normal(0.0, self._config["alpha"], 3)

    def apply(self, image, params):
        return F.fancy_pca(image, params)
