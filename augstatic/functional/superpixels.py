"""Superpixels: a vectorised SLIC segmentation and mean-colour replacement of chosen segments."""

from __future__ import annotations

import cv2
import numpy as np


def slic(image: np.ndarray, n_segments: int, compactness: float = 10.0,
         max_iterations: int = 10) -> np.ndarray:
    """SLIC superpixel labels (HxW int32) for an HxWxC image.

    Centres start on a regular grid of step S = sqrt(H*W / n_segments); every iteration each
    pixel joins the nearest of the 3x3 grid cells' centres around it under
    colour_distance^2 + compactness * (spatial_distance / S)^2 (colours in [0, 1]), and each
    centre moves to its members' mean position and colour. Vectorised over pixels instead of
    looping over centres in Python.
    """
    height, width = image.shape[:2]
    pixels = image.reshape(height * width, -1).astype(np.float32)
    peak = float(pixels.max())
    pixels /= peak + 1e-6 if peak > 0 else 1.0
    step = max(1, int((height * width / n_segments) ** 0.5))
    grid_y = np.arange(step // 2, height, step)
    grid_x = np.arange(step // 2, width, step)
    rows, cols = grid_y.size, grid_x.size
    cy, cx = np.meshgrid(grid_y, grid_x, indexing="ij")
    centre_yx = np.stack([cy.ravel(), cx.ravel()], axis=1).astype(np.float32)
    centre_colour = pixels[cy.ravel() * width + cx.ravel()]
    ys, xs = np.divmod(np.arange(height * width), width)
    # Each pixel's grid cell; its candidate centres are the 3x3 neighbouring cells.
    cell_r = np.minimum(ys // step, rows - 1)
    cell_c = np.minimum(xs // step, cols - 1)
    candidates = []
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            r, c = cell_r + dr, cell_c + dc
            valid = (r >= 0) & (r < rows) & (c >= 0) & (c < cols)
            candidates.append(np.where(valid, r * cols + c, -1))
    candidates = np.stack(candidates, axis=1)  # (P, 9)
    safe = np.maximum(candidates, 0)
    weight = np.float32(compactness / (step * step))
    yx = np.stack([ys, xs], axis=1).astype(np.float32)
    count = rows * cols
    labels = np.zeros(height * width, dtype=np.int64)
    for _ in range(max_iterations):
        colour_d = ((pixels[:, None, :] - centre_colour[safe]) ** 2).sum(axis=2)
        space_d = ((yx[:, None, :] - centre_yx[safe]) ** 2).sum(axis=2)
        distance = colour_d + weight * space_d
        distance[candidates < 0] = np.inf
        new_labels = safe[np.arange(safe.shape[0]), distance.argmin(axis=1)]
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
        sizes = np.bincount(labels, minlength=count).astype(np.float32)
        members = sizes > 0
        for axis in range(2):
            sums = np.bincount(labels, weights=yx[:, axis], minlength=count)
            centre_yx[members, axis] = sums[members] / sizes[members]
        for channel in range(pixels.shape[1]):
            sums = np.bincount(labels, weights=pixels[:, channel], minlength=count)
            centre_colour[members, channel] = sums[members] / sizes[members]
    return labels.reshape(height, width).astype(np.int32)


def superpixels(image: np.ndarray, n_segments: int, replace: np.ndarray, max_size: int | None,
                interpolation: int) -> np.ndarray:
    """Replaces chosen SLIC segments by their mean colour (Albumentations semantics).

    Args:
      image: HxWxC or HxW uint8 image.
      n_segments: approximate number of segments.
      replace: boolean flags; the i-th existing segment label is replaced when
        replace[i % len(replace)] is set.
      max_size: if the longer side exceeds it, work on a copy downscaled to it and scale the
        result back up (the whole image then passes through the resize).
      interpolation: OpenCV interpolation of those resizes.
    """
    if not np.any(replace):
        return image.copy()
    shape = image.shape
    work = image if image.ndim == 3 else image[:, :, None]
    height, width = shape[:2]
    if max_size is not None and max(height, width) > max_size:
        scale = max_size / max(height, width)
        small = (max(1, int(width * scale)), max(1, int(height * scale)))
        work = cv2.resize(work, small, interpolation=interpolation).reshape(
            small[1], small[0], work.shape[2])
    labels = slic(work, n_segments).ravel()
    flat = work.reshape(-1, work.shape[2])
    count = int(labels.max()) + 1
    sizes = np.bincount(labels, minlength=count)
    present = np.flatnonzero(sizes)
    chosen = present[replace[np.arange(present.size) % replace.size]]
    # Per-label colour table: identity for untouched labels is not expressible, so only the
    # chosen labels' pixels are overwritten by their rounded mean.
    out = flat.copy()
    if chosen.size:
        means = np.stack([np.bincount(labels, weights=flat[:, c], minlength=count)
                          for c in range(flat.shape[1])], axis=1) / np.maximum(sizes, 1)[:, None]
        mask = np.zeros(count, dtype=bool)
        mask[chosen] = True
        hit = mask[labels]
        out[hit] = np.clip(np.rint(means[labels[hit]]), 0, 255).astype(work.dtype)
    out = out.reshape(work.shape)
    if out.shape[:2] != (height, width):
        out = cv2.resize(out, (width, height), interpolation=interpolation)
    return out.reshape(shape)
