"""Tone functions on any channel count, mostly 8-bit lookup tables (one cv2.LUT call each)."""

from __future__ import annotations

import cv2
import numpy as np

try:  # SIMD byte translation (Apache-2.0; albumentations pulls it in too)
    import stringzilla as _sz
except ImportError:  # pragma: no cover - the cv2 path gives the same bytes
    _sz = None

_LEVELS = np.arange(256, dtype=np.uint8).reshape(1, 256)


# OpenCV's Python bindings mistake tiny arrays (1x1xC, 4x1) for scalars in array-scalar
# operations; below this many pixels those operations run in numpy instead.
_SMALL = 64
# From this many values on, a table through StringZilla beats one OpenCV pass (150x150x3: 5.8
# vs 18.9 us including the table).
_TRANSLATE_MIN = 1 << 14


def add_scalar(image: np.ndarray, values) -> np.ndarray:
    """uint8 image + integer per-channel `values` (one int for every channel), saturating."""
    values = [int(v) for v in np.atleast_1d(values)]
    channels = 1 if image.ndim == 2 else image.shape[2]
    if len(values) == 1:
        values = values * channels
    if image.shape[0] * image.shape[1] < _SMALL:
        offsets = np.array(values, np.int16)
        total = image.astype(np.int16) + (offsets if image.ndim == 3 else offsets[0])
        return np.clip(total, 0, 255).astype(np.uint8)
    if channels == 1:
        return cv2.add(image, values[0]).reshape(image.shape)
    # A scalar with a negative entry takes a path about 100x slower in OpenCV 5.1 (8 ms at
    # 512x512x3); adding the positive and subtracting the negative entries stays on the fast one
    # (each channel sees one saturating operation, so the result is the same).
    pad = (0,) * (4 - channels)
    out = cv2.add(image, tuple(max(v, 0) for v in values) + pad)
    if any(v < 0 for v in values):
        cv2.subtract(out, tuple(max(-v, 0) for v in values) + pad, dst=out)
    return out.reshape(image.shape)


def and_scalar(image: np.ndarray, masks) -> np.ndarray:
    """uint8 image AND integer per-channel bit `masks`."""
    masks = [int(v) for v in np.atleast_1d(masks)]
    if image.shape[0] * image.shape[1] < _SMALL:
        return np.bitwise_and(image, np.array(masks, np.uint8) if image.ndim == 3 else
                              np.uint8(masks[0]))
    scalar = masks[0] if image.ndim == 2 else tuple(masks) + (0,) * (4 - len(masks))
    return cv2.bitwise_and(image, scalar).reshape(image.shape)


def invert(image: np.ndarray) -> np.ndarray:
    """Returns max - x (255 for uint8, 1 for float32)."""
    if image.dtype == np.uint8:
        return cv2.bitwise_not(image).reshape(image.shape)
    return 1.0 - image


def solarize(image: np.ndarray, threshold: float) -> np.ndarray:
    """Inverts every pixel value >= `threshold` (given in [0, 1] of the dtype's maximum)."""
    if image.dtype == np.uint8:
        level = int(np.ceil(threshold * 255.0))
        if level <= 0:
            return cv2.bitwise_not(image).reshape(image.shape)
        # 255 - x == x XOR 255: XOR with a 0/255 mask of x >= level. Two SIMD passes, several
        # times faster than cv2.LUT in this OpenCV build.
        _, mask = cv2.threshold(image, level - 1, 255, cv2.THRESH_BINARY)
        return cv2.bitwise_xor(image, mask, dst=mask).reshape(image.shape)
    return np.where(image >= threshold, 1.0 - image, image).astype(np.float32)


def posterize(image: np.ndarray, bits: int) -> np.ndarray:
    """Keeps the `bits` most significant bits of every uint8 value."""
    return np.bitwise_and(image, np.uint8((0xFF << (8 - bits)) & 0xFF))


def multiply(image: np.ndarray, factor: float) -> np.ndarray:
    """Scales every value by `factor` >= 0 with rounding and saturation."""
    if image.dtype == np.uint8:
        # |x * factor| is x * factor for factor >= 0. Large images: convertScaleAbs's own
        # 256 values mapped through StringZilla's translate (same bytes, 3.4x faster at 512 px:
        # 77 vs 258 us, benchmarks/results/augstatic_vs_albumentations_notes.md).
        if _sz is not None and image.size >= _TRANSLATE_MIN and image.flags.c_contiguous:
            table = cv2.convertScaleAbs(_LEVELS, alpha=float(factor)).reshape(256)
            out = image.copy()
            _sz.translate(memoryview(out.reshape(-1)), memoryview(table), inplace=True)
            return out
        return cv2.convertScaleAbs(image, alpha=float(factor)).reshape(image.shape)
    return np.clip(image * np.float32(factor), 0.0, 1.0)


def scale_shift(image: np.ndarray, factor: float, offset: float) -> np.ndarray:
    """x * factor + offset (offset in 8-bit units) with rounding and saturation, every channel."""
    if image.dtype == np.uint8:
        channels = 1 if image.ndim == 2 else image.shape[2]
        matrix = np.zeros((channels, channels + 1))
        matrix[:, :channels] = np.eye(channels) * factor
        matrix[:, channels] = offset
        return cv2.transform(image.reshape(image.shape[0], image.shape[1], channels),
                             matrix).reshape(image.shape)
    return np.clip(image * np.float32(factor) + np.float32(offset / 255.0), 0.0, 1.0)


def multiply_channels(image: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Scales channel c by factors[c] (a diagonal colour matrix: one SIMD pass)."""
    if image.dtype == np.uint8:
        if image.ndim == 2 or image.shape[2] == 1:
            return multiply(image, float(factors[0]))
        return cv2.transform(image, np.diag(np.asarray(factors, dtype=np.float64)))
    return np.clip(image * factors.astype(np.float32), 0.0, 1.0)


def shift_channels(image: np.ndarray, shifts) -> np.ndarray:
    """Adds shifts[c] (pixel units of 0..255) to channel c with saturation.

    uint8: shifts are rounded to whole levels first (x + round(s) == round(x + s) for integer
    x), so OpenCV's fast integer-scalar add applies (a float scalar takes a slow path).
    """
    shifts = np.asarray(shifts, dtype=np.float64)
    if image.dtype == np.uint8:
        return add_scalar(image, np.rint(shifts))
    return np.clip(image + (shifts / 255.0).astype(np.float32), 0.0, 1.0)


def equalize(image: np.ndarray) -> np.ndarray:
    """Histogram-equalises each channel independently (OpenCV's equalizeHist)."""
    if image.ndim == 2:
        return cv2.equalizeHist(image)
    return cv2.merge([cv2.equalizeHist(channel) for channel in cv2.split(image)]).reshape(image.shape)


def clahe(image: np.ndarray, clip_limit: float, tile_grid_size: tuple[int, int]) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation; RGB works on the L channel of LAB."""
    tool = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=tile_grid_size)
    if image.ndim == 2 or image.shape[2] == 1:
        return tool.apply(image.reshape(image.shape[:2])).reshape(image.shape)
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    lab[:, :, 0] = tool.apply(np.ascontiguousarray(lab[:, :, 0]))
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def jpeg_compression(image: np.ndarray, quality: int) -> np.ndarray:
    """Encodes and decodes as JPEG at `quality` (the RGB array is passed as-is, like Albumentations)."""
    ok, encoded = cv2.imencode(".jpg", image, (cv2.IMWRITE_JPEG_QUALITY, int(quality)))
    if not ok:
        raise RuntimeError("OpenCV failed to encode a JPEG")
    flag = cv2.IMREAD_GRAYSCALE if image.ndim == 2 or image.shape[2] == 1 else cv2.IMREAD_COLOR
    return cv2.imdecode(encoded, flag).reshape(image.shape)


def downscale(image: np.ndarray, scale: float, down_interpolation: int,
              up_interpolation: int) -> np.ndarray:
    """Resizes down by `scale` (at least 1 pixel) and back up to the original size."""
    height, width = image.shape[:2]
    if round(width * scale) >= 1 and round(height * scale) >= 1:
        # fx/fy (not a dsize) so OpenCV's own size rounding and pixel mapping apply, as in
        # Albumentations.
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=down_interpolation)
    else:
        small = cv2.resize(image, (1, 1), interpolation=down_interpolation)
    return cv2.resize(small, (width, height), interpolation=up_interpolation).reshape(image.shape)
