"""Tests for augbal_tf.samplers: sampling probabilities, draw frequencies, determinism, the tf.data view."""

import numpy as np
import pytest
from scipy import stats
import tensorflow as tf

from augbal_tf import samplers

# A long-tailed label array: 8000 / 1500 / 400 / 100 examples.
COUNTS = np.array([8000, 1500, 400, 100])
LABELS = np.repeat(np.arange(4), COUNTS)


def _class_mass(probabilities, labels, num_classes):
    return np.bincount(labels, weights=probabilities, minlength=num_classes)


def test_sampler_weights_hand_computed():
    labels = np.array([0] * 9 + [1] + [2] * 4)
    np.testing.assert_allclose(samplers.sampler_weights(labels, "none"), np.full(14, 1 / 14))
    # Equal class shares; each example of class c gets 1 / (3 n_c).
    balanced = samplers.sampler_weights(labels, "class_balanced")
    np.testing.assert_allclose(_class_mass(balanced, labels, 3), [1 / 3] * 3)
    np.testing.assert_allclose(balanced[:9], 1 / 27)
    # sqrt(9), sqrt(1), sqrt(4) = 3, 1, 2: shares 1/2, 1/6, 1/3.
    np.testing.assert_allclose(_class_mass(samplers.sampler_weights(labels, "square_root"), labels, 3),
                               [1 / 2, 1 / 6, 1 / 3])


def test_a_class_absent_from_the_labels_gets_no_share():
    labels = np.array([0, 0, 2])
    np.testing.assert_allclose(_class_mass(samplers.sampler_weights(labels, "class_balanced"), labels, 3),
                               [0.5, 0, 0.5])


def test_none_is_a_permutation_each_epoch():
    indices = samplers.epoch_indices(LABELS, "none", seed=3, epoch=0)
    np.testing.assert_array_equal(np.sort(indices), np.arange(LABELS.size))
    assert not np.array_equal(indices, samplers.epoch_indices(LABELS, "none", seed=3, epoch=1))


@pytest.mark.parametrize("mode,shares", [
    ("class_balanced", np.full(4, 0.25)),
    ("square_root", np.sqrt(COUNTS) / np.sqrt(COUNTS).sum()),
])
def test_draw_frequencies_match_the_mode(mode, shares):
    indices = samplers.epoch_indices(LABELS, mode, seed=0, epoch=0)
    assert indices.shape == (LABELS.size,) and indices.dtype == np.int64
    observed = np.bincount(LABELS[indices], minlength=4)
    # A multinomial draw: the chi-square test rejects a wrong share (e.g. the natural
    # 0.8/0.15/0.04/0.01) with p ~ 0, and accepts the right one except 1 time in 1000.
    assert stats.chisquare(observed, shares * LABELS.size).pvalue > 1e-3
    assert stats.chisquare(observed, COUNTS).pvalue < 1e-12


def test_indices_depend_on_seed_and_epoch_only():
    first = samplers.epoch_indices(LABELS, "class_balanced", seed=5, epoch=7)
    # A resumed run calls again with the same (seed, epoch), after other epochs were drawn.
    samplers.epoch_indices(LABELS, "class_balanced", seed=5, epoch=8)
    np.testing.assert_array_equal(samplers.epoch_indices(LABELS, "class_balanced", seed=5, epoch=7), first)
    assert not np.array_equal(samplers.epoch_indices(LABELS, "class_balanced", seed=5, epoch=6), first)
    assert not np.array_equal(samplers.epoch_indices(LABELS, "class_balanced", seed=6, epoch=7), first)


@pytest.mark.parametrize("call,message", [
    (lambda: samplers.sampler_weights(LABELS, "balanced"), "sampler 'balanced' is not valid; allowed: none"),
    (lambda: samplers.sampler_weights([], "none"), "non-empty 1-D"),
    (lambda: samplers.sampler_weights([0.5, 1.0], "none"), "int class indices"),
    (lambda: samplers.epoch_indices([0, 1], "none", 0, -1), "epoch must be >= 0, got -1"),
])
def test_bad_arguments_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_indexed_dataset_yields_the_drawn_elements_in_order():
    images = tf.data.Dataset.from_tensor_slices(
        ([f"jpeg-{i}".encode() for i in range(6)], [0, 0, 0, 0, 1, 2]))
    tensors = samplers.elements(images)
    assert tensors[0].dtype == tf.string and tensors[0].shape == (6,)
    labels = tensors[1].numpy()
    indices = samplers.epoch_indices(labels, "class_balanced", seed=2, epoch=0)
    got = list(samplers.resampled_epoch(tensors, labels, "class_balanced", 2, 0).as_numpy_iterator())
    assert [image for image, _ in got] == [f"jpeg-{i}".encode() for i in indices]
    np.testing.assert_array_equal([label for _, label in got], labels[indices])
    # Chunks of 4 over 6 draws: one full chunk and a remainder, same order.
    chunked = list(samplers.indexed_dataset(tensors, indices, chunk=4).as_numpy_iterator())
    assert [image for image, _ in chunked] == [image for image, _ in got]
    with pytest.raises(ValueError, match=r"indices must be 1-D in \[0, 6\)"):
        samplers.indexed_dataset(tensors, [0, 6])
