"""Tests for augbal_tf.losses: each formula against values computed by hand or by Keras."""

import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from augbal_tf import losses


def _logits(seed: int, shape=(6, 4), spread: float = 3.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-spread, spread, shape).astype(np.float32)


def _keras_ce(labels, logits) -> np.ndarray:
    return keras.ops.convert_to_numpy(
        keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))


def test_cross_entropy_matches_keras_and_focal_gamma_zero_equals_it():
    logits, labels = _logits(0), np.array([0, 1, 2, 3, 0, 2])
    expected = _keras_ce(labels, logits)
    np.testing.assert_allclose(losses.cross_entropy()(labels, logits).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(losses.focal(0.0)(labels, logits).numpy(), expected, rtol=1e-6)


def test_focal_hand_computed():
    # logits [0, log 3]: p = [1/4, 3/4].
    logits = np.array([[0.0, math.log(3.0)]] * 2, np.float32)
    values = losses.focal(2.0)([1, 0], logits).numpy()
    np.testing.assert_allclose(values, [0.25 ** 2 * -math.log(0.75), 0.75 ** 2 * -math.log(0.25)], rtol=1e-6)


def test_class_balanced_weights_hand_computed():
    # beta 0.9: w = 0.1 / (1 - 0.9^n); 0.9^10 = 0.3486784401, 0.9^1 = 0.9.
    raw = np.array([0.1 / (1 - 0.3486784401), 0.1 / 0.1])
    np.testing.assert_allclose(losses.class_balanced_weights([10, 1], 0.9), raw / raw.sum() * 2, rtol=1e-6)
    np.testing.assert_allclose(losses.class_balanced_weights([10, 1], 0.9), [0.2661976, 1.7338024], rtol=1e-6)
    np.testing.assert_array_equal(losses.class_balanced_weights([5, 50, 500], 0.0), [1, 1, 1])
    # beta -> 1 approaches inverse frequency: 1/n normalised, [100, 10, 1] -> [1, 10, 100] * 3/111.
    np.testing.assert_allclose(losses.class_balanced_weights([100, 10, 1], 1 - 1e-9),
                               np.array([1, 10, 100]) * 3 / 111, rtol=1e-5)
    assert losses.class_balanced_weights([3, 7, 11, 13], 0.99).sum() == pytest.approx(4)


@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_class_balanced_loss_is_weighted_ce_or_focal(gamma):
    counts, logits, labels = [10, 1, 4, 2], _logits(1), np.array([0, 1, 2, 3, 1, 0])
    weights = losses.class_balanced_weights(counts, 0.9)
    base = losses.focal(gamma)(labels, logits).numpy()
    values = losses.make_loss("class_balanced", counts, beta=0.9, gamma=gamma)(labels, logits).numpy()
    np.testing.assert_allclose(values, base * weights[labels], rtol=1e-6)


def test_logit_adjusted_hand_computed():
    # Counts [3, 1]: prior [3/4, 1/4]; zero logits become [log 3/4, log 1/4].
    values = losses.logit_adjusted([3, 1], tau=1.0)([0, 1], np.zeros((2, 2), np.float32)).numpy()
    np.testing.assert_allclose(values, [-math.log(0.75), -math.log(0.25)], rtol=1e-6)
    # tau 0 is plain cross-entropy.
    logits, labels = _logits(2), np.array([0, 1, 2, 3, 3, 1])
    np.testing.assert_allclose(losses.logit_adjusted([9, 5, 2, 1], tau=0.0)(labels, logits).numpy(),
                               _keras_ce(labels, logits), rtol=1e-6)


def test_balanced_softmax_equals_logit_adjusted_tau_one_and_ce_on_offset_logits():
    counts, logits, labels = [500, 60, 7, 1], _logits(3), np.array([0, 1, 2, 3, 2, 3])
    balanced = losses.balanced_softmax(counts)(labels, logits).numpy()
    np.testing.assert_allclose(balanced, losses.logit_adjusted(counts, 1.0)(labels, logits).numpy(),
                               rtol=1e-5)
    np.testing.assert_allclose(balanced, _keras_ce(labels, logits + np.log(counts).astype(np.float32)),
                               rtol=1e-5)


def test_ldam_margins_hand_computed():
    # n^-1/4 of [16, 1, 81] = [1/2, 1, 1/3]; the largest scaled to 0.5.
    np.testing.assert_allclose(losses.ldam_margins([16, 1, 81], 0.5), [0.25, 0.5, 1 / 6], rtol=1e-6)
    margins = losses.ldam_margins([5000, 1200, 50], 0.3)
    assert margins.max() == pytest.approx(0.3)
    np.testing.assert_allclose(margins * np.array([5000, 1200, 50]) ** 0.25, 0.3 * 50 ** 0.25, rtol=1e-6)


@pytest.mark.parametrize("spread", [1.0, 20.0])
def test_ldam_equals_ce_on_margin_shifted_scaled_logits(spread):
    # The LDAM-DRW reference: output = where(onehot, x - m_y, x); CE(s * output).
    counts, labels = [100, 20, 5, 1], np.array([0, 1, 2, 3, 0, 3])
    logits = _logits(4, spread=spread)
    margins = losses.ldam_margins(counts, 0.5)
    shifted = logits - np.eye(4, dtype=np.float32)[labels] * margins[labels][:, None]
    expected = _keras_ce(labels, 30.0 * shifted)
    values = losses.ldam(counts, 0.5, 30.0)(labels, logits).numpy()
    np.testing.assert_allclose(values, expected, rtol=1e-4, atol=1e-6)
    assert (values >= 0).all()


def test_ldam_confident_examples_lose_nothing_and_stay_non_negative():
    # p_y ~ 1 even after the margin: the loss is ~0 and never negative (no cancellation).
    logits = np.array([[1.0, -1.0, -1.0], [-1.0, 1.0, -1.0]], np.float32)
    values = losses.ldam([10, 10, 10], 0.5, 30.0)([0, 1], logits).numpy()
    # CE on 30 * [0.5, -1, -1]: log(1 + 2 exp(-45)).
    assert (values >= 0).all()
    np.testing.assert_allclose(values, [2 * math.exp(-45)] * 2, rtol=1e-3)


@pytest.mark.parametrize("name,params", [("cross_entropy", {}), ("focal", {"gamma": 0.5}),
                                         ("class_balanced", {"beta": 0.99, "gamma": 2.0}),
                                         ("logit_adjusted", {"tau": 1.5}), ("balanced_softmax", {}),
                                         ("ldam", {})])
def test_every_loss_casts_low_precision_logits_and_has_finite_gradients(name, params):
    loss = losses.make_loss(name, [50, 10, 1], **params)
    # A very confident, correct example stresses focal's (1 - p)^gamma at p = 1.
    logits32 = np.array([[40.0, -40.0, 0.0], [0.2, 0.1, -0.3], [0.9, -0.9, 0.99]], np.float32)
    labels = np.array([0, 2, 1])
    variable = tf.Variable(tf.cast(logits32, tf.bfloat16))
    with tf.GradientTape() as tape:
        tape.watch(variable)  # Tapes watch bfloat16 variables only when told to.
        values = loss(labels, variable)
        total = tf.reduce_sum(values)
    assert values.dtype == tf.float32 and values.shape == (3,)
    np.testing.assert_allclose(values.numpy(), loss(labels, tf.cast(variable, tf.float32)).numpy(), rtol=1e-6)
    gradient = tape.gradient(total, variable)
    assert np.isfinite(tf.cast(gradient, tf.float32).numpy()).all()
    # The same in a compiled graph (--jit_compile).
    compiled = tf.function(lambda y, z: loss(y, z), jit_compile=True)
    np.testing.assert_allclose(compiled(labels, logits32).numpy(), loss(labels, logits32).numpy(), rtol=1e-5)


@pytest.mark.parametrize("name", ["focal", "ldam", "class_balanced"])
def test_soft_targets_mix_the_two_labels_losses(name):
    loss = losses.make_loss(name, [30, 5, 2])
    logits = _logits(5, (4, 3))
    a, b, lam = np.array([0, 1, 2, 0]), np.array([1, 1, 0, 2]), 0.3
    targets = lam * np.eye(3)[a] + (1 - lam) * np.eye(3)[b]
    expected = lam * loss(a, logits).numpy() + (1 - lam) * loss(b, logits).numpy()
    np.testing.assert_allclose(loss(targets.astype(np.float32), logits).numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(loss(np.eye(3, dtype=np.float32)[a], logits).numpy(), loss(a, logits).numpy(),
                               rtol=1e-6)


def test_call_time_class_weights_multiply():
    logits, labels = _logits(6, (3, 3)), np.array([2, 0, 1])
    weights = np.array([1.0, 2.0, 0.5], np.float32)
    plain = losses.cross_entropy()(labels, logits).numpy()
    np.testing.assert_allclose(losses.cross_entropy()(labels, logits, class_weights=weights).numpy(),
                               plain * weights[labels], rtol=1e-6)
    cb = losses.class_balanced([4, 2, 1], 0.9)
    np.testing.assert_allclose(cb(labels, logits, class_weights=weights).numpy(),
                               cb(labels, logits).numpy() * weights[labels], rtol=1e-6)


@pytest.mark.parametrize("call,message", [
    (lambda: losses.make_loss("focal", gamma=-1.0), r"gamma must be a finite number >= 0 \(0 gives cross-entropy\), got -1.0"),
    (lambda: losses.make_loss("class_balanced", [3, 1], beta=1.0), r"beta must be in \[0, 1\), got 1.0"),
    (lambda: losses.make_loss("class_balanced", [3, 1], beta=-0.1), r"beta must be in \[0, 1\), got -0.1"),
    (lambda: losses.make_loss("logit_adjusted", tau=1.0), r"'logit_adjusted' \(tau=1.0\) needs the per-class"),
    (lambda: losses.make_loss("balanced_softmax", [4, 0, 2]), r"counts\[1\]=0"),
    (lambda: losses.make_loss("ldam", [4, 2], max_margin=0.0), "max_margin must be > 0, got 0.0"),
    (lambda: losses.make_loss("ldam", [4, 2], scale=-30), "scale must be > 0, got -30"),
    (lambda: losses.make_loss("focal_loss"), "loss 'focal_loss' is not valid; allowed: cross_entropy, focal"),
    (lambda: losses.make_loss("focal", tau=1.0), "loss 'focal' takes no parameter 'tau'; allowed: gamma"),
    (lambda: losses.class_balanced_weights([5], 0.9), "at least two classes"),
    (lambda: losses.ldam([5, 2, 1])([0], np.zeros((1, 2), np.float32)), "made for 3 classes .* have 2"),
])
def test_bad_values_raise_naming_the_parameter(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_drw_switches_exactly_at_the_start_epoch():
    counts = [100, 10, 1]
    for epoch in range(5):
        assert losses.drw_weights(epoch, 5, counts) is None
    cb = losses.class_balanced_weights(counts, 0.9999)
    expected = (cb * 111 / np.dot(counts, cb)).astype(np.float32)  # Mean weight of an example: 1.
    for epoch in (5, 6, 100):
        np.testing.assert_allclose(losses.drw_weights(epoch, 5, counts), expected, rtol=1e-6)
    cb = losses.class_balanced_weights(counts, 0.9)
    np.testing.assert_allclose(losses.drw_weights(0, 0, counts, 0.9), cb * 111 / np.dot(counts, cb), rtol=1e-6)
    with pytest.raises(ValueError, match="beta must be in"):
        losses.drw_weights(0, 5, counts, 1.5)  # Checked before the switch too.


def test_normed_dense_gives_cosines_and_round_trips_its_config():
    layer = losses.NormedDense(3, seed=7)
    features = _logits(8, (5, 4))
    outputs = layer(features).numpy()
    kernel = layer.kernel.numpy()
    expected = (features / np.linalg.norm(features, axis=1, keepdims=True)) @ \
        (kernel / np.linalg.norm(kernel, axis=0, keepdims=True))
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-6)
    assert np.abs(outputs).max() <= 1 + 1e-6
    # Scaling the input changes nothing (only directions count).
    np.testing.assert_allclose(layer(10 * features).numpy(), outputs, rtol=1e-5, atol=1e-6)
    clone = losses.NormedDense.from_config(layer.get_config())
    assert (clone.units, clone.seed, clone.scale) == (3, 7, 1.0)
    # The same seed draws the same kernel, so the clone computes the same cosines.
    np.testing.assert_allclose(clone(features).numpy(), outputs, rtol=1e-5, atol=1e-6)


def test_ldam_on_scaled_normed_logits_equals_ldam_on_cosines():
    features, labels, counts = _logits(10, (6, 5)), np.array([0, 1, 2, 2, 1, 0]), [90, 9, 1]
    cosine, scaled = losses.NormedDense(3, seed=3), losses.NormedDense(3, seed=3, scale=30.0)
    np.testing.assert_allclose(scaled(features).numpy(), 30 * cosine(features).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        losses.make_loss("ldam", counts, scaled_logits=True)(labels, scaled(features)).numpy(),
        losses.make_loss("ldam", counts)(labels, cosine(features)).numpy(), rtol=1e-4, atol=1e-6)
    assert losses.NormedDense.from_config(scaled.get_config()).scale == 30.0
    with pytest.raises(ValueError, match="scale must be > 0, got 0"):
        losses.NormedDense(3, scale=0)


def test_normed_dense_under_mixed_precision_returns_float32():
    layer = losses.NormedDense(2, seed=0, dtype="mixed_bfloat16")
    outputs = layer(tf.ones([2, 3], tf.bfloat16))
    assert outputs.dtype == tf.float32 and layer.kernel.dtype == "float32"
    with pytest.raises(ValueError, match="units must be >= 1, got 0"):
        losses.NormedDense(0)


MIRRORED_SCRIPT = """
import json
from augbal_tf import distribution
distribution.configure_cpu_devices(2)
import numpy as np, tensorflow as tf
from augbal_tf import losses
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
rng = np.random.default_rng(0)
features = rng.normal(size=(8, 5)).astype(np.float32)
labels = np.array([0, 1, 2, 0, 0, 1, 2, 0])
counts, weights = [40, 8, 2], np.array([0.5, 1.0, 2.0], np.float32)
with strategy.scope():
    kernel = tf.Variable(rng.normal(size=(5, 3)).astype(np.float32))
dataset = strategy.experimental_distribute_dataset(
    tf.data.Dataset.from_tensors((features, labels)))
images, batch_labels = next(iter(dataset))
result = {}
for name in losses.LOSSES:
    loss = losses.make_loss(name, counts)

    def replica_step(x, y):
        with tf.GradientTape() as tape:
            per_example = loss(y, tf.matmul(x, kernel), class_weights=weights)
            total = tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, tf.cast(tf.shape(y)[0], tf.float32))
            value = tf.reduce_sum(per_example) / total
        return value, tape.gradient(value, kernel)

    value, gradient = strategy.run(tf.function(replica_step), (images, batch_labels))
    value = strategy.reduce("SUM", value, axis=None)
    gradient = strategy.reduce("SUM", gradient, axis=None)
    with tf.GradientTape() as tape:
        single = tf.reduce_mean(loss(labels, tf.matmul(features, kernel), class_weights=weights))
    result[name] = [float(value), float(single), float(tf.reduce_max(tf.abs(
        gradient - tape.gradient(single, kernel)))), strategy.num_replicas_in_sync]
print(json.dumps(result))
"""


def test_losses_averaged_over_the_global_batch_under_mirrored_match_one_device():
    result = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(values) == set(losses.LOSSES)
    for name, (mirrored, single, gradient_gap, replicas) in values.items():
        assert replicas == 2
        assert mirrored == pytest.approx(single, rel=1e-5), name
        assert gradient_gap < 1e-5, name


def test_ldam_focal_and_drw_weights_match_the_ldam_drw_pytorch_reference():
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    counts, logits, labels = [500, 120, 30, 5], _logits(9, (8, 4), spread=1.0), np.array([0, 1, 2, 3, 3, 2, 1, 0])
    x, target = torch.tensor(logits), torch.tensor(labels)

    # kaidic/LDAM-DRW losses.py LDAMLoss.forward (CUDA tensors made CPU ones), with DRW's weights.
    m_list = 1.0 / np.sqrt(np.sqrt(counts))
    m_list = torch.tensor(m_list * (0.5 / np.max(m_list)), dtype=torch.float32)
    beta = 0.9999
    per_cls_weights = (1.0 - beta) / np.array(1.0 - np.power(beta, counts))
    per_cls_weights = per_cls_weights / np.sum(per_cls_weights) * len(counts)
    weight = torch.tensor(per_cls_weights, dtype=torch.float32)
    index = torch.zeros_like(x, dtype=torch.uint8)
    index.scatter_(1, target.view(-1, 1), 1)
    batch_m = torch.matmul(m_list[None, :], index.float().transpose(0, 1)).view((-1, 1))
    output = torch.where(index.bool(), x - batch_m, x)
    reference = functional.cross_entropy(30 * output, target, weight=weight).item()

    weights = losses.drw_weights(160, 160, counts)
    # The same weights up to the scale that makes an example's mean weight 1.
    np.testing.assert_allclose(weights, per_cls_weights * sum(counts) / np.dot(counts, per_cls_weights), rtol=1e-6)
    per_example = losses.ldam(counts, 0.5, 30.0)(labels, logits, class_weights=weights).numpy()
    # PyTorch's weighted mean divides by the batch's summed weights (any scale of the weights).
    assert per_example.sum() / weights[labels].sum() == pytest.approx(reference, rel=1e-5)

    # FocalLoss(gamma=2) without weights: the mean of (1 - p) ** gamma * CE.
    ce = functional.cross_entropy(x, target, reduction="none")
    reference_focal = ((1 - torch.exp(-ce)) ** 2 * ce).mean().item()
    assert float(tf.reduce_mean(losses.focal(2.0)(labels, logits))) == pytest.approx(reference_focal, rel=1e-5)


def test_drw_loss_keeps_the_reference_scale_on_cifar10_lt():
    """The DRW normalisation decision (losses docstring): CIFAR-10-LT IF 100, beta 0.9999."""
    counts = np.array([int(5000 * 0.01 ** (c / 9)) for c in range(10)])
    assert counts.sum() == 12406
    cb = losses.class_balanced_weights(counts, 0.9999)
    # Per-batch-size normalisation of Cui's weights: the reference's loss times the mean weight.
    assert np.dot(counts, cb) / counts.sum() == pytest.approx(0.171, abs=5e-4)  # ~5.8x smaller
    weights = losses.drw_weights(160, 160, counts)
    assert np.dot(counts, weights) / counts.sum() == pytest.approx(1.0, rel=1e-6)
    # A batch with the split's class mix: our sum / batch size equals PyTorch's weighted mean.
    labels = np.repeat(np.arange(10), counts)
    per_example = losses.cross_entropy()(labels, _logits(3, (labels.size, 10), spread=2.0), class_weights=weights)
    per_example = per_example.numpy()
    assert per_example.sum() / labels.size == pytest.approx(per_example.sum() / weights[labels].sum(), rel=1e-5)
    plain = losses.cross_entropy()(labels, _logits(3, (labels.size, 10), spread=2.0), class_weights=cb).numpy()
    assert plain.sum() / labels.size == pytest.approx(0.171 * plain.sum() / cb[labels].sum(), rel=5e-3)
