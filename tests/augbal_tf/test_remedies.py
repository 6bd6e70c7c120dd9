"""Tests for augbal_tf.remedies: post-hoc adjustment, tau-normalisation, mixup and Remix."""

import math

import keras
import numpy as np
import pytest
from scipy import stats
import tensorflow as tf

from augbal_tf import remedies


def test_posthoc_adjust_hand_computed_numpy_and_tensor():
    # Counts [3, 1]: log prior [log 3/4, log 1/4]; tau 1 subtracts it.
    logits = np.array([[1.0, 0.0], [0.5, -0.5]], np.float32)
    expected = logits - np.log([0.75, 0.25])
    adjusted = remedies.posthoc_adjust(logits, [3, 1], 1.0)
    assert isinstance(adjusted, np.ndarray)
    np.testing.assert_allclose(adjusted, expected, rtol=1e-6)
    # 1 - log .75 = 1.288 < 0 - log .25 = 1.386: the first example flips to the minority class.
    np.testing.assert_array_equal(adjusted.argmax(-1), [1, 1])
    tensor = remedies.posthoc_adjust(tf.constant(logits, tf.bfloat16), [3, 1], 1.0)
    assert tensor.dtype == tf.float32
    np.testing.assert_allclose(tensor.numpy(), expected, rtol=1e-2)
    np.testing.assert_array_equal(remedies.posthoc_adjust(logits, [3, 1], 0.0), logits)
    with pytest.raises(ValueError, match="posthoc tau must be finite, got nan"):
        remedies.posthoc_offsets([3, 1], math.nan)


def test_logit_offset_layer_applies_and_records_the_offsets():
    offsets = remedies.posthoc_offsets([3, 1], 1.0)
    np.testing.assert_allclose(offsets, [-math.log(0.75), -math.log(0.25)], rtol=1e-6)
    inputs = keras.Input((2,))
    model = keras.Model(inputs, remedies.LogitOffset(offsets)(inputs))
    logits = np.array([[1.0, 0.0]], np.float32)
    np.testing.assert_allclose(model(logits).numpy(), remedies.posthoc_adjust(logits, [3, 1], 1.0), rtol=1e-6)
    clone = keras.Model.from_config(model.get_config(), custom_objects={"LogitOffset": remedies.LogitOffset})
    np.testing.assert_allclose(clone(logits).numpy(), model(logits).numpy())
    with pytest.raises(ValueError, match="posthoc tau=1.0 needs the per-class training counts"):
        remedies.posthoc_offsets(None, 1.0)


def test_tau_normalize_hand_computed():
    # Column norms 5 and 2.
    kernel = np.array([[3.0, 0.0], [4.0, 2.0]])
    np.testing.assert_allclose(remedies.tau_normalize(kernel, 1.0), [[0.6, 0.0], [0.8, 1.0]])
    np.testing.assert_allclose(remedies.tau_normalize(kernel, 0.5),
                               [[3 / math.sqrt(5), 0.0], [4 / math.sqrt(5), 2 / math.sqrt(2)]], rtol=1e-6)
    np.testing.assert_allclose(remedies.tau_normalize(kernel, 0.0), kernel)
    with pytest.raises(ValueError, match="column 1 is all zeros"):
        remedies.tau_normalize([[1.0, 0.0]], 1.0)
    with pytest.raises(ValueError, match="tau must be a finite number >= 0, got -1"):
        remedies.tau_normalize(kernel, -1)


# Counts: class 0 head (300), class 1 (100, ratio 3 to the head), class 2 tail (10).
COUNTS = [300, 100, 10]


@pytest.mark.parametrize("lam,a,b,expected", [
    (0.3, 0, 2, 0.0),   # 300/10 >= 3 and lam < 0.5: the label goes to b, the minority.
    (0.7, 0, 2, 0.7),   # the majority image dominates: plain mixup label.
    (0.7, 2, 0, 1.0),   # 10/300 <= 1/3 and 1 - lam < 0.5: the label goes to a, the minority.
    (0.3, 2, 0, 0.3),   # the minority image is the smaller part: plain mixup label.
    (0.3, 0, 1, 0.0),   # ratio exactly kappa = 3 counts.
    (0.49, 1, 2, 0.0),
    (0.5, 0, 2, 0.5),   # lam exactly tau does not count.
    (0.3, 0, 0, 0.3),   # same class.
    (0.3, 1, 0, 0.3),   # ratio 1/3 but 1 - lam = 0.7 >= tau.
])
def test_remix_label_rule_constructed_cases(lam, a, b, expected):
    value = remedies.remix_label_lambda([lam], [a], [b], COUNTS, kappa=3.0, tau=0.5)
    assert float(value[0]) == pytest.approx(expected)


def _mix(mode, labels, seed, alpha=1.0):
    batch = len(labels)
    # Image i is the one-hot vector e_i: a mixed image reveals lam and the partner.
    images = np.eye(batch, dtype=np.float32).reshape(batch, 1, 1, batch)
    mixed, targets = remedies.mix_batch(images, tf.one_hot(labels, 3), seed, alpha, mode, COUNTS)
    return mixed.numpy().reshape(batch, batch), targets.numpy()


def _partners(mixed):
    lam = np.diag(mixed).copy()
    off = mixed - np.diag(lam)
    partner = np.where(off.max(axis=1) > 0, off.argmax(axis=1), np.arange(len(mixed)))
    lam[partner == np.arange(len(mixed))] = np.nan  # mixed with itself: lam not observable
    return lam, partner


def test_mixup_mixes_images_and_labels_with_the_same_lambda():
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 2])
    mixed, targets = _mix("mixup", labels, [4, 2])
    lam, partner = _partners(mixed)
    assert sorted(partner) == list(range(8))  # a permutation
    lam_value = np.nanmean(lam)
    np.testing.assert_allclose(lam[~np.isnan(lam)], lam_value, rtol=1e-6)  # one lam per batch
    expected = lam_value * np.eye(3)[labels] + (1 - lam_value) * np.eye(3)[labels[partner]]
    np.testing.assert_allclose(targets, expected, rtol=1e-5, atol=1e-6)


def test_remix_targets_follow_the_rule_for_every_pair():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 0, 2, 1])
    for step in range(6):
        mixed, targets = _mix("remix", labels, [11, step], alpha=1.0)
        lam, partner = _partners(mixed)
        for i in np.flatnonzero(~np.isnan(lam)):
            a, b, ratio = labels[i], labels[partner[i]], COUNTS[labels[i]] / COUNTS[labels[partner[i]]]
            if ratio >= 3 and lam[i] < 0.5:
                label_lam = 0.0
            elif ratio <= 1 / 3 and 1 - lam[i] < 0.5:
                label_lam = 1.0
            else:
                label_lam = lam[i]
            expected = label_lam * np.eye(3)[a] + (1 - label_lam) * np.eye(3)[b]
            np.testing.assert_allclose(targets[i], expected, rtol=1e-5, atol=1e-6)


def test_mix_batch_is_deterministic_given_the_seed():
    labels = np.array([0, 1, 2, 0, 1, 2])
    first = _mix("remix", labels, [1, 2])
    np.testing.assert_array_equal(_mix("remix", labels, [1, 2])[0], first[0])
    np.testing.assert_array_equal(_mix("remix", labels, [1, 2])[1], first[1])
    assert not np.array_equal(_mix("remix", labels, [1, 3])[0], first[0])
    # none returns its inputs.
    images = np.random.default_rng(0).random((2, 2, 2, 3), np.float32)
    out_images, out_targets = remedies.mix_batch(images, np.eye(3, dtype=np.float32)[:2], [0, 0], mode="none")
    np.testing.assert_array_equal(out_images.numpy(), images)


@pytest.mark.parametrize("alpha", [0.4, 1.0])
def test_lambda_is_beta_alpha_alpha(alpha):
    draws = np.array([float(remedies.sample_beta([7, k], alpha)) for k in range(300)])
    assert stats.kstest(draws, stats.beta(alpha, alpha).cdf).pvalue > 1e-3
    assert stats.kstest(draws, stats.beta(alpha + 2, alpha + 2).cdf).pvalue < 1e-3


@pytest.mark.parametrize("kwargs,message", [
    ({"mode": "cutmix"}, "mix mode 'cutmix' is not valid; allowed: none, mixup, remix"),
    ({"mode": "mixup", "alpha": 0.0}, "mix alpha must be > 0, got 0.0"),
    ({"mode": "remix", "counts": None}, "needs the per-class training counts"),
])
def test_bad_mix_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        remedies.mix_batch(np.zeros((2, 1, 1, 1), np.float32), np.eye(2, dtype=np.float32), [0, 0], **kwargs)
