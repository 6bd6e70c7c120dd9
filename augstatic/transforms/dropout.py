"""Dropout transforms: rectangular holes (Cutout, CoarseDropout) and a hole grid (GridDropout)."""

from __future__ import annotations

import numpy as np

from augstatic import validation
from augstatic.core import Transform
from augstatic.functional import dropout as F
from augstatic.registry import register


class _Holes(Transform):
    """Base: `sample` returns an (n, 4) int array of (x_min, y_min, x_max, y_max) holes."""

    def _fill_for(self, image):
        fill = self._config["fill"]
        return fill if image.dtype == np.uint8 else fill / 255.0

    def apply(self, image, params):
        return F.fill_holes(image, params, self._fill_for(image))


def _place(rng, shape, heights, widths) -> np.ndarray:
    """Uniform hole positions fully inside the image (holes larger than it are clipped)."""
    height, width = shape[:2]
    heights = np.minimum(heights, height)
    widths = np.minimum(widths, width)
    y_min = rng.integers(0, height - heights + 1)
    x_min = rng.integers(0, width - widths + 1)
    return np.stack([x_min, y_min, x_min + widths, y_min + heights], axis=1)


@register
class Cutout(_Holes):
    """Fills `num_holes` holes of hole_height x hole_width at random places (paper: 8 of 8x8).

    Args:
      num_holes: number of holes.
      hole_height, hole_width: hole size in pixels.
      fill: fill value in 8-bit units (paper: 0).
      p: probability of applying.
    """

    def __init__(self, num_holes: int = 8, hole_height: int = 8, hole_width: int = 8,
                 fill: float = 0, p: float = 1.0):
        super().__init__(p=p)
        self._config = {"num_holes": validation.integer("num_holes", num_holes, 0),
                        "hole_height": validation.integer("hole_height", hole_height, 1),
                        "hole_width": validation.integer("hole_width", hole_width, 1),
                        "fill": validation.number("fill", fill, 0.0, 255.0)}

    def sample(self, rng, shape):
        count = self._config["num_holes"]
        return _place(rng, shape, np.full(count, self._config["hole_height"]),
                      np.full(count, self._config["hole_width"]))


@register
class CoarseDropout(_Holes):
    """Fills a random number of random-size holes (paper: 1..8 holes of 1..8 x 1..8 pixels).

    Args:
      num_holes_range: (low, high) number of holes.
      hole_height_range, hole_width_range: (low, high) hole size in pixels.
      fill: fill value in 8-bit units (paper: 0).
      p: probability of applying.
    """

    def __init__(self, num_holes_range=(1, 8), hole_height_range=(1, 8), hole_width_range=(1, 8),
                 fill: float = 0, p: float = 1.0):
        super().__init__(p=p)
        self._config = {
            "num_holes_range": validation.integer_range("num_holes_range", num_holes_range, 0),
            "hole_height_range": validation.integer_range("hole_height_range", hole_height_range, 1),
            "hole_width_range": validation.integer_range("hole_width_range", hole_width_range, 1),
            "fill": validation.number("fill", fill, 0.0, 255.0)}

    def sample(self, rng, shape):
        low, high = self._config["num_holes_range"]
        count = int(rng.integers(low, high + 1))
        heights = rng.integers(self._config["hole_height_range"][0],
                               self._config["hole_height_range"][1] + 1, size=count)
        widths = rng.integers(self._config["hole_width_range"][0],
                              self._config["hole_width_range"][1] + 1, size=count)
        return _place(rng, shape, heights, widths)


@register
class GridDropout(_Holes):
    """Drops one hole per grid cell; hole side = `ratio` x cell side (Albumentations 2).

    The hole covers about ratio**2 of each cell's area (ratio 0.5: a quarter).

    Args:
      ratio: hole side as a fraction of the cell side, in (0, 1) (paper: 0.5).
      unit_size_range: (low, high) cell size in pixels; None: a tenth of each side (min 2).
      random_offset: random hole position inside each cell; otherwise the cell's top-left.
      fill: fill value in 8-bit units (paper: 0).
      p: probability of applying.
    """

    def __init__(self, ratio: float = 0.5, unit_size_range=None, random_offset: bool = True,
                 fill: float = 0, p: float = 1.0):
        super().__init__(p=p)
        ratio = validation.number("ratio", ratio, 0.0, 1.0)
        if not 0 < ratio < 1:
            raise ValueError(f"ratio must lie strictly between 0 and 1, got {ratio!r}")
        self._config = {
            "ratio": ratio,
            "unit_size_range": None if unit_size_range is None
            else validation.integer_range("unit_size_range", unit_size_range, 2),
            "random_offset": validation.flag("random_offset", random_offset),
            "fill": validation.number("fill", fill, 0.0, 255.0)}

    def sample(self, rng, shape):
        height, width = shape[:2]
        if self._config["unit_size_range"] is None:
            unit_h, unit_w = max(2, height // 10), max(2, width // 10)
        else:
            low, high = self._config["unit_size_range"]
            unit_h = unit_w = int(rng.integers(low, high + 1))
        rows, cols = height // unit_h, width // unit_w
        if rows == 0 or cols == 0:  # image smaller than one cell: nothing to drop
            return np.zeros((0, 4), dtype=np.int64)
        split_y = np.insert(np.cumsum(rng.permutation(F.almost_equal_intervals(height, rows))), 0, 0)
        split_x = np.insert(np.cumsum(rng.permutation(F.almost_equal_intervals(width, cols))), 0, 0)
        cells = F.grid_cells(split_y, split_x)
        cell_h, cell_w = cells[:, 2] - cells[:, 0], cells[:, 3] - cells[:, 1]
        ratio = self._config["ratio"]
        hole_h = np.clip(cell_h * ratio, 1, np.maximum(cell_h - 1, 1)).astype(int)
        hole_w = np.clip(cell_w * ratio, 1, np.maximum(cell_w - 1, 1)).astype(int)
        if self._config["random_offset"]:
            off_y = rng.integers(0, cell_h - hole_h + 1)
            off_x = rng.integers(0, cell_w - hole_w + 1)
        else:
            off_y = off_x = 0
        y_min, x_min = cells[:, 0] + off_y, cells[:, 1] + off_x
        return np.stack([x_min, y_min, x_min + hole_w, y_min + hole_h], axis=1)
