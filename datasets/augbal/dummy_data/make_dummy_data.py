"""Regenerates the committed dummy data: `python datasets/augbal/dummy_data/make_dummy_data.py`.

intel_layout/: the Intel Scene archive layout with 3 classes, 30 train + 6 test
16x16 JPEGs each (ratio 20 after a validation carve of 2 still leaves 1 minority
image). mixed/: a single folder of classes (no test pool) mixing sizes, grayscale,
RGBA and 16-bit PNGs, for conversion and `store_size` tests.
"""

import pathlib

import cv2
import numpy as np

HERE = pathlib.Path(__file__).parent
CLASSES = {"buildings": (90, 90, 90), "glacier": (230, 230, 255), "sea": (200, 80, 20)}  # BGR


def _picture(rng: np.random.Generator, base_bgr, height: int, width: int) -> np.ndarray:
    """A class-tinted gradient with a random bright square: distinct per file."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.empty((height, width, 3), np.float64)
    for channel in range(3):
        image[:, :, channel] = base_bgr[channel] * (0.6 + 0.4 * x / max(width - 1, 1))
    top, left = rng.integers(0, height - 4), rng.integers(0, width - 4)
    image[top:top + 4, left:left + 4] = rng.integers(0, 256, size=3)
    image += rng.normal(0, 6, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def main() -> None:
    rng = np.random.default_rng(20221127)
    for pool, folder, count in (("train", "seg_train/seg_train", 30), ("test", "seg_test/seg_test", 6)):
        for name, tint in CLASSES.items():
            out = HERE / "intel_layout" / folder / name
            out.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                cv2.imwrite(str(out / f"{pool}_{index:03d}.jpg"), _picture(rng, tint, 16, 16),
                            [cv2.IMWRITE_JPEG_QUALITY, 90])
    sizes = [(16, 16), (12, 12), (20, 16), (16, 24)]
    for name, tint in (("buildings", CLASSES["buildings"]), ("sea", CLASSES["sea"])):
        out = HERE / "mixed" / name
        out.mkdir(parents=True, exist_ok=True)
        for index in range(12):
            height, width = sizes[index % len(sizes)]
            picture = _picture(rng, tint, height, width)
            kind = index % 4
            if kind == 0:
                cv2.imwrite(str(out / f"{index:03d}_rgb.jpg"), picture)
            elif kind == 1:
                cv2.imwrite(str(out / f"{index:03d}_gray.png"), cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY))
            elif kind == 2:
                alpha = np.full(picture.shape[:2] + (1,), 128, np.uint8)
                cv2.imwrite(str(out / f"{index:03d}_rgba.png"), np.concatenate([picture, alpha], axis=2))
            else:
                cv2.imwrite(str(out / f"{index:03d}_16bit.png"), picture.astype(np.uint16) * 257)


if __name__ == "__main__":
    main()
