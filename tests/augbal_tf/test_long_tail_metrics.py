"""Tests for the long-tail metrics of augbal_tf.metrics: ECE, many/medium/few-shot accuracy, macro-F1."""

import json
import math

import numpy as np
import pytest

from augbal_tf import metrics

# Five predictions over two classes: (probabilities, label).
# Confidences 0.9 (bin 13, right), 0.95 (bin 14, wrong), 0.62 (bin 9, right),
# 0.7 (bin 10, right), 0.88 (bin 13, wrong); bins are 1/15 wide.
ECE_PROBABILITIES = np.array([[0.9, 0.1], [0.95, 0.05], [0.62, 0.38], [0.3, 0.7], [0.88, 0.12]])
ECE_LABELS = np.array([0, 1, 0, 1, 1])


def test_expected_calibration_error_hand_computed():
    # Bin 13: accuracy 1/2, confidence 0.89 -> 0.39 for 2 examples; bins 14, 9, 10 one each:
    # |0 - 0.95|, |1 - 0.62|, |1 - 0.7|. ECE = (2 * 0.39 + 0.95 + 0.38 + 0.3) / 5.
    assert metrics.expected_calibration_error(ECE_LABELS, ECE_PROBABILITIES) == pytest.approx(2.41 / 5)
    # One bin: |accuracy 3/5 - mean confidence 4.05/5|.
    assert metrics.expected_calibration_error(ECE_LABELS, ECE_PROBABILITIES, num_bins=1) == pytest.approx(0.21)
    # Certain and right: perfectly calibrated.
    assert metrics.expected_calibration_error([0, 1], [[1.0, 0.0], [0.0, 1.0]]) == 0.0


def test_ece_bins_are_closed_on_the_right():
    # Bins of 1/5: 0.6 goes to (0.4, 0.6], 0.61 to (0.6, 0.8]. In one bin the gaps would
    # average out to |1/2 - 0.605| = 0.105; apart they give (|1 - 0.6| + |0 - 0.61|) / 2 = 0.505.
    probabilities = [[0.6, 0.4], [0.61, 0.39]]
    assert metrics.expected_calibration_error([0, 1], probabilities, num_bins=5) == pytest.approx(0.505)


def test_classification_metrics_adds_ece_only_with_probabilities():
    result = metrics.classification_metrics(ECE_LABELS, ECE_PROBABILITIES.argmax(1), ["a", "b"],
                                            probabilities=ECE_PROBABILITIES)
    assert result["expected_calibration_error"] == pytest.approx(2.41 / 5)
    assert metrics.classification_metrics([0, 1], [0, 1], ["a", "b"])["expected_calibration_error"] is None


def test_macro_f1_hand_computed():
    # Class 0: P 1/3, R 1/2, F1 0.4; class 1: P = R = F1 = 2/3; class 2: never right, F1 0.
    result = metrics.classification_metrics([0, 0, 1, 1, 1, 2], [0, 1, 1, 1, 0, 0], ["a", "b", "c"])
    assert result["macro_f1"] == pytest.approx((0.4 + 2 / 3 + 0) / 3)


def _predictions_with_recalls(correct_per_class, per_class=2):
    """Labels with `per_class` test examples per class, the first `correct` of each predicted right."""
    y_true, y_pred = [], []
    num_classes = len(correct_per_class)
    for label, correct in enumerate(correct_per_class):
        for k in range(per_class):
            y_true.append(label)
            y_pred.append(label if k < correct else (label + 1) % num_classes)
    return np.array(y_true), np.array(y_pred)


def test_shot_accuracy_with_the_literature_thresholds():
    # n_max 500: no scaling. Many (> 100): 500, 150; medium (20..100): 100, 50, 20; few (< 20): 19, 5.
    train_counts = [500, 150, 100, 50, 20, 19, 5]
    y_true, y_pred = _predictions_with_recalls([2, 1, 2, 0, 1, 1, 0])  # recalls 1, .5, 1, 0, .5, .5, 0
    result = metrics.classification_metrics(y_true, y_pred, list("abcdefg"), train_counts=train_counts)
    shots = result["shot_accuracy"]
    assert shots["many"] == pytest.approx(0.75)
    assert shots["medium"] == pytest.approx(0.5)
    assert shots["few"] == pytest.approx(0.25)
    assert (shots["many_classes"], shots["medium_classes"], shots["few_classes"]) == ([0, 1], [2, 3, 4], [5, 6])
    assert (shots["many_threshold"], shots["few_threshold"]) == (100.0, 20.0)
    json.dumps(result)
    # The existing keys are untouched by train_counts.
    plain = metrics.classification_metrics(y_true, y_pred, list("abcdefg"))
    assert plain["shot_accuracy"] is None
    assert {key: value for key, value in result.items() if key != "shot_accuracy"} == \
        {key: value for key, value in plain.items() if key != "shot_accuracy"}


def test_shot_thresholds_scale_with_a_small_head_class():
    # n_max 50 is a tenth of CIFAR-100-LT's 500: thresholds 10 and 2.
    assert metrics.shot_thresholds([50, 10, 1]) == pytest.approx((10.0, 2.0))
    shots = metrics.shot_accuracy([1.0, 0.5, 0.0], [4, 4, 4], [50, 10, 1])
    assert (shots["many_classes"], shots["medium_classes"], shots["few_classes"]) == ([0], [1], [2])
    assert (shots["many"], shots["medium"], shots["few"]) == (1.0, 0.5, 0.0)
    # Thresholds as arguments; a larger head class than 500 leaves them as given.
    assert metrics.shot_thresholds([6000, 60], 200, 50) == (200.0, 50.0)


def test_fashion_mnist_lt_if100_groups():
    # The CIFAR-LT profile on Fashion-MNIST (n_max 6000, IF 100): 14,886 images (REMEDIES.md).
    counts = [math.floor(6000 * 100 ** (-c / 9)) for c in range(10)]
    assert sum(counts) == 14886 and counts[-1] == 60
    shots = metrics.shot_accuracy(np.ones(10), np.ones(10), counts)
    # 6000 * 100^(-8/9) = 100.08 floors to 100: medium, with the tail's 60; no few-shot class.
    assert shots["many_classes"] == list(range(8)) and shots["medium_classes"] == [8, 9]
    assert shots["few_classes"] == [] and shots["few"] is None


def test_classes_absent_from_the_evaluated_split_are_left_out():
    shots = metrics.shot_accuracy([1.0, 0.0, 0.5], [3, 0, 2], [500, 400, 10])
    assert shots["many"] == 1.0 and shots["many_classes"] == [0, 1]


@pytest.mark.parametrize("call,message", [
    (lambda: metrics.shot_thresholds([10, 5], 20, 100), "0 <= few_threshold <= many_threshold"),
    (lambda: metrics.shot_accuracy([1.0, 1.0], [1, 1], [5, 5, 5]), r"one entry per class \(2\)"),
    (lambda: metrics.shot_accuracy([1.0, 1.0], [1, 1], [5, -1]), "finite and >= 0"),
    (lambda: metrics.expected_calibration_error([0], [[0.5, 0.5]], num_bins=0), "num_bins must be >= 1"),
    (lambda: metrics.expected_calibration_error([0, 1], [[0.5, 0.5]]), "N = len"),
])
def test_bad_arguments_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()
