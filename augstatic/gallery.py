"""Renders a labelled grid of every transform applied to one image.

    python -m augstatic.gallery --image photo.jpg --out gallery.png [--seed 0] [--tile 160]
"""

from __future__ import annotations

import argparse
import math
import os
import pathlib
import sys
import tempfile

import cv2
import numpy as np

from augstatic import registry
from augstatic import validation

_LABEL_HEIGHT = 22


def load_rgb(path: str) -> np.ndarray:
    """Reads an image file as HxWx3 uint8 RGB.

    Raises:
      ValueError: the file is missing or not a readable image.
    """
    if not os.path.isfile(path):
        raise ValueError(f"--image {path!r} does not exist or is not a file")
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"--image {path!r} is not an image OpenCV can read")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _tile(image: np.ndarray, label: str, tile: int) -> np.ndarray:
    """Fits `image` into a tile x tile square with `label` written above it."""
    height, width = image.shape[:2]
    scale = tile / max(height, width)
    fitted = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    cell = np.full((tile + _LABEL_HEIGHT, tile, 3), 255, dtype=np.uint8)
    top = _LABEL_HEIGHT + (tile - fitted.shape[0]) // 2
    left = (tile - fitted.shape[1]) // 2
    cell[top:top + fitted.shape[0], left:left + fitted.shape[1]] = fitted
    font_scale = min(0.45, 0.45 * tile / (8.5 * max(len(label), 1)))
    cv2.putText(cell, label, (3, _LABEL_HEIGHT - 7), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                (0, 0, 0), 1, cv2.LINE_AA)
    return cell


def render(image: np.ndarray, names, rng: np.random.Generator, tile: int = 160,
           columns: int | None = None) -> np.ndarray:
    """Returns an RGB grid: the original first, then each named transform applied to `image`."""
    image = validation.check_image(image)
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0).reshape(image.shape)
    if image.ndim == 2 or image.shape[2] == 1:
        image = cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2RGB)
    cells = [_tile(image, "original", tile)]
    for name in names:
        transform = registry.create(name)
        cells.append(_tile(transform(image, rng), transform.name, tile))
    columns = columns or math.ceil(math.sqrt(len(cells)))
    rows = math.ceil(len(cells) / columns)
    blank = np.full_like(cells[0], 255)
    cells += [blank] * (rows * columns - len(cells))
    return np.vstack([np.hstack(cells[r * columns:(r + 1) * columns]) for r in range(rows)])


def write_png(path: str, image: np.ndarray) -> None:
    """Writes RGB `image` as PNG atomically (a temporary file renamed into place)."""
    target = pathlib.Path(path)
    if target.suffix.lower() != ".png":
        raise ValueError(f"--out must end in .png, got {path!r}")
    if not target.parent.is_dir():
        raise ValueError(f"--out directory {str(target.parent)!r} does not exist")
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"could not encode the gallery as PNG for --out {path!r}")
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".png.tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(encoded.tobytes())
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def main(argv=None) -> int:
    """Parses arguments, renders the gallery and writes it; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m augstatic.gallery", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", required=True, help="input image file (any OpenCV format)")
    parser.add_argument("--out", required=True, help="output PNG path")
    parser.add_argument("--seed", type=int, default=0, help="seed of the transforms' generator")
    parser.add_argument("--tile", type=int, default=160, help="tile side in pixels")
    parser.add_argument("--names", nargs="*", default=None,
                        help="transform names (default: every registered transform)")
    args = parser.parse_args(argv)
    try:
        if args.tile < 32:
            raise ValueError(f"--tile must be >= 32 pixels, got {args.tile}")
        names = args.names if args.names else registry.available()
        for name in names:
            registry.lookup(name)
        grid = render(load_rgb(args.image), names, np.random.default_rng(args.seed), args.tile)
        write_png(args.out, grid)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({grid.shape[1]}x{grid.shape[0]}, {len(names)} transforms)")
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
