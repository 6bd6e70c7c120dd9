"""Statistical tests for noisy transforms: the drawn strength stays in the requested range."""

import numpy as np
import pytest

import augstatic
from augstatic.functional import noise as fnoise

GRAY = np.full((96, 96, 3), 128, dtype=np.uint8)


def test_gauss_noise_variance_within_var_limit():
    transform = augstatic.create("GaussNoise")
    rng = np.random.default_rng(0)
    variances = []
    for _ in range(40):
        diff = transform(GRAY, rng).astype(np.float64) - 128
        variances.append(diff.var())
        assert abs(diff.mean()) < 0.5
    # Rounding to integers adds 1/12 variance; sampling error is under 3% at this size.
    assert 10 * 0.93 <= min(variances) and max(variances) <= 50 * 1.07 + 0.1
    assert max(variances) - min(variances) > 20  # the variance itself is drawn


def test_gauss_noise_fixed_variance_and_shared_channels():
    out = augstatic.create("GaussNoise", var_limit=(30, 30), per_channel=False)(GRAY, rng=1)
    diff = out.astype(np.float64) - 128
    assert diff.var() == pytest.approx(30 + 1 / 12, rel=0.06)
    np.testing.assert_array_equal(out[:, :, 0], out[:, :, 1])
    np.testing.assert_array_equal(out[:, :, 1], out[:, :, 2])


def test_multiplicative_noise_one_factor_in_range():
    image = np.full((20, 20, 3), 200, dtype=np.uint8)
    rng = np.random.default_rng(0)
    for _ in range(30):
        out = augstatic.create("MultiplicativeNoise")(image, rng)
        assert len(np.unique(out)) == 1
        assert 180 <= out[0, 0, 0] <= 220


def test_rgb_shift_constant_per_channel_within_limit():
    rng = np.random.default_rng(0)
    shifts = []
    for _ in range(50):
        diff = augstatic.create("RGBShift")(GRAY, rng).astype(int) - 128
        for c in range(3):
            assert len(np.unique(diff[:, :, c])) == 1
        shifts.append(diff[0, 0])
    shifts = np.array(shifts)
    assert shifts.min() >= -20 and shifts.max() <= 20 and shifts.std() > 5


def test_hue_saturation_value_on_gray_changes_only_value():
    rng = np.random.default_rng(0)
    for _ in range(20):
        out = augstatic.create("HueSaturationValue")(GRAY, rng)
        assert (out == out[0, 0, 0]).all()
        assert abs(int(out[0, 0, 0]) - 128) <= 20


def test_color_jitter_brightness_only_factor_range():
    transform = augstatic.create("ColorJitter", contrast=0, saturation=0, hue=0)
    image = np.full((10, 10, 3), 100, dtype=np.uint8)
    values = [transform(image, seed)[0, 0, 0] for seed in range(40)]
    assert min(values) >= 80 and max(values) <= 120 and len(set(values)) > 5


def test_poisson_from_uniform_matches_poisson_moments():
    uniforms = np.random.default_rng(0).random(200_000, dtype=np.float32)
    for rate in (0.05, 0.3, 2.0):
        counts = fnoise.poisson_from_uniform(uniforms, rate)
        assert counts.mean() == pytest.approx(rate, rel=0.03)
        assert counts.var() == pytest.approx(rate, rel=0.05)


def test_iso_noise_small_and_centred_on_the_image():
    ys, xs = np.mgrid[0:64, 0:64]
    image = np.stack([xs * 3, ys * 3, np.full_like(xs, 90)], axis=-1).astype(np.uint8)
    out = augstatic.create("ISONoise")(image, rng=0)
    diff = out.astype(int) - image
    assert 0 < np.abs(diff).mean() < 20


def test_superpixels_full_replacement_gives_few_colours():
    rng = np.random.default_rng(0)
    image = np.clip(rng.normal(128, 40, (60, 60, 3)), 0, 255).astype(np.uint8)
    out = augstatic.create("Superpixels", p_replace=1.0, n_segments=25, max_size=None)(image, rng=0)
    colours = np.unique(out.reshape(-1, 3), axis=0)
    assert len(colours) <= 40  # one mean colour per segment (about 25 segments)


def test_glass_blur_and_elastic_keep_the_pixel_distribution_roughly():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    for name in ("GlassBlur", "ElasticTransform"):
        out = augstatic.create(name)(image, rng=1)
        assert abs(out.mean() - image.mean()) < 5, name
