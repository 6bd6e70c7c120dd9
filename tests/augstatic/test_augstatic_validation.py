"""Bad inputs and bad parameters raise ValueError naming the argument, the value and the rule."""

import numpy as np
import pytest

import augstatic

GOOD = np.zeros((8, 8, 3), dtype=np.uint8)


@pytest.mark.parametrize("image, message", [
    ([[1, 2], [3, 4]], "numpy array"),
    (np.zeros((8, 8, 3), dtype=np.int16), "dtype int16"),
    (np.zeros((8, 8, 3), dtype=np.float64), "dtype float64"),
    (np.zeros((8, 8, 4), dtype=np.uint8), r"shape \(8, 8, 4\)"),
    (np.zeros((8, 8, 2), dtype=np.uint8), r"shape \(8, 8, 2\)"),
    (np.zeros((8,), dtype=np.uint8), r"shape \(8,\)"),
    (np.zeros((2, 8, 8, 3), dtype=np.uint8), r"shape \(2, 8, 8, 3\)"),
    (np.zeros((0, 8, 3), dtype=np.uint8), "empty"),
    (np.zeros((8, 0), dtype=np.uint8), "empty"),
    (np.full((4, 4, 3), np.nan, dtype=np.float32), "non-finite"),
    (np.full((4, 4), np.inf, dtype=np.float32), "non-finite"),
    (np.full((4, 4, 3), 1.5, dtype=np.float32), r"\[0, 1\]"),
    (np.full((4, 4, 3), -0.1, dtype=np.float32), r"\[0, 1\]"),
])
@pytest.mark.parametrize("name", ["HorizontalFlip", "GaussNoise", "Superpixels"])
def test_bad_images_rejected(name, image, message):
    with pytest.raises(ValueError, match=message) as error:
        augstatic.create(name)(image, rng=0)
    assert "image" in str(error.value)


@pytest.mark.parametrize("rng", ["seed", 1.5, -3, True])
def test_bad_rng_rejected(rng):
    with pytest.raises(ValueError, match="rng"):
        augstatic.create("GaussNoise")(GOOD, rng=rng)


@pytest.mark.parametrize("name, params, argument", [
    ("GaussNoise", {"var_limit": (50, 10)}, "var_limit"),
    ("GaussNoise", {"var_limit": (-1, 10)}, "var_limit"),
    ("GaussNoise", {"var_limit": "big"}, "var_limit"),
    ("Blur", {"blur_limit": (4, 6)}, "blur_limit"),
    ("MedianBlur", {"blur_limit": (1, 3)}, "blur_limit"),
    ("HorizontalFlip", {"p": 1.5}, "p"),
    ("HorizontalFlip", {"p": float("nan")}, "p"),
    ("Posterize", {"num_bits": 0}, "num_bits"),
    ("Posterize", {"num_bits": 4.5}, "num_bits"),
    ("Solarize", {"threshold": 300}, "threshold"),
    ("JpegCompression", {"quality_range": (90, 101)}, "quality_range"),
    ("GridDropout", {"ratio": 1.0}, "ratio"),
    ("Downscale", {"scale_range": (0.0, 0.5)}, "scale_range"),
    ("Downscale", {"interpolation_down": "bicubicish"}, "interpolation_down"),
    ("GridDistortion", {"border_mode": "mirror"}, "border_mode"),
    ("ChannelDropout", {"channel_drop_range": (1, 3)}, "channel_drop_range"),
    ("ColorJitter", {"hue": 0.7}, "hue"),
    ("MultiplicativeNoise", {"per_channel": "yes"}, "per_channel"),
    ("RandomResizedCrop", {"size": (0, 10)}, "size"),
    ("CoarseDropout", {"num_holes_range": (3, 1)}, "num_holes_range"),
    ("Blur", {"kernel": 3}, "kernel"),
])
def test_bad_parameters_name_argument_and_value(name, params, argument):
    with pytest.raises(ValueError) as error:
        augstatic.create(name, **params)
    text = str(error.value)
    assert argument in text
    assert repr(next(iter(params.values())))[:4] in text or "unknown parameter" in text


def test_bad_batches_rejected():
    transform = augstatic.create("HorizontalFlip")
    with pytest.raises(ValueError, match="NxHxWxC"):
        transform.apply_batch(GOOD, rng=0)
    with pytest.raises(ValueError, match="dtype"):
        transform.apply_batch(np.zeros((2, 4, 4, 3), dtype=np.int32), rng=0)
    with pytest.raises(ValueError, match="non-finite"):
        transform.apply_batch(np.full((2, 4, 4, 3), np.nan, dtype=np.float32), rng=0)
    assert transform.apply_batch(np.zeros((0, 4, 4, 3), dtype=np.uint8), rng=0).shape == (0, 4, 4, 3)


def test_a_passed_generator_is_used_as_is():
    from augstatic import validation
    rng = np.random.default_rng(0)
    assert validation.as_generator(rng) is rng
    state = rng.bit_generator.state
    augstatic.create("GaussNoise")(GOOD, rng=rng)
    assert rng.bit_generator.state != state  # drew from the caller's stream
    seeded = [validation.as_generator(7).random() for _ in range(2)]
    assert seeded[0] == seeded[1]
