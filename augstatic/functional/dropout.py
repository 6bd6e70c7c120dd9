"""Dropout functions: fill rectangular holes or whole channels."""

from __future__ import annotations

import numpy as np


def fill_holes(image: np.ndarray, holes: np.ndarray, fill: float) -> np.ndarray:
    """Returns a copy with every (x_min, y_min, x_max, y_max) rectangle set to `fill`."""
    out = image.copy()
    for x_min, y_min, x_max, y_max in holes.tolist():
        out[y_min:y_max, x_min:x_max] = fill
    return out


def almost_equal_intervals(size: int, parts: int) -> np.ndarray:
    """`parts` integer lengths summing to `size`, differing by at most one."""
    base, extra = divmod(size, parts)
    return np.array([base + 1] * extra + [base] * (parts - extra))


def grid_cells(splits_y: np.ndarray, splits_x: np.ndarray) -> np.ndarray:
    """(y_min, x_min, y_max, x_max) of every cell of the grid given by split positions."""
    ys0, xs0 = np.meshgrid(splits_y[:-1], splits_x[:-1], indexing="ij")
    ys1, xs1 = np.meshgrid(splits_y[1:], splits_x[1:], indexing="ij")
    return np.stack([ys0.ravel(), xs0.ravel(), ys1.ravel(), xs1.ravel()], axis=1)
