"""Tests for augbal_tf.metrics against hand-computed values."""

import json

import numpy as np
import pytest

from augbal_tf import metrics


def test_three_class_metrics_match_hand_computation():
    # Confusion (rows true): a=[2,1,0], b=[0,1,1], c=[0,0,1].
    result = metrics.classification_metrics(
        y_true=[0, 0, 0, 1, 1, 2], y_pred=[0, 1, 0, 1, 2, 2], class_names=["a", "b", "c"])
    assert result["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert result["num_examples"] == 6
    assert result["accuracy"] == pytest.approx(4 / 6)
    assert result["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert result["per_class"]["a"] == pytest.approx(
        {"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert result["per_class"]["b"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert result["per_class"]["c"] == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    assert result["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert result["roc_auc"] is None
    json.dumps(result)  # the object goes to metrics.json as is


def test_absent_and_never_predicted_classes_count_as_zero():
    result = metrics.classification_metrics([0, 0, 1], [0, 1, 1], ["a", "b", "c"])
    assert result["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    # Balanced accuracy averages recall over classes present in y_true only.
    assert result["balanced_accuracy"] == pytest.approx((0.5 + 1.0) / 2)
    assert result["per_class"]["b"]["precision"] == pytest.approx(0.5)


def test_collapsed_model_has_chance_balanced_accuracy():
    # A model that predicts one class everywhere: high accuracy on skewed data, 0.5 balanced.
    result = metrics.classification_metrics([0] * 9 + [1], [0] * 10, ["major", "minor"])
    assert result["accuracy"] == pytest.approx(0.9)
    assert result["balanced_accuracy"] == pytest.approx(0.5)
    assert result["per_class"]["minor"]["precision"] == 0.0


def test_roc_auc_two_classes_hand_computed():
    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.65, 0.35], [0.2, 0.8]])
    result = metrics.classification_metrics([0, 0, 1, 1], [0, 0, 0, 1], ["neg", "pos"],
                                            probabilities=probabilities)
    # Positive-negative pairs ranked correctly: (0.35>0.1), (0.8>0.1), (0.8>0.4); wrong: (0.35<0.4).
    assert result["roc_auc"] == pytest.approx(0.75)


def test_roc_auc_counts_ties_as_half():
    # Pairs (pos, neg): (0.5, 0.5) tie = 0.5, (0.5, 0.2) = 1, (0.9, 0.5) = 1, (0.9, 0.2) = 1.
    assert metrics.binary_roc_auc([False, True, False, True], [0.5, 0.5, 0.2, 0.9]) == \
        pytest.approx(3.5 / 4)
    assert metrics.binary_roc_auc([True, False, True, False], [0.3] * 4) == pytest.approx(0.5)
    assert metrics.binary_roc_auc([True, True, False], [0.1, 0.2, 0.9]) == pytest.approx(0.0)


def test_roc_auc_equals_pairwise_count_with_many_ties():
    rng = np.random.default_rng(3)
    is_positive = rng.random(200) < 0.3
    scores = rng.integers(0, 6, size=200) / 5.0  # six distinct values: many ties
    positives, negatives = scores[is_positive], scores[~is_positive]
    greater = (positives[:, None] > negatives[None, :]).sum()
    equal = (positives[:, None] == negatives[None, :]).sum()
    expected = (greater + 0.5 * equal) / (positives.size * negatives.size)
    assert metrics.binary_roc_auc(is_positive, scores) == pytest.approx(expected, abs=1e-12)


def test_roc_auc_undefined_with_one_class():
    result = metrics.classification_metrics([1, 1], [1, 0], ["neg", "pos"],
                                            probabilities=[[0.2, 0.8], [0.7, 0.3]])
    assert result["roc_auc"] is None


@pytest.mark.parametrize("kwargs, message", [
    (dict(y_true=[0, 3], y_pred=[0, 1]), "y_true holds label 3"),
    (dict(y_true=[0, 1], y_pred=[0, -1]), "y_pred holds label -1"),
    (dict(y_true=[0, 1], y_pred=[0]), "same length"),
    (dict(y_true=[], y_pred=[]), "empty"),
    (dict(y_true=[0.0, 1.0], y_pred=[0, 1]), "integer labels"),
    (dict(y_true=[0, 1], y_pred=[0, 1], probabilities=[[1.0, 0.0]]), r"shape \(2, 2\)"),
    (dict(y_true=[0, 1], y_pred=[0, 1], probabilities=[[np.nan, 1], [0, 1]]), "NaN"),
])
def test_bad_inputs_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        metrics.classification_metrics(class_names=["a", "b"], **kwargs)


def test_class_names_must_be_unique():
    with pytest.raises(ValueError, match="class_names"):
        metrics.classification_metrics([0], [0], ["a", "a"])
