"""Golden tests of the policy ops against Pillow (ImageOps, ImageEnhance, Image.transform), the
reference of the original AutoAugment / RandAugment code that torchvision's ops were built to match.

Exact ops (posterize, solarize, equalize, brightness): identical output. AutoContrast: at most
1 level apart, only where the stretched value is an exact integer (see its test).
Blends with a gray image (color, contrast) and sharpness: at most 1 level apart, because
Pillow's gray is round(.299 R + .587 G + .114 B) (fixed point, mode "L") where torchvision's
(our reference) is floor(.2989 R + .587 G + .114 B), Pillow's contrast blends with the mean
rounded to an integer, and the blends are evaluated in a different float order before the same
truncation. Geometric ops (nearest): at most 0.5% of pixels differ, and only where a source
coordinate falls within OpenCV's 1/1024-pixel fixed-point resolution of a pixel edge, so the
nearest neighbour is the adjacent pixel (measured: shears and translations identical,
rotations 0.1-0.2% of pixels at non-right angles). Bilinear (AugMix's interpolation): at least
97% of pixels within 1 level; OpenCV's 1/32-pixel interpolation weights and Pillow's
fixed-point weights differ by 1 level inside, and Pillow does not blend the outermost ring of
valid pixels with the black fill as torchvision and OpenCV do (about 1-2% of pixels at 150 px).
"""

import cv2
import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from augstatic.functional import policy_ops as F

NEAREST = cv2.INTER_NEAREST


def _synthetic(height=61, width=83, seed=0):
    """Gradient plus noise (every level present), a flat band and saturated corners."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs * 255.0 / (width - 1), ys * 255.0 / (height - 1),
                     (xs + ys) * 127.0 / (height + width - 2)], axis=-1)
    image = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
    image[10:14] = 90
    image[:3, :3] = 255
    image[-3:, -3:] = 0
    return image


@pytest.fixture(scope="module")
def images(intel_scene_mini):
    """Three real photos (one per class), a synthetic image, and gray versions of two."""
    root = intel_scene_mini / "seg_train" / "seg_train"
    photos = [cv2.cvtColor(cv2.imread(str(sorted((root / name).glob("*.jpg"))[3])),
                           cv2.COLOR_BGR2RGB) for name in ("buildings", "glacier", "sea")]
    synthetic = _synthetic()
    grays = [cv2.cvtColor(photos[0], cv2.COLOR_RGB2GRAY), synthetic[:, :, 1].copy()]
    return photos + [synthetic] + grays


def _diff(ours, reference):
    reference = np.asarray(reference)
    assert ours.shape == reference.shape and ours.dtype == np.uint8
    return np.abs(ours.astype(np.int16) - reference.astype(np.int16))


def _pil(image):
    return Image.fromarray(image)


@pytest.mark.parametrize("bits", [1, 2, 4, 6, 7, 8])
def test_posterize_identical(images, bits):
    for image in images:
        assert _diff(F.posterize(image, bits), ImageOps.posterize(_pil(image), bits)).max() == 0


def test_posterize_to_no_bits_is_black(images):
    # Pillow 13 rejects bits=0; earlier Pillow, like torchvision's posterize, masks every bit: black.
    for image in images:
        assert not F.posterize(image, 0).any()


@pytest.mark.parametrize("threshold", [0, 1, 77, 128, 204, 255, 256])
def test_solarize_identical(images, threshold):
    for image in images:
        assert _diff(F.solarize(image, threshold), ImageOps.solarize(_pil(image), threshold)).max() == 0


def test_solarize_threshold_compares_as_float32():
    # RandAugment's bin 6 of 31 is float32 0.8000000119; 255 * it = 204.000003 rounds to
    # float32 204.0 in torchvision's comparison, so 204 is inverted (a float64 ceil gives 205).
    image = np.arange(256, dtype=np.uint8).reshape(16, 16)
    out = F.solarize(image, 255.0 * float(np.float32(0.8)))
    assert out.ravel()[204] == 51 and out.ravel()[203] == 203


def test_equalize_identical(images):
    for image in images:
        assert _diff(F.equalize(image), ImageOps.equalize(_pil(image))).max() == 0
    flat = np.full((8, 8, 3), 77, np.uint8)  # one level: both leave it as is
    assert _diff(F.equalize(flat), ImageOps.equalize(_pil(flat))).max() == 0


def test_autocontrast_within_one_level_only_at_exact_quotients(images):
    # torchvision (and so augstatic) divides by float32 (max - min) / 255 and truncates, so an
    # exact integer quotient such as (182 - 36) * 255 / 219 = 170 becomes 169.99998 -> 169;
    # Pillow multiplies by 255 / (max - min) in double and keeps 170. Everywhere else: identical.
    for image in images + [np.full((5, 7, 3), 40, np.uint8)]:
        diff = _diff(F.autocontrast(image), ImageOps.autocontrast(_pil(image)))
        assert diff.max() <= 1
        planes = image.reshape(image.shape[0], image.shape[1], -1).astype(np.int64)
        low, high = planes.min(axis=(0, 1)), planes.max(axis=(0, 1))
        rows, cols, channels = np.nonzero(diff.reshape(planes.shape))
        numerator = (planes[rows, cols, channels] - low[channels]) * 255
        assert np.all(numerator % (high - low)[channels] == 0)


@pytest.mark.parametrize("factor", [0.0, 0.1, 0.73, 1.0, 1.27, 1.99])
def test_brightness_identical(images, factor):
    for image in images:
        reference = ImageEnhance.Brightness(_pil(image)).enhance(factor)
        assert _diff(F.brightness(image, factor), reference).max() == 0


@pytest.mark.parametrize("factor", [0.01, 0.1, 0.73, 1.0, 1.27, 1.99])
@pytest.mark.parametrize("op,enhancer", [(F.color, ImageEnhance.Color),
                                         (F.contrast, ImageEnhance.Contrast),
                                         (F.sharpness, ImageEnhance.Sharpness)],
                         ids=["color", "contrast", "sharpness"])
def test_enhancements_within_one_level(images, factor, op, enhancer):
    for image in images:
        diff = _diff(op(image, factor), enhancer(_pil(image)).enhance(factor))
        assert diff.max() <= 1
        if factor == 1.0:  # the blend degenerates to the image itself
            assert diff.max() == 0


def test_color_on_one_channel_is_the_identity_as_in_pillow(images):
    gray = images[-1]
    np.testing.assert_array_equal(F.color(gray, 0.2), gray)
    np.testing.assert_array_equal(np.asarray(ImageEnhance.Color(_pil(gray)).enhance(0.2)), gray)


def _affine(image, coefficients, resample=Image.NEAREST):
    """Pillow's inverse-map affine as AutoAugment uses it: input = M @ (x, y, 1), black fill."""
    pil = _pil(image)
    return pil.transform(pil.size, Image.AFFINE, coefficients, resample=resample, fillcolor=0)


GEOMETRIC = [
    ("shear_x", -0.3, lambda im, m: F.shear_x(im, m, NEAREST), lambda m: (1, m, 0, 0, 1, 0)),
    ("shear_x", 0.17, lambda im, m: F.shear_x(im, m, NEAREST), lambda m: (1, m, 0, 0, 1, 0)),
    ("shear_x", 0.99, lambda im, m: F.shear_x(im, m, NEAREST), lambda m: (1, m, 0, 0, 1, 0)),
    ("shear_y", -0.99, lambda im, m: F.shear_y(im, m, NEAREST), lambda m: (1, 0, 0, m, 1, 0)),
    ("shear_y", 0.3, lambda im, m: F.shear_y(im, m, NEAREST), lambda m: (1, 0, 0, m, 1, 0)),
    ("translate_x", -32, lambda im, m: F.translate(im, m, 0, NEAREST), lambda m: (1, 0, -m, 0, 1, 0)),
    ("translate_x", 67, lambda im, m: F.translate(im, m, 0, NEAREST), lambda m: (1, 0, -m, 0, 1, 0)),
    ("translate_y", 5, lambda im, m: F.translate(im, 0, m, NEAREST), lambda m: (1, 0, 0, 0, 1, -m)),
    ("translate_y", -40, lambda im, m: F.translate(im, 0, m, NEAREST), lambda m: (1, 0, 0, 0, 1, -m)),
]


@pytest.mark.parametrize("name,magnitude,ours,coefficients", GEOMETRIC,
                         ids=[f"{row[0]}{row[1]}" for row in GEOMETRIC])
def test_shear_translate_within_nearest_tolerance(images, name, magnitude, ours, coefficients):
    for image in images:
        diff = _diff(ours(image, magnitude), _affine(image, coefficients(magnitude)))
        assert (diff > 0).mean() <= 0.005, name


@pytest.mark.parametrize("angle", [-30.0, 9.3, 90.0, 135.0])
def test_rotate_within_nearest_tolerance(images, angle):
    for image in images:
        reference = _pil(image).rotate(angle, resample=Image.NEAREST, fillcolor=0)
        diff = _diff(F.rotate(image, angle, NEAREST), reference)
        assert (diff > 0).mean() <= 0.005
        if angle == 90.0 and image.shape[0] == image.shape[1]:
            assert diff.max() == 0  # a quarter turn of a square image is exact


def test_geometric_direction_conventions():
    # One bright pixel: TranslateX +2 moves it right, Rotate +90 (counter-clockwise) moves a
    # pixel right of the centre to above it, ShearX m moves row y by m * y to the right.
    image = np.zeros((9, 9), np.uint8)
    image[4, 6] = 255
    assert F.translate(image, 2, 0, NEAREST)[4, 8] == 255
    assert F.rotate(image, 90.0, NEAREST)[2, 4] == 255
    sheared = F.shear_x(image, -0.5, NEAREST)  # x_in = x - 0.5 y: row 4 shifts right by 2
    assert sheared[4, 8] == 255


@pytest.mark.parametrize("op", ["rotate", "shear_x"])
def test_bilinear_within_tolerance(images, op):
    for image in images:
        if op == "rotate":
            ours = F.rotate(image, 9.3, cv2.INTER_LINEAR)
            reference = _pil(image).rotate(9.3, resample=Image.BILINEAR, fillcolor=0)
        else:
            ours = F.shear_x(image, 0.17, cv2.INTER_LINEAR)
            reference = _affine(image, (1, 0.17, 0, 0, 1, 0), Image.BILINEAR)
        assert (_diff(ours, reference) <= 1).mean() >= 0.97
