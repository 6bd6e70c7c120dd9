"""Shared property tests, driven by the one table of every transform (augstatic_table.TABLE)."""

import json

import numpy as np
import pytest

import augstatic
from augstatic_table import TABLE, expected_shape

IDS = [row[0] for row in TABLE]
RANDOM_ROWS = [row for row in TABLE if row[3]]


def natural_image(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A smooth colour gradient plus texture: exercises colour, edges and noise paths."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs * 255.0 / max(width - 1, 1), ys * 255.0 / max(height - 1, 1),
                     (xs + ys) * 127.0 / max(height + width - 2, 1)], axis=-1)
    image = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    return image[:, :, :channels] if channels == 3 else image[:, :, :1]


def build(name, params):
    return augstatic.create(name, **params)


def test_table_covers_every_registered_transform():
    assert {row[1] for row in TABLE} == set(augstatic.available())


@pytest.mark.parametrize("row", TABLE, ids=IDS)
def test_shape_dtype_kept_and_input_untouched(row):
    _, name, params, _ = row
    image = natural_image(37, 53)
    before = image.copy()
    out = build(name, params)(image, rng=3)
    assert out.dtype == np.uint8
    assert out.shape == expected_shape(name, params, image.shape)
    np.testing.assert_array_equal(image, before)
    assert not np.shares_memory(out, image)


@pytest.mark.parametrize("row", TABLE, ids=IDS)
def test_same_seed_same_output(row):
    _, name, params, _ = row
    image = natural_image(40, 48)
    transform = build(name, params)
    by_int = transform(image, rng=11)
    np.testing.assert_array_equal(by_int, transform(image, rng=11))
    np.testing.assert_array_equal(by_int, transform(image, rng=np.random.default_rng(11)))


@pytest.mark.parametrize("row", RANDOM_ROWS, ids=[row[0] for row in RANDOM_ROWS])
def test_different_seeds_differ(row):
    _, name, params, _ = row
    # Large enough that CLAHE's 8x8 tiles hold more than 256 pixels (else every clip limit
    # in 1..4 clips identically).
    image = natural_image(160, 192)
    transform = build(name, params)
    outputs = [transform(image, rng=seed).tobytes() for seed in range(8)]
    assert len(set(outputs)) > 1


@pytest.mark.parametrize("row", TABLE, ids=IDS)
def test_passed_generator_is_used_not_reseeded(row):
    _, name, params, is_random = row
    image = natural_image(160, 192)
    transform = build(name, params)
    rng = np.random.default_rng(5)
    first, second = transform(image, rng), transform(image, rng)
    if is_random and name not in ("Downscale",):
        # A second call continues the stream; for random transforms it must not repeat the
        # first output in every one of several tries.
        outputs = {first.tobytes(), second.tobytes()}
        outputs |= {transform(image, rng).tobytes() for _ in range(6)}
        assert len(outputs) > 1
    else:
        np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("row", TABLE, ids=IDS)
@pytest.mark.parametrize("size", [(1, 1), (1, 7), (7, 1), (3, 5), (33, 17)],
                         ids=["1x1", "1x7", "7x1", "3x5", "33x17"])
def test_tiny_and_odd_sizes(row, size):
    _, name, params, _ = row
    image = natural_image(*size)
    out = build(name, params)(image, rng=0)
    assert out.dtype == np.uint8
    assert out.shape == expected_shape(name, params, image.shape)


@pytest.mark.parametrize("row", TABLE, ids=IDS)
def test_non_contiguous_input_equals_contiguous(row):
    _, name, params, _ = row
    base = natural_image(60, 82)
    view = base[::2, ::-2]
    assert not view.flags.c_contiguous
    transform = build(name, params)
    np.testing.assert_array_equal(transform(view, rng=4), transform(np.ascontiguousarray(view), rng=4))


@pytest.mark.parametrize("row", TABLE, ids=IDS)
def test_large_image(row):
    _, name, params, _ = row
    image = natural_image(480, 640)
    out = build(name, params)(image, rng=1)
    assert out.shape == expected_shape(name, params, image.shape)


@pytest.mark.parametrize("row", TABLE, ids=IDS)
@pytest.mark.parametrize("layout", ["HxW", "HxWx1", "float32", "float32-HxW"])
def test_grayscale_and_float_inputs(row, layout):
    _, name, params, _ = row
    image = natural_image(29, 31)
    if layout.endswith("HxW"):
        image = image[:, :, 0]
    elif layout == "HxWx1":
        image = image[:, :, :1].copy()
    if layout.startswith("float32"):
        image = image.astype(np.float32) / 255.0
    before = image.copy()
    out = build(name, params)(image, rng=2)
    assert out.dtype == image.dtype
    assert out.shape == expected_shape(name, params, image.shape)
    np.testing.assert_array_equal(image, before)
    if out.dtype == np.float32:
        assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("row", TABLE, ids=IDS)
def test_apply_batch_follows_the_documented_rule(row):
    """apply_batch(x, g) == stack(t(x_i, g) for i in order) for a generator in the same state."""
    _, name, params, _ = row
    images = np.stack([natural_image(20, 26, seed=s) for s in range(4)])
    transform = build(name, params)
    batch = transform.apply_batch(images, rng=np.random.default_rng(9))
    rng = np.random.default_rng(9)
    one_by_one = np.stack([transform(image, rng) for image in images])
    np.testing.assert_array_equal(batch, one_by_one)
    assert batch.shape == (4,) + expected_shape(name, params, images.shape[1:])


@pytest.mark.parametrize("row", TABLE, ids=IDS)
def test_params_json_repr_and_round_trip(row):
    _, name, params, _ = row
    transform = build(name, params)
    assert transform.name == name
    resolved = transform.params
    json.dumps(resolved)
    assert resolved["p"] == params.get("p", 1.0)
    assert repr(transform).startswith(f"{name}(") and "p=" in repr(transform)
    assert augstatic.create(name, **resolved).params == resolved


@pytest.mark.parametrize("row", TABLE, ids=IDS)
def test_probability_zero_returns_an_equal_copy(row):
    _, name, params, _ = row
    image = natural_image(16, 16)
    out = augstatic.create(name, **{**params, "p": 0.0})(image, rng=0)
    np.testing.assert_array_equal(out, image)
    assert not np.shares_memory(out, image)


def test_every_transform_on_a_real_photo(intel_scene_mini):
    import cv2
    path = sorted((intel_scene_mini / "seg_train" / "seg_train" / "sea").glob("*.jpg"))[0]
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    rng = np.random.default_rng(0)
    for name in augstatic.PAPER_TRANSFORMS:
        out = augstatic.create(name)(image, rng)
        assert out.dtype == np.uint8
        assert out.shape == expected_shape(name, {}, image.shape), name
