"""Geometric transforms: flips, transpose, rotation, crops and distortions."""

from __future__ import annotations

import numpy as np

from augstatic.core import Transform
from augstatic.functional import geometric as F
from augstatic.registry import register


def _batch_rows(images: np.ndarray) -> np.ndarray:
    """Views an NxHxWxC batch as one (N*H)xWxC image so a row-wise OpenCV call covers all."""
    n, h, w, c = images.shape
    return images.reshape(n * h, w, c) if c != 1 else images.reshape(n * h, w)


@register
class HorizontalFlip(Transform):
    """Mirrors the image left-right."""

    def apply(self, image, params):
        return F.hflip(image)

    def apply_batch_deterministic(self, images):
        return F.hflip(_batch_rows(images)).reshape(images.shape)


@register
class VerticalFlip(Transform):
    """Mirrors the image top-bottom."""

    def apply(self, image, params):
        return F.vflip(image)

    def apply_batch_deterministic(self, images):
        return np.ascontiguousarray(images[:, ::-1])


@register
class Transpose(Transform):
    """Swaps rows and columns: an HxWxC image becomes WxHxC."""

    def apply(self, image, params):
        return F.transpose(image)

    def apply_batch_deterministic(self, images):
        return np.ascontiguousarray(images.transpose(0, 2, 1, 3))
