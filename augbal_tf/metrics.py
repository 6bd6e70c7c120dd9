"""Classification metrics shared by training (`metrics.json`) and evaluation.

Pure numpy, so the numbers in a run's `metrics.json` and those written by
`python -m augbal_tf.evaluate` come from the same code.
"""

from collections.abc import Sequence

import numpy as np

# Liu et al. 2019 (OLTR): many-shot > 100 training images, medium 20-100, few < 20.
MANY_SHOT_THRESHOLD, FEW_SHOT_THRESHOLD = 100, 20
# The largest class of CIFAR-100-LT (IF 100), the smallest benchmark the split is
# reported on; thresholds shrink in proportion on datasets whose largest class is smaller.
SHOT_REFERENCE_MAX = 500
ECE_BINS = 15


def classification_metrics(y_true, y_pred, class_names: Sequence[str],
                           probabilities=None, train_counts=None,
                           many_threshold: float = MANY_SHOT_THRESHOLD,
                           few_threshold: float = FEW_SHOT_THRESHOLD) -> dict:
    """Computes the per-split metrics object.

    Precision of a class never predicted and recall of a class absent from
    `y_true` are 0 (as scikit-learn's `zero_division=0`); balanced accuracy is
    the mean recall over the classes present in `y_true`.

    Args:
      y_true: int labels [N], values in [0, len(class_names)).
      y_pred: predicted int labels [N], same range.
      class_names: class names in label order (at least two, unique).
      probabilities: optional float [N, len(class_names)] class probabilities;
        with two classes they give `roc_auc` (class 1 is the positive class);
        with any number, `expected_calibration_error`.
      train_counts: optional per-class training counts [len(class_names)] of
        the split the model was trained on; they give `shot_accuracy`.
      many_threshold, few_threshold: `shot_accuracy`'s thresholds before
        scaling (see `shot_thresholds`).

    Returns:
      A JSON-able dict: `num_examples`, `accuracy`, `balanced_accuracy`,
      `macro_f1`, `per_class` {name: {precision, recall, f1, support}},
      `confusion_matrix` (list of lists, rows = true class, columns =
      predicted class), `roc_auc` (float; None without probabilities, with
      more than two classes, or when `y_true` holds only one class),
      `expected_calibration_error` (None without probabilities) and
      `shot_accuracy` (None without train_counts; else `shot_accuracy()`'s dict).

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

    roc_auc = ece = None
    if probabilities is not None:
        probabilities = _probabilities(probabilities, y_true.shape[0], num_classes)
        if num_classes == 2:
            roc_auc = binary_roc_auc(y_true == 1, probabilities[:, 1])
        ece = expected_calibration_error(y_true, probabilities)
    shots = None
    if train_counts is not None:
        shots = shot_accuracy(recall, support, train_counts, many_threshold, few_threshold)

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
        "expected_calibration_error": ece,
        "shot_accuracy": shots,
    }


def shot_thresholds(train_counts, many_threshold: float = MANY_SHOT_THRESHOLD,
                    few_threshold: float = FEW_SHOT_THRESHOLD,
                    reference_max: float = SHOT_REFERENCE_MAX) -> tuple[float, float]:
    """(many, few) thresholds scaled to a dataset: times min(1, max(train_counts) / reference_max).

    The literature's thresholds (> 100 many, < 20 few) assume a head class of at
    least 500 images (CIFAR-100-LT; ImageNet-LT 1280, Places-LT 4980). On a smaller
    dataset every class would be "few"; scaling both thresholds by n_max / 500 keeps
    the split at the same fractions of the head class. Datasets with n_max >= 500
    use the thresholds unchanged.

    Raises:
      ValueError: unless 0 <= few_threshold <= many_threshold and reference_max > 0.
    """
    if not 0 <= few_threshold <= many_threshold:
        raise ValueError(f"shot thresholds need 0 <= few_threshold <= many_threshold, got "
                         f"few_threshold={few_threshold!r}, many_threshold={many_threshold!r}")
    if not reference_max > 0:
        raise ValueError(f"reference_max must be > 0, got {reference_max!r}")
    largest = float(np.max(np.asarray(train_counts, dtype=np.float64)))
    scale = min(1.0, largest / reference_max)
    return float(many_threshold * scale), float(few_threshold * scale)


def shot_accuracy(recall, support, train_counts, many_threshold: float = MANY_SHOT_THRESHOLD,
                  few_threshold: float = FEW_SHOT_THRESHOLD,
                  reference_max: float = SHOT_REFERENCE_MAX) -> dict:
    """Many/medium/few-shot accuracy: mean per-class recall over each group (as OLTR's `shot_acc`).

    A class is many-shot when its training count > many, few-shot when < few, else
    medium, with the thresholds of `shot_thresholds`. Classes absent from the
    evaluated split (support 0) are left out of the means.

    Args:
      recall: per-class recall [C] on the evaluated split.
      support: per-class example counts [C] of the evaluated split.
      train_counts: per-class training counts [C].

    Returns:
      {"many", "medium", "few"}: mean recall or None for an empty group;
      "many_classes"/"medium_classes"/"few_classes": class indices of each group;
      "many_threshold", "few_threshold": the thresholds used (after scaling).

    Raises:
      ValueError: on train_counts of the wrong length or negative, or bad thresholds.
    """
    recall, support = np.asarray(recall, np.float64), np.asarray(support)
    counts = np.asarray(train_counts, dtype=np.float64)
    if counts.shape != recall.shape:
        raise ValueError(f"train_counts must have one entry per class ({recall.shape[0]}), got shape "
                         f"{counts.shape}")
    if not np.isfinite(counts).all() or (counts < 0).any():
        raise ValueError(f"train_counts must be finite and >= 0, got {counts.tolist()}")
    many, few = shot_thresholds(counts, many_threshold, few_threshold, reference_max)
    groups = {"many": counts > many, "few": counts < few}
    groups["medium"] = ~groups["many"] & ~groups["few"]
    result = {}
    for name in ("many", "medium", "few"):
        members = groups[name] & (support > 0)
        result[name] = float(recall[members].mean()) if members.any() else None
        result[f"{name}_classes"] = np.flatnonzero(groups[name]).tolist()
    result.update(many_threshold=many, few_threshold=few)
    return result


def expected_calibration_error(y_true, probabilities, num_bins: int = ECE_BINS) -> float:
    """ECE of the top-1 confidence over `num_bins` equal-width bins (Guo et al. 2017).

    sum over bins b of |B_b| / N * |accuracy(B_b) - mean confidence(B_b)|, bin b
    holding confidences in (b/num_bins, (b+1)/num_bins] (the first bin also takes 0).
    The predicted class is the argmax of `probabilities` (first on ties).

    Args:
      y_true: int labels [N].
      probabilities: float [N, C] class probabilities.
      num_bins: >= 1.

    Raises:
      ValueError: on mismatched shapes, non-finite probabilities or num_bins < 1.
    """
    if num_bins < 1:
        raise ValueError(f"num_bins must be >= 1, got {num_bins}")
    probabilities = np.asarray(probabilities, dtype=np.float64)
    y_true = np.asarray(y_true)
    if probabilities.ndim != 2 or probabilities.shape[0] != y_true.shape[0] or y_true.size == 0:
        raise ValueError(f"probabilities must be [N, C] with N = len(y_true) = {y_true.shape[0]} > 0, "
                         f"got shape {probabilities.shape}")
    if not np.isfinite(probabilities).all():
        raise ValueError("probabilities hold NaN or infinite values")
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == y_true
    bins = np.clip(np.ceil(confidence * num_bins).astype(np.int64) - 1, 0, num_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        members = bins == b
        total += members.sum() * abs(correct[members].mean() - confidence[members].mean())
    return float(total / y_true.size)


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
