"""Tests of affinity/diversity screening (hand-computed values)."""

import matplotlib.image
import pytest

from augbal_tf import study_screen


def test_measures_are_the_papers_ratios():
    assert study_screen.affinity(0.6, 0.8) == pytest.approx(0.75)
    assert study_screen.diversity(0.9, 0.3) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="clean_accuracy"):
        study_screen.affinity(0.5, 0.0)


def test_screen_keeps_top_k_by_summed_z_scores():
    # Affinity (0.9, 1.0, 0.8) -> z (0, 1.22, -1.22); diversity
    # (1.0, 2.0, 3.0) -> z (-1.22, 0, 1.22). Sums: A -1.22, B 1.22, C 0.
    candidates = {"A": (0.9, 1.0), "B": (1.0, 2.0), "C": (0.8, 3.0)}
    assert study_screen.scores(candidates)["B"] == pytest.approx(1.5 ** 0.5)
    assert study_screen.screen(candidates, 2) == ["B", "C"]
    assert study_screen.screen(candidates, 5) == ["B", "C", "A"]
    with pytest.raises(ValueError, match="k="):
        study_screen.screen(candidates, 0)


def test_plot_writes_png(tmp_path):
    candidates = {"A": (0.9, 1.0), "B": (1.0, 2.0), "C": (0.8, 3.0), "D": (0.95, 1.5)}
    study_screen.plot_screen(candidates, 2, tmp_path / "screen.png")
    image = matplotlib.image.imread(tmp_path / "screen.png")
    assert image.ndim == 3 and image.shape[0] > 100


def test_float_noise_ties_are_broken_by_name():
    # Two candidates: z-scores +-1, sums 0 up to float noise; the name decides.
    candidates = {"HorizontalFlip": (0.9285714285714287, 1.1062959129260521),
                  "GaussNoise": (1.0, 0.967048684933567)}
    assert study_screen.screen(candidates, 1) == ["GaussNoise"]
