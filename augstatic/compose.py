"""Composition of transforms: Compose (all in order), OneOf (one by weight), SomeOf (n of them)."""

from __future__ import annotations

import numpy as np

from augstatic import validation
from augstatic.core import Transform


def _check_transforms(arg: str, transforms) -> list:
    if not isinstance(transforms, (list, tuple)) or not transforms:
        raise ValueError(f"{arg} must be a non-empty list of transforms, got {transforms!r}")
    for index, item in enumerate(transforms):
        if not isinstance(item, Transform):
            raise ValueError(f"{arg}[{index}] must be an augstatic transform, got {item!r}")
    return list(transforms)


class _Group(Transform):
    """Common base: holds child transforms; each child keeps its own `p`."""

    def __init__(self, transforms, p: float = 1.0):
        super().__init__(p=p)
        self.transforms = _check_transforms("transforms", transforms)
        self.name = type(self).__name__

    @property
    def params(self) -> dict:
        children = [{"name": t.name, "params": t.params} for t in self.transforms]
        return {"transforms": children, **self._config, "p": self.p}

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        extra = "".join(f", {k}={v!r}" for k, v in self._config.items())
        return f"{self.name}([{inner}]{extra}, p={self.p!r})"

    def _chosen(self, rng: np.random.Generator) -> list:
        raise NotImplementedError

    def __call__(self, image: np.ndarray, rng=None) -> np.ndarray:
        image = validation.check_image(image)
        rng = validation.as_generator(rng)
        if self.p < 1.0 and rng.random() >= self.p:
            return image.copy()
        out = image
        for transform in self._chosen(rng):
            out = transform(out, rng)
        return out if out is not image else image.copy()

    def apply_batch(self, images: np.ndarray, rng=None) -> np.ndarray:
        """Per image in order, each drawing from `rng` exactly as `__call__` does."""
        images = validation.check_batch(images)
        rng = validation.as_generator(rng)
        if images.shape[0] == 0:
            return images.copy()
        return np.stack([self(image, rng) for image in images])


class Compose(_Group):
    """Applies every transform in order (each with its own probability `p`)."""

    def _chosen(self, rng):
        return self.transforms


class OneOf(_Group):
    """Applies exactly one transform, chosen with `weights` (default: equal)."""

    def __init__(self, transforms, weights=None, p: float = 1.0):
        super().__init__(transforms, p=p)
        if weights is None:
            weights = [1.0] * len(self.transforms)
        if not isinstance(weights, (list, tuple)) or len(weights) != len(self.transforms):
            raise ValueError(f"weights must be a list of {len(self.transforms)} non-negative numbers "
                             f"(one per transform), got {weights!r}")
        weights = [validation.number(f"weights[{i}]", w, 0.0) for i, w in enumerate(weights)]
        if sum(weights) <= 0:
            raise ValueError(f"weights must not all be zero, got {weights!r}")
        self._config = {"weights": weights}
        self._cumulative = np.cumsum(weights) / sum(weights)

    def _chosen(self, rng):
        index = int(np.searchsorted(self._cumulative, rng.random(), side="right"))
        return [self.transforms[min(index, len(self.transforms) - 1)]]


class SomeOf(_Group):
    """Applies `n` distinct transforms chosen uniformly, in the order they are listed."""

    def __init__(self, transforms, n: int, p: float = 1.0):
        super().__init__(transforms, p=p)
        self._config = {"n": validation.integer("n", n, 0, len(self.transforms))}

    def _chosen(self, rng):
        picked = np.sort(rng.choice(len(self.transforms), size=self._config["n"], replace=False))
        return [self.transforms[i] for i in picked]
