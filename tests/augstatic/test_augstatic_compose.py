"""Compose, OneOf and SomeOf."""

import json

import numpy as np
import pytest

import augstatic

IMAGE = np.random.default_rng(0).integers(0, 256, size=(12, 12, 3), dtype=np.uint8)


def test_compose_applies_all_in_order():
    pipeline = augstatic.Compose([augstatic.create("HorizontalFlip"), augstatic.create("VerticalFlip")])
    np.testing.assert_array_equal(pipeline(IMAGE, rng=0), IMAGE[::-1, ::-1])
    chain = augstatic.Compose([augstatic.create("Transpose"), augstatic.create("HorizontalFlip")])
    wide = IMAGE[:, :7]
    np.testing.assert_array_equal(chain(wide, rng=0), wide.transpose(1, 0, 2)[:, ::-1])


def test_child_probability_and_group_probability():
    skip = augstatic.Compose([augstatic.create("InvertImg", p=0.0)])
    np.testing.assert_array_equal(skip(IMAGE, rng=0), IMAGE)
    never = augstatic.Compose([augstatic.create("InvertImg")], p=0.0)
    out = never(IMAGE, rng=0)
    np.testing.assert_array_equal(out, IMAGE)
    assert not np.shares_memory(out, IMAGE)
    half = augstatic.Compose([augstatic.create("InvertImg")], p=0.5)
    rng = np.random.default_rng(1)
    inverted = sum(bool((half(IMAGE, rng) != IMAGE).any()) for _ in range(200))
    assert 70 < inverted < 130


def test_one_of_respects_weights():
    choice = augstatic.OneOf([augstatic.create("InvertImg"), augstatic.create("HorizontalFlip")],
                             weights=[0, 1])
    for seed in range(5):
        np.testing.assert_array_equal(choice(IMAGE, rng=seed), IMAGE[:, ::-1])
    fair = augstatic.OneOf([augstatic.create("InvertImg"), augstatic.create("HorizontalFlip")])
    rng = np.random.default_rng(2)
    inverted = sum(int(np.array_equal(fair(IMAGE, rng), 255 - IMAGE)) for _ in range(200))
    assert 70 < inverted < 130


def test_some_of_picks_n_distinct_in_listed_order():
    flips = [augstatic.create("HorizontalFlip"), augstatic.create("VerticalFlip"),
             augstatic.create("InvertImg")]
    everything = augstatic.SomeOf(flips, n=3)
    np.testing.assert_array_equal(everything(IMAGE, rng=0), 255 - IMAGE[::-1, ::-1])
    nothing = augstatic.SomeOf(flips, n=0)
    np.testing.assert_array_equal(nothing(IMAGE, rng=0), IMAGE)
    two = augstatic.SomeOf(flips, n=2)
    outputs = {two(IMAGE, rng=seed).tobytes() for seed in range(20)}
    assert len(outputs) == 3  # the three distinct pairs


def test_groups_are_seeded_serialisable_and_batchable():
    pipeline = augstatic.Compose([
        augstatic.OneOf([augstatic.create("GaussNoise"), augstatic.create("Blur")]),
        augstatic.SomeOf([augstatic.create("RGBShift"), augstatic.create("HorizontalFlip")], n=1),
    ])
    np.testing.assert_array_equal(pipeline(IMAGE, rng=4), pipeline(IMAGE, rng=4))
    params = pipeline.params
    json.dumps(params)
    assert params["transforms"][0]["name"] == "OneOf"
    assert "GaussNoise" in repr(pipeline) and repr(pipeline).startswith("Compose([")
    batch = np.stack([IMAGE, IMAGE[::-1], 255 - IMAGE])
    out = pipeline.apply_batch(batch, rng=np.random.default_rng(3))
    rng = np.random.default_rng(3)
    np.testing.assert_array_equal(out, np.stack([pipeline(im, rng) for im in batch]))


@pytest.mark.parametrize("make, argument", [
    (lambda: augstatic.Compose([]), "transforms"),
    (lambda: augstatic.Compose(["Blur"]), "transforms"),
    (lambda: augstatic.OneOf([augstatic.create("Blur")], weights=[1, 2]), "weights"),
    (lambda: augstatic.OneOf([augstatic.create("Blur")], weights=[0]), "weights"),
    (lambda: augstatic.OneOf([augstatic.create("Blur")], weights=[-1]), "weights"),
    (lambda: augstatic.SomeOf([augstatic.create("Blur")], n=2), "n"),
    (lambda: augstatic.Compose([augstatic.create("Blur")], p=2), "p"),
])
def test_bad_groups_rejected(make, argument):
    with pytest.raises(ValueError, match=argument):
        make()
