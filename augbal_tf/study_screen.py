"""Cheap screening of augmentation candidates by affinity and diversity.

Definitions (Gontijo-Lopes, Smullin, Cubuk & Dyer 2020, "Affinity and Diversity:
Quantifying Mechanisms of Data Augmentation", arXiv:2002.08973, section 3):

* affinity = accuracy on augmented validation images / accuracy on clean validation
  images, both of one model trained on clean data (the paper's ratio form; 1 means
  the augmentation stays in distribution, lower means more shift);
* diversity = final training loss on augmented training data / final training loss on
  clean training data (the paper's ratio of training losses; higher means the
  augmented data is harder to fit).

The paper finds the best augmentations combine high affinity and high diversity.
Screening rule (`screen`): standardise each measure over the candidates
(z = (x - mean) / sd, ddof 0; a constant measure scores 0), score = z_affinity +
z_diversity, keep the K highest scores (ties broken by name).
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")  # Headless: the study runs on servers and in CI.
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


# Scores are compared to this many decimals (`ranked`).
SCORE_DECIMALS = 9


def affinity(augmented_accuracy: float, clean_accuracy: float) -> float:
    """Affinity as a ratio: augmented-validation / clean-validation accuracy.

    Raises:
      ValueError: if clean_accuracy is not > 0.
    """
    if not clean_accuracy > 0:
        raise ValueError(f"clean_accuracy={clean_accuracy!r} is invalid; allowed: > 0")
    return float(augmented_accuracy) / float(clean_accuracy)


def diversity(augmented_train_loss: float, clean_train_loss: float) -> float:
    """Diversity as a ratio: final training loss on augmented / on clean data.

    Raises:
      ValueError: if clean_train_loss is not > 0.
    """
    if not clean_train_loss > 0:
        raise ValueError(f"clean_train_loss={clean_train_loss!r} is invalid; allowed: > 0")
    return float(augmented_train_loss) / float(clean_train_loss)


def _standardised(values: np.ndarray) -> np.ndarray:
    sd = values.std()
    return np.zeros_like(values) if sd == 0 else (values - values.mean()) / sd


def scores(candidates: Mapping[str, tuple[float, float]]) -> dict[str, float]:
    """{name: z_affinity + z_diversity} from {name: (affinity, diversity)}."""
    names = list(candidates)
    values = np.array([candidates[n] for n in names], dtype=np.float64).reshape(-1, 2)
    total = _standardised(values[:, 0]) + _standardised(values[:, 1])
    return dict(zip(names, (float(s) for s in total)))


def screen(candidates: Mapping[str, tuple[float, float]], k: int) -> list[str]:
    """The `k` candidates with the highest score (see module docstring), best first.

    Raises:
      ValueError: if k < 1 or a measure is not finite.
    """
    if k < 1:
        raise ValueError(f"k={k!r} is invalid; allowed: an integer >= 1")
    for name, pair in candidates.items():
        if not all(math.isfinite(v) for v in pair):
            raise ValueError(f"candidate {name!r} has non-finite measures {pair!r}")
    return ranked(candidates)[:k]


def ranked(candidates: Mapping[str, tuple[float, float]]) -> list[str]:
    """Every candidate, best score first (ties by name).

    Scores equal up to rounding count as ties: with two candidates the z-scores are
    +-1, so the sums are 0 up to ~1e-15 and the float noise must not pick the winner.
    """
    s = scores(candidates)
    return sorted(s, key=lambda n: (-round(s[n], SCORE_DECIMALS), n))


def plot_screen(candidates: Mapping[str, tuple[float, float]], k: int,
                path: str | pathlib.Path, title: str = "augmentation screening") -> None:
    """Affinity/diversity scatter, every candidate labelled, the kept ones marked.

    The cut is drawn as the line z_affinity + z_diversity = (K-th best score).
    """
    kept = set(screen(candidates, k))
    s = scores(candidates)
    names = list(candidates)
    values = np.array([candidates[n] for n in names], dtype=np.float64).reshape(-1, 2)
    fig, ax = plt.subplots(figsize=(7, 5.5), layout="constrained")
    for (a, d), name in zip(values, names):
        chosen = name in kept
        ax.scatter([a], [d], color="tab:green" if chosen else "tab:gray",
                   marker="o" if chosen else "x")
        ax.annotate(name, (a, d), fontsize=7, xytext=(3, 3), textcoords="offset points")
    sd_a, sd_d = values[:, 0].std(), values[:, 1].std()
    if sd_a > 0 and sd_d > 0 and len(kept) < len(names):
        cut = sorted(s.values(), reverse=True)[k - 1]
        xs = np.linspace(values[:, 0].min(), values[:, 0].max(), 50)
        # z_a + z_d = cut  =>  d = mean_d + sd_d * (cut - (a - mean_a) / sd_a)
        ys = values[:, 1].mean() + sd_d * (cut - (xs - values[:, 0].mean()) / sd_a)
        ax.plot(xs, ys, "--", color="tab:red", label=f"cut: top {k} by z_aff + z_div")
        ax.legend(fontsize=8)
    ax.set_xlabel("affinity (aug. val acc / clean val acc)")
    ax.set_ylabel("diversity (aug. train loss / clean train loss)")
    ax.set_title(f"{title}: kept {len(kept)} of {len(names)}", fontsize=9)
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
