"""Superpixels: a vectorised SLIC segmentation and mean-colour replacement of chosen segments."""

from __future__ import annotations

import cv2
import numpy as np


def slic(image: np.ndarray, n_segments: int, compactness: float = 10.0,
         max_iterations: int = 10) -> np.ndarray:
    """SLIC superpixel labels (HxW int32) for an HxWxC image.

    Centres start on a regular grid of step S = sqrt(H*W / n_segments); every iteration each
    pixel joins the nearest of the centres of the 3x3 grid cells around it under
    colour_distance^2 + compactness * (spatial_distance / S)^2 (colours scaled to [0, 1]),
    and each centre moves to its members' mean position and colour; stops early once no
    label changes. Vectorised over pixels, one pass per neighbour offset.
    """
    height, width = image.shape[:2]
    count_px = height * width
    flat = image.reshape(count_px, -1).astype(np.float32)
    peak = float(flat.max())
    flat /= peak + 1e-6 if peak > 0 else 1.0
    channels = [np.ascontiguousarray(flat[:, c]) for c in range(flat.shape[1])]
    step = max(1, int((count_px / n_segments) ** 0.5))
    grid_y = np.arange(step // 2, height, step)
    grid_x = np.arange(step // 2, width, step)
    rows, cols = grid_y.size, grid_x.size
    count = rows * cols
    cy, cx = np.meshgrid(grid_y, grid_x, indexing="ij")
    start = (cy * width + cx).ravel()
    centre_y = cy.ravel().astype(np.float32)
    centre_x = cx.ravel().astype(np.float32)
    centre_c = [channel[start].copy() for channel in channels]
    ys, xs = np.divmod(np.arange(count_px, dtype=np.int64), width)
    pixel_y, pixel_x = ys.astype(np.float32), xs.astype(np.float32)
    cell_r = np.minimum(ys // step, rows - 1)
    cell_c = np.minimum(xs // step, cols - 1)
    neighbours = []
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            r, c = cell_r + dr, cell_c + dc
            valid = (r >= 0) & (r < rows) & (c >= 0) & (c < cols)
            if valid.any():
                neighbours.append((np.where(valid, r * cols + c, 0), ~valid))
    weight = np.float32(compactness / (step * step))
    labels = np.full(count_px, -1, dtype=np.int64)
    for _ in range(max_iterations):
        best = np.full(count_px, np.inf, dtype=np.float32)
        new_labels = np.zeros(count_px, dtype=np.int64)
        for candidate, invalid in neighbours:
            diff = pixel_y - centre_y[candidate]
            distance = diff * diff
            diff = pixel_x - centre_x[candidate]
            distance += diff * diff
            distance *= weight
            for channel, centre in zip(channels, centre_c):
                diff = channel - centre[candidate]
                distance += diff * diff
            distance[invalid] = np.inf
            closer = distance < best
            best[closer] = distance[closer]
            new_labels[closer] = candidate[closer]
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
        sizes = np.bincount(labels, minlength=count)
        members = sizes > 0
        inverse = 1.0 / sizes[members]
        centre_y[members] = np.bincount(labels, pixel_y, count)[members] * inverse
        centre_x[members] = np.bincount(labels, pixel_x, count)[members] * inverse
        for channel, centre in zip(channels, centre_c):
            centre[members] = np.bincount(labels, channel, count)[members] * inverse
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
