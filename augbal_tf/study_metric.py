"""The test metric a study compares and ranks by (`--metric`), declared once.

Each entry names the results.csv column it reads, whether higher is better, and the
words the report uses for it. For a lower-is-better metric (ECE) the paired
difference is the unbalanced baseline's value minus the cell's, so a positive
difference, an `effective` verdict and rank 1 still mean "better" for every metric.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Metric:
    """One comparable test metric: its flag value, results.csv column, direction and report label."""

    name: str
    column: str
    higher_is_better: bool
    label: str

    @property
    def sign(self) -> float:
        """+1 or -1: multiplies (cell - baseline) so that positive means better."""
        return 1.0 if self.higher_is_better else -1.0

    @property
    def orientation(self) -> str:
        """One sentence for the report on how the difference is oriented ("" when higher is better)."""
        if self.higher_is_better:
            return ""
        return (f"Lower {self.label} is better, so the paired difference is the unbalanced baseline's "
                f"{self.label} minus the cell's: positive (and effective) still means better.")

    @property
    def in_words(self) -> str:
        """` in <label>` for a heading, "" for the default (whose reports read as they always have)."""
        return "" if self.name == DEFAULT else f" in {self.label}"

    @property
    def sentence(self) -> str:
        """Names the metric a report compares by (`--metric`), and its orientation."""
        return " ".join(filter(None, (f"Metric: cells are compared, decided and ranked by **{self.label}** "
                                      f"(`--metric={self.name}`).", self.orientation)))


DEFAULT = "balanced_accuracy"
METRICS = {metric.name: metric for metric in (
    Metric("balanced_accuracy", "test_balanced_accuracy", True, "test balanced accuracy"),
    Metric("accuracy", "test_accuracy", True, "test accuracy"),
    Metric("macro_f1", "test_macro_f1", True, "test macro-F1"),
    Metric("minority_recall", "test_minority_recall", True, "test minority recall"),
    Metric("minority_f1", "test_minority_f1", True, "test minority F1"),
    Metric("ece", "test_ece", False, "test expected calibration error"),
    Metric("many_shot_accuracy", "test_many_shot_accuracy", True, "test many-shot accuracy"),
    Metric("medium_shot_accuracy", "test_medium_shot_accuracy", True, "test medium-shot accuracy"),
    Metric("few_shot_accuracy", "test_few_shot_accuracy", True, "test few-shot accuracy"),
)}


def get(name: str) -> Metric:
    """The metric called `name`.

    Raises:
      ValueError: naming the value and the allowed ones.
    """
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"--metric={name!r} is invalid; allowed: {', '.join(METRICS)}") from None
