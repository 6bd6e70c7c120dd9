"""The base class every transform derives from: validation, seeding, dtype and batch handling."""

from __future__ import annotations

import cv2
import numpy as np

from augstatic import validation


class Transform:
    """Base transform: subclasses validate in `__init__`, draw in `sample`, compute in `apply`.

    Subclass hooks:
      sample(rng, shape) -> per-image parameters drawn from `rng` (None when deterministic).
      apply(image, params) -> new array; receives HxWxC or HxW uint8 (and float32 when
        `float_native`), contiguous, never to be modified in place.
      apply_batch_deterministic(images) -> optional whole-batch path for transforms without
        draws (uint8 NxHxWxC in, new array out).

    Class attributes:
      float_native: `apply` handles float32 in [0, 1] itself; otherwise float32 input is
        quantised to uint8 for `apply` and the result converted back to float32.
      needs_rgb: colour-only operation; grayscale input is processed as RGB with equal
        channels and the result converted back to grayscale (luma weights).
    """

    name = "Transform"
    float_native = True
    needs_rgb = False

    def __init__(self, p: float = 1.0):
        self.p = validation.probability("p", p)
        self._config: dict = {}

    # --- subclass hooks -------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, shape: tuple) -> object:
        """Draws the parameters for one image of `shape` (default: none)."""
        return None

    def apply(self, image: np.ndarray, params) -> np.ndarray:
        """Applies the transform with explicit `params`; returns a new array."""
        raise NotImplementedError

    apply_batch_deterministic = None

    # --- public API -----------------------------------------------------------------------
    @property
    def params(self) -> dict:
        """Resolved construction parameters (JSON-able), including `p`."""
        return {**self._config, "p": self.p}

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.params.items())
        return f"{self.name}({args})"

    def __call__(self, image: np.ndarray, rng=None) -> np.ndarray:
        """Returns a transformed copy of `image` (see the package doc for the image contract).

        Args:
          image: HxWx3 uint8 RGB; also HxW / HxWx1 grayscale and float32 in [0, 1].
          rng: a numpy Generator (used as is), an int seed, or None for fresh entropy.
        """
        # Fast path for the common case (contiguous HxWx3 uint8 and a Generator): the same
        # checks, inlined, because per-call overhead matters for the cheap transforms.
        if (type(image) is np.ndarray and image.dtype == np.uint8 and image.ndim == 3
                and image.shape[2] == 3 and image.size and image.flags.c_contiguous
                and type(rng) is np.random.Generator):
            if self.p < 1.0 and rng.random() >= self.p:
                return image.copy()
            return self.apply(image, self.sample(rng, image.shape))
        image = validation.check_image(image)
        rng = validation.as_generator(rng)
        if self.p < 1.0 and rng.random() >= self.p:
            return image.copy()
        return self._apply_one(image, self.sample(rng, image.shape))

    def apply_batch(self, images: np.ndarray, rng=None) -> np.ndarray:
        """Transforms an NxHxWxC batch.

        Batch rule: the parameters of image i are drawn from `rng` in order i = 0..N-1, with
        exactly the draws `__call__` makes, so `apply_batch(x, g)` equals
        `np.stack([t(im, g) for im in x])` for a generator `g` in the same state. No generator
        is spawned per image. Transforms without draws skip the per-image loop (one OpenCV call
        over the whole batch, or per-image calls writing straight into the output).
        """
        images = validation.check_batch(images)
        rng = validation.as_generator(rng)
        count = images.shape[0]
        if count == 0:
            return images.copy()
        if self.apply_batch_deterministic is not None and images.dtype == np.uint8:
            keep = None if self.p >= 1.0 else rng.random(count) >= self.p
            out = self.apply_batch_deterministic(images)
            if keep is not None and keep.any():
                if out.shape != images.shape:
                    raise ValueError(f"{self.name} with p={self.p} on a batch of shape "
                                     f"{images.shape} would mix output shapes; use p=1 or "
                                     "square images")
                out[keep] = images[keep]
            return out
        # uint8 RGB images need no dtype or channel adaptation: call the kernel directly.
        apply = self.apply if images.dtype == np.uint8 and images.shape[3] == 3 else self._apply_one
        first = self._one_for_batch(images[0], rng, apply)
        out = np.empty((count,) + first.shape, dtype=first.dtype)
        out[0] = first
        for index in range(1, count):
            result = self._one_for_batch(images[index], rng, apply)
            if result.shape != first.shape:
                raise ValueError(f"{self.name} gave image {index} of the batch shape {result.shape} "
                                 f"but image 0 shape {first.shape}; a batch needs one output shape "
                                 "(use p=1 for shape-changing transforms)")
            out[index] = result
        return out

    # --- internals ------------------------------------------------------------------------
    def _one_for_batch(self, image: np.ndarray, rng: np.random.Generator, apply) -> np.ndarray:
        if self.p < 1.0 and rng.random() >= self.p:
            return image
        return apply(image, self.sample(rng, image.shape))

    def _apply_one(self, image: np.ndarray, params) -> np.ndarray:
        work = image
        is_float = image.dtype == np.float32
        if is_float and not self.float_native:
            work = to_uint8(image)
        gray = image.ndim == 2 or image.shape[2] == 1
        if gray and self.needs_rgb:
            work = cv2.cvtColor(work.reshape(work.shape[:2]), cv2.COLOR_GRAY2RGB)
        out = self.apply(work, params)
        if gray and self.needs_rgb:
            out = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
        if is_float and out.dtype != np.float32:
            out = to_float(out)
        if out.ndim != image.ndim:
            out = out.reshape(out.shape[:2] + image.shape[2:])
        return out


def batch_rows(images: np.ndarray) -> np.ndarray:
    """Views an NxHxWxC batch as one (N*H)xWxC image (HxW planes for C = 1), so that one
    per-pixel or row-wise OpenCV call covers the whole batch."""
    n, h, w, c = images.shape
    return images.reshape(n * h, w, c) if c != 1 else images.reshape(n * h, w)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float32 [0, 1] -> uint8 [0, 255] with rounding."""
    return cv2.convertScaleAbs(image, alpha=255.0).reshape(image.shape)


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [0, 1]."""
    return image.astype(np.float32) * np.float32(1.0 / 255.0)
