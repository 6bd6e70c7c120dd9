"""Classification metrics shared by training (`metrics.json`) and evaluation.

Pure numpy, so the numbers in a run's `metrics.json` and those written by
`python -m augbal_tf.evaluate` come from the same code.
"""

from collections.abc import Sequence

import numpy as np


def classification_metrics(y_true, y_pred, class_names: Sequence[str],
                           probabilities=None) -> dict:
    """Computes the per-split metrics object.

    Precision of a class never predicted and recall of a class absent from
    `y_true` are 0 (as scikit-learn's `zero_division=0`); balanced accuracy is
    the mean recall over the classes present in `y_true`.

    Args:
      y_true: int labels [N], values in [0, len(class_names)).
      y_pred: predicted int labels [N], same range.
      class_names: class names in label order (at least two, unique).
      probabilities: optional float [N, len(class_names)] class probabilities;
        with two classes they give `roc_auc` (class 1 is the positive class).

    Returns:
      A JSON-able dict: `num_examples`, `accuracy`, `balanced_accuracy`,
      `macro_f1`, `per_class` {name: {precision, recall, f1, support}},
      `confusion_matrix` (list of lists, rows = true class, columns =
      predicted class) and `roc_auc` (float; None without probabilities, with
      more than two classes, or when `y_true` holds only one class).

    Raises:
      ValueError: on empty or mismatched inputs, labels out of range, or
        probabilities of the wrong shape or not finite.
    """
    class_names = [str(name) for name in class_names]
    num_classes = len(class_names)
    if num_classes < 2 or len(set(class_names)) != num_classes:
        raise ValueError(f"class_names must hold at least two unique names, got {class_names!r}")
    y_true = _labels("y_true", y_true, num_classes)
    y_pred = _labels("y_pred", y_pred, num_classes)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same length, got {y_true.shape[0]} "
                         f"and {y_pred.shape[0]}")
    if y_true.size == 0:
        raise ValueError("y_true is empty: metrics need at least one example")

    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    correct = np.diag(confusion)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    precision = _safe_divide(correct, predicted)
    recall = _safe_divide(correct, support)
    f1 = _safe_divide(2 * precision * recall, precision + recall)

    roc_auc = None
    if probabilities is not None:
        probabilities = _probabilities(probabilities, y_true.shape[0], num_classes)
        if num_classes == 2:
            roc_auc = binary_roc_auc(y_true == 1, probabilities[:, 1])

    return {
        "num_examples": int(y_true.size),
        "accuracy": float(correct.sum() / y_true.size),
        "balanced_accuracy": float(recall[support > 0].mean()),
        "macro_f1": float(f1.mean()),
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]),
                   "f1": float(f1[i]), "support": int(support[i])}
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": confusion.tolist(),
        "roc_auc": roc_auc,
    }


def binary_roc_auc(is_positive, scores) -> float | None:
    """Area under the ROC curve, with tied scores counted as half.

    Computed as the Mann-Whitney U statistic on average ranks, which equals
    the trapezoidal area under the ROC curve including tied scores.

    Args:
      is_positive: bool [N], True for the positive class.
      scores: float [N], higher means more likely positive.

    Returns:
      The AUC in [0, 1], or None when only one class is present (undefined).
    """
    is_positive = np.asarray(is_positive, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    num_positive = int(is_positive.sum())
    num_negative = int(is_positive.size - num_positive)
    if num_positive == 0 or num_negative == 0:
        return None
    ranks = _average_ranks(scores)
    rank_sum = ranks[is_positive].sum()
    u_statistic = rank_sum - num_positive * (num_positive + 1) / 2
    return float(u_statistic / (num_positive * num_negative))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing the mean of the ranks they span."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    # Start index of each run of equal values in sorted order.
    run_starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    run_ends = np.r_[run_starts[1:], values.size]
    run_ranks = (run_starts + 1 + run_ends) / 2  # mean of ranks start+1 .. end
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(run_ranks, run_ends - run_starts)
    return ranks


def _safe_divide(numerator, denominator) -> np.ndarray:
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator),
                     where=denominator != 0)


def _labels(name: str, values, num_classes: int) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer labels, got dtype {array.dtype}")
    array = array.astype(np.int64)
    bad = (array < 0) | (array >= num_classes)
    if bad.any():
        raise ValueError(f"{name} holds label {int(array[bad][0])}; allowed labels are "
                         f"0..{num_classes - 1} for {num_classes} classes")
    return array


def _probabilities(values, num_examples: int, num_classes: int) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (num_examples, num_classes):
        raise ValueError(f"probabilities must have shape ({num_examples}, {num_classes}), "
                         f"got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("probabilities hold NaN or infinite values")
    return array
