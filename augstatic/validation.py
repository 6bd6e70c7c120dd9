"""Shared argument and image checks: every ValueError names the argument, the value and what is allowed."""

from __future__ import annotations

import contextlib
import numbers

import numpy as np

_IMAGE_CONTRACT = ("an HxWx3 RGB, HxW or HxWx1 grayscale array of dtype uint8, "
                   "or float32 with values in [0, 1]")


def check_image(image, arg: str = "image") -> np.ndarray:
    """Checks `image` against the package image contract.

    Args:
      image: the candidate image.
      arg: argument name used in error messages.

    Returns:
      The image, made C-contiguous when it was not (OpenCV needs contiguous rows).

    Raises:
      ValueError: the array breaks the contract (type, dtype, shape, empty, non-finite or
        out-of-range float values).
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{arg} must be a numpy array ({_IMAGE_CONTRACT}), got {type(image).__name__}")
    dtype = image.dtype
    if dtype != np.uint8 and dtype != np.float32:
        raise ValueError(f"{arg} has dtype {dtype}; allowed: uint8, or float32 in [0, 1]")
    shape = image.shape
    if not (len(shape) == 2 or (len(shape) == 3 and shape[2] in (1, 3))):
        raise ValueError(f"{arg} has shape {shape}; allowed: {_IMAGE_CONTRACT}")
    if image.size == 0:
        raise ValueError(f"{arg} is empty (shape {shape}); height and width must be >= 1")
    if dtype == np.float32:
        check_float_values(image, arg)
    if not image.flags.c_contiguous:
        image = np.ascontiguousarray(image)
    return image


def check_float_values(image: np.ndarray, arg: str) -> None:
    """Rejects non-finite float pixels and values outside [0, 1]."""
    low, high = float(image.min()), float(image.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"{arg} contains non-finite values (NaN or inf); allowed: finite float32 in [0, 1]")
    if low < 0.0 or high > 1.0:
        raise ValueError(f"{arg} has float values in [{low:g}, {high:g}]; allowed: float32 in [0, 1]")


def check_batch(images, arg: str = "images") -> np.ndarray:
    """Checks an NxHxWxC batch (C in 1, 3) of uint8 or float32 [0, 1] images."""
    if not isinstance(images, np.ndarray):
        raise ValueError(f"{arg} must be a numpy array of shape NxHxWxC, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[3] not in (1, 3):
        raise ValueError(f"{arg} has shape {images.shape}; allowed: NxHxWxC with C in (1, 3)")
    if images.shape[0] == 0:
        return images
    check_image(images[0], f"{arg}[0]")  # dtype/shape rules; values checked below for all
    if images.dtype == np.float32:
        check_float_values(images, arg)
    if not images.flags.c_contiguous:
        images = np.ascontiguousarray(images)
    return images


def as_generator(rng) -> np.random.Generator:
    """Returns `rng` itself if it is a Generator, a seeded one for an int, fresh entropy for None."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"rng seed must be >= 0, got {rng}")
        return np.random.default_rng(int(rng))
    raise ValueError(f"rng must be a numpy.random.Generator, an int seed >= 0 or None, got {rng!r}")


def probability(arg: str, value) -> float:
    """Checks a probability in [0, 1]."""
    return number(arg, value, 0.0, 1.0)


def number(arg: str, value, low: float | None = None, high: float | None = None) -> float:
    """Checks a real number within the closed interval [low, high] (None means unbounded)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{arg} must be a finite number{_bounds(low, high)}, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{arg} must be{_bounds(low, high)}, got {value!r}")
    return float(value)


def integer(arg: str, value, low: int | None = None, high: int | None = None) -> int:
    """Checks an integer within the closed interval [low, high] (None means unbounded)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{arg} must be an integer{_bounds(low, high)}, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{arg} must be an integer{_bounds(low, high)}, got {value!r}")
    return int(value)


def number_range(arg: str, value, low: float | None = None, high: float | None = None,
                 symmetric: bool = False) -> tuple[float, float]:
    """Checks a `(low, high)` range with low <= high inside [low, high] bounds.

    Args:
      arg: argument name for errors.
      value: a pair, or a single number when `symmetric` (x means (-x, x)).
      low: smallest allowed value (None: unbounded).
      high: largest allowed value (None: unbounded).
      symmetric: accept a single number x as the range (-x, x).

    Returns:
      The range as a tuple of two floats.
    """
    if symmetric and isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = (-abs(value), abs(value))
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        allowed = "a (low, high) pair" + (" or a number x meaning (-x, x)" if symmetric else "")
        raise ValueError(f"{arg} must be {allowed}{_bounds(low, high)}, got {value!r}")
    with _whole_value(arg, value):
        first = number(f"{arg}[0]", value[0], low, high)
        second = number(f"{arg}[1]", value[1], low, high)
    if first > second:
        raise ValueError(f"{arg} must have low <= high, got {value!r}")
    return first, second


def integer_range(arg: str, value, low: int | None = None, high: int | None = None,
                  odd: bool = False) -> tuple[int, int]:
    """Checks a `(low, high)` integer range; with `odd`, both ends must be odd."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{arg} must be a (low, high) pair of integers{_bounds(low, high)}, got {value!r}")
    with _whole_value(arg, value):
        first = integer(f"{arg}[0]", value[0], low, high)
        second = integer(f"{arg}[1]", value[1], low, high)
    if first > second:
        raise ValueError(f"{arg} must have low <= high, got {value!r}")
    if odd and (first % 2 == 0 or second % 2 == 0):
        raise ValueError(f"{arg} must hold odd kernel sizes, got {value!r}")
    return first, second


def choice(arg: str, value, allowed) -> object:
    """Checks that `value` is one of `allowed`."""
    if value not in allowed:
        raise ValueError(f"{arg} must be one of {sorted(allowed)!r}, got {value!r}")
    return value


@contextlib.contextmanager
def _whole_value(arg: str, value):
    """Adds the whole argument value to an element's error message."""
    try:
        yield
    except ValueError as error:
        raise ValueError(f"{error} (in {arg}={value!r})") from None


def _bounds(low, high) -> str:
    if low is None and high is None:
        return ""
    if low is None:
        return f" <= {high}"
    if high is None:
        return f" >= {low}"
    return f" in [{low}, {high}]"


INTERPOLATIONS = {"nearest": 0, "linear": 1, "cubic": 2, "area": 3, "lanczos4": 4}
BORDER_MODES = {"constant": 0, "replicate": 1, "reflect": 2, "wrap": 3, "reflect_101": 4}


def interpolation(arg: str, value: str) -> str:
    """Checks an interpolation name (OpenCV flag via INTERPOLATIONS[value])."""
    return choice(arg, value, INTERPOLATIONS)


def border_mode(arg: str, value: str) -> str:
    """Checks a border mode name (OpenCV flag via BORDER_MODES[value])."""
    return choice(arg, value, BORDER_MODES)


def odd_kernel_range(arg: str, value, low: int = 3, high: int = 99) -> tuple[int, int]:
    """Checks a (low, high) range of odd kernel sizes; a single odd int k means (k, k)."""
    return integer_range(arg, value, low, high, odd=True)


def flag(arg: str, value) -> bool:
    """Checks a boolean."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{arg} must be True or False, got {value!r}")
    return bool(value)


def size_pair(arg: str, value) -> tuple[int, int]:
    """Checks a (height, width) pair of positive integers."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{arg} must be a (height, width) pair of integers >= 1, got {value!r}")
    with _whole_value(arg, value):
        return integer(f"{arg}[0]", value[0], 1), integer(f"{arg}[1]", value[1], 1)
