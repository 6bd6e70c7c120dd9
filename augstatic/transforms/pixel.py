"""Tone transforms: invert, solarize, posterize, equalisation, JPEG, downscale, superpixels."""

from __future__ import annotations

from augstatic import validation
from augstatic.core import Transform, batch_rows
from augstatic.functional import pixel as F
from augstatic.functional import superpixels as S
from augstatic.registry import register


@register
class InvertImg(Transform):
    """Inverts every value: 255 - x (1 - x for float32)."""

    def apply(self, image, params):
        return F.invert(image)

    def apply_batch_deterministic(self, images):
        return F.invert(images)


@register
class Solarize(Transform):
    """Inverts every value >= `threshold` (8-bit units; paper: 128)."""

    def __init__(self, threshold: float = 128, p: float = 1.0):
        super().__init__(p=p)
        self._config = {"threshold": validation.number("threshold", threshold, 0.0, 256.0)}

    def apply(self, image, params):
        return F.solarize(image, self._config["threshold"] / 255.0)

    def apply_batch_deterministic(self, images):
        return F.solarize(batch_rows(images), self._config["threshold"] / 255.0).reshape(images.shape)


@register
class Posterize(Transform):
    """Keeps the `num_bits` most significant bits of each 8-bit value (paper: 4)."""

    float_native = False

    def __init__(self, num_bits: int = 4, p: float = 1.0):
        super().__init__(p=p)
        self._config = {"num_bits": validation.integer("num_bits", num_bits, 1, 8)}

    def apply(self, image, params):
        return F.posterize(image, self._config["num_bits"])

    def apply_batch_deterministic(self, images):
        return F.posterize(images, self._config["num_bits"])


@register
class Equalize(Transform):
    """Histogram-equalises each channel (OpenCV's equalizeHist)."""

    float_native = False

    def apply(self, image, params):
        return F.equalize(image)


@register
class CLAHE(Transform):
    """Contrast-limited adaptive histogram equalisation (on L of LAB for RGB).

    Args:
      clip_limit: (low, high) contrast clip limit, or x meaning (1, x) (paper: 1..4).
      tile_grid_size: (rows, cols) of tiles (paper: 8x8).
      p: probability of applying.
    """

    float_native = False

    def __init__(self, clip_limit=(1.0, 4.0), tile_grid_size=(8, 8), p: float = 1.0):
        super().__init__(p=p)
        if isinstance(clip_limit, (int, float)) and not isinstance(clip_limit, bool):
            clip_limit = (1.0, clip_limit)
        self._config = {"clip_limit": validation.number_range("clip_limit", clip_limit, 0.0),
                        "tile_grid_size": validation.size_pair("tile_grid_size", tile_grid_size)}

    def sample(self, rng, shape):
        return float(rng.uniform(*self._config["clip_limit"]))

    def apply(self, image, params):
        return F.clahe(image, params, self._config["tile_grid_size"])


@register
class JpegCompression(Transform):
    """JPEG encode/decode at a quality drawn from `quality_range` (paper: 99..100)."""

    float_native = False

    def __init__(self, quality_range=(99, 100), p: float = 1.0):
        super().__init__(p=p)
        self._config = {"quality_range": validation.integer_range("quality_range", quality_range, 1, 100)}

    def sample(self, rng, shape):
        low, high = self._config["quality_range"]
        return int(rng.integers(low, high + 1))

    def apply(self, image, params):
        return F.jpeg_compression(image, params)


@register
class Downscale(Transform):
    """Resizes down by a factor from `scale_range`, then back up (paper: 0.25, nearest).

    Args:
      scale_range: (low, high) down-scaling factor in (0, 1].
      interpolation_down, interpolation_up: 'nearest', 'linear', 'cubic', 'area' or 'lanczos4'.
      p: probability of applying.
    """

    def __init__(self, scale_range=(0.25, 0.25), interpolation_down: str = "nearest",
                 interpolation_up: str = "nearest", p: float = 1.0):
        super().__init__(p=p)
        scale_range = validation.number_range("scale_range", scale_range, 0.0, 1.0)
        if scale_range[0] <= 0:
            raise ValueError(f"scale_range must lie in (0, 1], got {scale_range!r}")
        self._config = {
            "scale_range": scale_range,
            "interpolation_down": validation.interpolation("interpolation_down", interpolation_down),
            "interpolation_up": validation.interpolation("interpolation_up", interpolation_up),
        }
        self._flags = (validation.INTERPOLATIONS[interpolation_down],
                       validation.INTERPOLATIONS[interpolation_up])

    def sample(self, rng, shape):
        low, high = self._config["scale_range"]
        return low if low == high else float(rng.uniform(low, high))

    def apply(self, image, params):
        return F.downscale(image, params, *self._flags)


@register
class Superpixels(Transform):
    """Replaces each SLIC superpixel by its mean colour with probability `p_replace`.

    Args:
      p_replace: (low, high) or x: per-segment replacement probability (paper: 0.1).
      n_segments: (low, high) or n: number of segments (paper: 100).
      max_size: work on a copy whose longer side is at most this (paper: 128); None: full size.
      interpolation: resize interpolation name (paper: 'linear').
      p: probability of applying.
    """

    float_native = False

    def __init__(self, p_replace=0.1, n_segments=100, max_size: int | None = 128,
                 interpolation: str = "linear", p: float = 1.0):
        super().__init__(p=p)
        if isinstance(p_replace, (int, float)) and not isinstance(p_replace, bool):
            p_replace = (p_replace, p_replace)
        self._config = {
            "p_replace": validation.number_range("p_replace", p_replace, 0.0, 1.0),
            "n_segments": validation.integer_range("n_segments", n_segments, 1),
            "max_size": None if max_size is None else validation.integer("max_size", max_size, 1),
            "interpolation": validation.interpolation("interpolation", interpolation),
        }
        self._flag = validation.INTERPOLATIONS[interpolation]

    def sample(self, rng, shape):
        n_segments = int(rng.integers(self._config["n_segments"][0], self._config["n_segments"][1] + 1))
        p_replace = rng.uniform(*self._config["p_replace"])
        return n_segments, rng.random(n_segments) < p_replace

    def apply(self, image, params):
        n_segments, replace = params
        return S.superpixels(image, n_segments, replace, self._config["max_size"], self._flag)
