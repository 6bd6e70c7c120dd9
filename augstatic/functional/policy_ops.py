"""The ops of the RandAugment / TrivialAugment / AugMix policies, with torchvision v2 semantics.

Reference: torchvision/transforms/v2/functional/_color.py and _geometry.py (uint8 tensor
kernels). Every function takes a uint8 HxW, HxWx1 or HxWx3 array and returns a new array of
the same shape. Where torchvision computes in float32 and casts to uint8 (which truncates),
so do these, through exact 256-entry lookup tables where the op is a per-value map.

Measured against torchvision 0.29.1 on real photos (benchmarks/augstatic_policies.py
--peer=torchvision): every op bit-exact, except warps that need sub-pixel coordinates, which
use OpenCV's warpAffine: nearest rotations pick the adjacent source pixel for 0.1-0.3% of
pixels (10-bit fixed-point coordinates), bilinear warps differ by at most 2 levels (1/32-pixel
weights). Shears and whole-pixel translations are exact.
"""

from __future__ import annotations

import functools
import math
import threading

import cv2
import numpy as np

_F32 = np.float32
_LEVELS = np.arange(256, dtype=np.float32)
# torchvision's luma weights (_rgb_to_grayscale_image), not OpenCV's 0.299.
_LUMA = (_F32(0.2989), _F32(0.587), _F32(0.114))


_SCRATCH = threading.local()


def _scratch(slot: int, shape: tuple) -> np.ndarray:
    """A float32 buffer of `shape` reused per thread: allocating large temporaries costs more
    than the arithmetic of these ops (fresh pages on every call); tf.data may call from many
    threads, hence one set per thread."""
    buffers = getattr(_SCRATCH, "buffers", None)
    if buffers is None:
        buffers = _SCRATCH.buffers = {}
    key = (slot, shape)
    if key not in buffers:
        if len(buffers) > 16:  # many image sizes: keep memory bounded
            buffers.clear()
        buffers[key] = np.empty(shape, np.float32)
    return buffers[key]


def _lut(image: np.ndarray, table: np.ndarray) -> np.ndarray:
    return cv2.LUT(image, table).reshape(image.shape)


def _truncate(values: np.ndarray) -> np.ndarray:
    """float32 -> uint8 as torch's clamp(0, 255).to(uint8): clip, then truncate."""
    return np.clip(values, 0.0, 255.0, out=values).astype(np.uint8)


def _channels(image: np.ndarray) -> int:
    return 1 if image.ndim == 2 else image.shape[2]


# OpenCV's float32 gray is within a few float32 ulps (< 5e-5 for values <= 512) of torch's;
# its floor can differ only where the gray lies that close to an integer.
_NEAR = 1e-4
# gray + 0.5: rounding it to uint8 floors the gray, plus one, and stays positive (no abs).
_LUMA_HALF_UP = np.array([[*_LUMA, 0.5]], np.float32)


def _gray_exact(rgb: np.ndarray) -> np.ndarray:
    """torch's float32 gray of Nx3 uint8 pixels, bit for bit: r * .2989 (float32), then two
    fused multiply-adds (add_ with alpha), emulated in float64 (the products are exact there)."""
    w0, w1, w2 = (np.float64(w) for w in _LUMA)
    gray = (rgb[:, 0] * w0).astype(np.float32).astype(np.float64)
    gray = (gray + rgb[:, 1] * w1).astype(np.float32).astype(np.float64)
    return (gray + rgb[:, 2] * w2).astype(np.float32)


def _gray_floor_plus_one(image: np.ndarray) -> np.ndarray:
    """1 + floor of torchvision's gray of an RGB uint8 image, uint8 HxW, exact.

    The gray never reaches 255 (the weights sum to 0.9999), so 1 + floor fits a byte. One
    OpenCV colour transform rounded twice, `_NEAR` below and above: where the two roundings
    differ the gray is near an integer, and only those few pixels are redone exactly.
    """
    as_float = _scratch(0, image.shape)
    as_float[...] = image
    shifted = cv2.transform(as_float, _LUMA_HALF_UP)
    low = cv2.convertScaleAbs(shifted, beta=-_NEAR)
    high = cv2.convertScaleAbs(shifted, beta=_NEAR)
    unsure = cv2.subtract(high, low)  # 0 or 1, so its bytes are valid booleans
    if cv2.countNonZero(unsure):
        index = np.flatnonzero(unsure.view(bool))
        high.reshape(-1)[index] = np.floor(_gray_exact(image.reshape(-1, 3)[index])) + 1
    return high


def _blend_exact(x: np.ndarray, ratio: float, other: np.ndarray) -> np.ndarray:
    """torch's _blend before the cast: float32(x * ratio) + (1 - ratio) * other, fused."""
    alpha = np.float64(_F32(1.0 - ratio))
    product = (x.astype(np.float32) * _F32(ratio)).astype(np.float64)
    return (product + alpha * other.astype(np.float64)).astype(np.float32)


def _blend_table(ratio: float, other: float) -> np.ndarray:
    """uint8 LUT of trunc(clamp(x * ratio + other * (1 - ratio))) (torchvision's _blend)."""
    return _truncate(_blend_exact(_LEVELS, ratio, np.full(256, other, np.float32)))


def identity(image: np.ndarray) -> np.ndarray:
    """Returns a copy."""
    return image.copy()


def brightness(image: np.ndarray, factor: float) -> np.ndarray:
    """x * factor, clamped and truncated (adjust_brightness)."""
    return _lut(image, _truncate(_LEVELS * _F32(factor)))


def contrast(image: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the mean of the floored gray image (adjust_contrast)."""
    if _channels(image) == 3:
        # cv2.mean of the floored gray, from the sum of floor + 1: sum * (1 / n), as cv2.mean.
        count = image.shape[0] * image.shape[1]
        mean = (cv2.sumElems(_gray_floor_plus_one(image))[0] - count) * (1.0 / count)
    else:  # torchvision: the mean of the single channel itself
        mean = cv2.mean(image.reshape(image.shape[:2]))[0]
    return _lut(image, _blend_table(factor, _F32(mean)))


@functools.lru_cache(maxsize=128)
def _color_table(factor: float) -> np.ndarray:
    """trunc(clamp(x * factor + g * (1 - factor))) at index ((g + 1) << 8) | x for every gray
    level g and value x, torch's fused blend: 64 KB, exact (row 0 is never read: see
    _gray_floor_plus_one). RandAugment and TrivialAugment draw factors from 31 magnitude bins,
    so few tables serve a whole epoch."""
    values = np.tile(_LEVELS, 256)
    gray = np.repeat(_LEVELS - 1, 256)
    return _truncate(_blend_exact(values, factor, gray))


def color(image: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the floored gray image (adjust_saturation); one channel is returned as is.

    The output is a function of (floored gray level, value), so one lookup in a per-factor
    table of all 256 x 256 pairs replaces the float blend and its exact redo near integers.
    """
    if _channels(image) != 3:
        return image.copy()
    gray = _gray_floor_plus_one(image)
    height, width = gray.shape
    # The uint16 index ((gray + 1) << 8) | value is the little-endian byte pair (value, gray + 1):
    # one OpenCV merge of two byte planes builds it.
    gray3 = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB).reshape(height, width * 3)
    index = cv2.merge([image.reshape(height, width * 3), gray3]).view("<u2")
    return _color_table(float(factor)).take(index).reshape(image.shape)


# adjust_sharpness's smoothing kernel: 1s around a 5 in the middle, normalised.
_SMOOTH = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float32) / np.float32(13.0)


def sharpness(image: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the 3x3-smoothed image, interior pixels only (adjust_sharpness)."""
    height, width = image.shape[:2]
    if height <= 2 or width <= 2:
        return image.copy()
    # uint8 filter2D rounds the float result, as torchvision rounds before blending (a sum of
    # integers over 13 is never a tie, so half-even vs half-up cannot differ).
    blurred = cv2.filter2D(image, -1, _SMOOTH, borderType=cv2.BORDER_REPLICATE)
    inner = (slice(1, -1), slice(1, -1))
    # torch: x + (1 - factor) * (blurred - x) as one fused multiply-add (float64 here, exact).
    x = image[inner].astype(np.float64)
    delta = blurred.reshape(image.shape)[inner] - x
    delta *= np.float64(_F32(1.0 - factor))
    delta += x
    out = image.copy()
    out[inner] = _truncate(delta.astype(np.float32))
    return out


def posterize(image: np.ndarray, bits: int) -> np.ndarray:
    """Keeps the `bits` (0..8) most significant bits."""
    if bits >= 8:
        return image.copy()
    return np.bitwise_and(image, np.uint8((0xFF << (8 - bits)) & 0xFF))


def solarize(image: np.ndarray, threshold: float) -> np.ndarray:
    """Inverts every value >= `threshold` (8-bit units, compared in float32 as torchvision)."""
    level = math.ceil(float(_F32(threshold)))
    table = np.where(np.arange(256) >= level, 255 - np.arange(256), np.arange(256))
    return _lut(image, table.astype(np.uint8))


def autocontrast(image: np.ndarray) -> np.ndarray:
    """Stretches each channel to [0, 255]: (x - min) / ((max - min) / 255), truncated."""
    planes = cv2.split(image) if _channels(image) == 3 else [image.reshape(image.shape[:2])]
    tables = []
    for plane in planes:
        low, high, _, _ = cv2.minMaxLoc(plane)
        if low == high:
            tables.append(np.arange(256, dtype=np.uint8))
            continue
        inv_scale = _F32(high - low) * _F32(1.0 / 255.0)
        tables.append(_truncate((_LEVELS - _F32(low)) / inv_scale))
    return _per_channel_lut(image, tables)


def equalize(image: np.ndarray) -> np.ndarray:
    """Histogram equalisation per channel with PIL's lookup table (torchvision's equalize)."""
    channels = _channels(image)
    tables = []
    for c in range(channels):
        hist = cv2.calcHist([image], [c], None, [256], [0, 256]).ravel().astype(np.int64)
        last = int(np.flatnonzero(hist)[-1])
        step = (int(hist.sum()) - int(hist[last])) // 255
        if step == 0:
            tables.append(np.arange(256, dtype=np.uint8))
            continue
        cumulative = np.concatenate([[0], np.cumsum(hist)[:-1]])
        tables.append(np.clip((cumulative + step // 2) // step, 0, 255).astype(np.uint8))
    return _per_channel_lut(image, tables)


def _per_channel_lut(image: np.ndarray, tables: list) -> np.ndarray:
    if len(tables) == 1:
        return _lut(image, tables[0])
    if all(table is tables[0] for table in tables[1:]):
        return _lut(image, tables[0])
    return cv2.LUT(image, np.stack(tables, axis=-1).reshape(256, 1, 3)).reshape(image.shape)


def inverse_affine_matrix(center: tuple[float, float], angle: float, translate: tuple[float, float],
                          scale: float, shear: tuple[float, float]) -> list[float]:
    """torchvision's _get_inverse_affine_matrix: output -> input map, centred coordinates.

    Args:
      center: rotation/shear centre relative to the image centre, in pixels (x, y).
      angle: rotation in degrees (torchvision's affine sign: clockwise positive).
      translate: (x, y) shift in pixels.
      scale: isotropic scale.
      shear: (x, y) shear angles in degrees.
    """
    rot = math.radians(angle)
    sx, sy = math.radians(shear[0]), math.radians(shear[1])
    cx, cy = center
    tx, ty = translate
    a = math.cos(rot - sy) / math.cos(sy)
    b = -math.cos(rot - sy) * math.tan(sx) / math.cos(sy) - math.sin(rot)
    c = math.sin(rot - sy) / math.cos(sy)
    d = -math.sin(rot - sy) * math.tan(sx) / math.cos(sy) + math.cos(rot)
    matrix = [x / scale for x in (d, -b, 0.0, -c, a, 0.0)]
    matrix[2] += matrix[0] * (-cx - tx) + matrix[1] * (-cy - ty) + cx
    matrix[5] += matrix[3] * (-cx - tx) + matrix[4] * (-cy - ty) + cy
    return matrix


def warp_centred(image: np.ndarray, matrix: list[float], interpolation: int,
                 fill: float = 0.0) -> np.ndarray:
    """Applies a torchvision inverse matrix (centred coordinates) with OpenCV's warpAffine.

    torchvision samples output pixel (i, j) at centred point (j + .5 - W/2, i + .5 - H/2)
    mapped by `matrix`, read back at index x + W/2 - .5 (grid_sample, align_corners=False);
    the same map written in OpenCV's index coordinates.
    """
    height, width = image.shape[:2]
    m0, m1, m2, m3, m4, m5 = matrix
    ox, oy = 0.5 - width / 2.0, 0.5 - height / 2.0
    index_map = np.array([[m0, m1, m0 * ox + m1 * oy + m2 - ox],
                          [m3, m4, m3 * ox + m4 * oy + m5 - oy]], np.float64)
    out = cv2.warpAffine(image, index_map, (width, height),
                         flags=interpolation | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
    return out.reshape(image.shape)


def shear_x(image: np.ndarray, factor: float, interpolation: int, fill: float = 0.0) -> np.ndarray:
    """Shears along x by `factor` (x_in = x + factor * y, about the top-left corner)."""
    height, width = image.shape[:2]
    matrix = inverse_affine_matrix((-width / 2.0, -height / 2.0), 0.0, (0.0, 0.0), 1.0,
                                   (math.degrees(math.atan(factor)), 0.0))
    return warp_centred(image, matrix, interpolation, fill)


def shear_y(image: np.ndarray, factor: float, interpolation: int, fill: float = 0.0) -> np.ndarray:
    """Shears along y by `factor` (y_in = y + factor * x, about the top-left corner)."""
    height, width = image.shape[:2]
    matrix = inverse_affine_matrix((-width / 2.0, -height / 2.0), 0.0, (0.0, 0.0), 1.0,
                                   (0.0, math.degrees(math.atan(factor))))
    return warp_centred(image, matrix, interpolation, fill)


def translate(image: np.ndarray, dx: int, dy: int, interpolation: int,
              fill: float = 0.0) -> np.ndarray:
    """Shifts content right by `dx` and down by `dy` whole pixels."""
    matrix = inverse_affine_matrix((0.0, 0.0), 0.0, (float(dx), float(dy)), 1.0, (0.0, 0.0))
    return warp_centred(image, matrix, interpolation, fill)


def rotate(image: np.ndarray, angle: float, interpolation: int, fill: float = 0.0) -> np.ndarray:
    """Rotates counter-clockwise by `angle` degrees about the centre, same size (F.rotate)."""
    matrix = inverse_affine_matrix((0.0, 0.0), -angle, (0.0, 0.0), 1.0, (0.0, 0.0))
    return warp_centred(image, matrix, interpolation, fill)
