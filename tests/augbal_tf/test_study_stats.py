"""Tests of the study statistics on hand-made results (no training involved)."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from augbal_tf import study_stats

UNBALANCED = [0.70, 0.72, 0.68]

# Paired differences from the unbalanced baseline, per cell, seeds 0, 1, 2.
DIFFERENCES = {
    "baseline:balanced": [0.20, 0.19, 0.21],
    "aug:Strong": [0.10, 0.12, 0.11],
    "aug:Harmful": [-0.05, -0.06, -0.055],
    "aug:Noisy": [0.02, -0.03, 0.01],
    # Uncorrected p ~ 0.034 < 0.05, but not significant after Holm over 5 tests.
    "aug:Borderline": [0.025, 0.05, 0.04],
}


def _results(ratio="4", differences=None, unbalanced=None, two_seed_cell=True):
    differences = DIFFERENCES if differences is None else differences
    unbalanced = UNBALANCED if unbalanced is None else unbalanced
    rows = [{"ratio": ratio, "cell": "baseline:unbalanced", "seed": seed,
             "test_balanced_accuracy": value} for seed, value in enumerate(unbalanced)]
    for cell, diffs in differences.items():
        rows += [{"ratio": ratio, "cell": cell, "seed": seed,
                  "test_balanced_accuracy": unbalanced[seed] + d} for seed, d in enumerate(diffs)]
    if two_seed_cell:
        rows += [{"ratio": ratio, "cell": "aug:TwoSeeds", "seed": seed,
                  "test_balanced_accuracy": unbalanced[seed] + 0.2} for seed in (0, 1)]
    return pd.DataFrame(rows)


def _row(summary, cell, ratio="4"):
    match = summary[(summary["cell"] == cell) & (summary["ratio"] == ratio)]
    assert len(match) == 1, (cell, ratio)
    return match.iloc[0]


def test_t_interval_matches_scipy_ttest():
    diffs = [0.1, 0.2, 0.15, 0.05]
    mean, low, high, p_value = study_stats.t_interval(diffs, confidence=0.95)
    reference = stats.ttest_1samp(diffs, 0.0)
    interval = reference.confidence_interval(0.95)
    assert mean == pytest.approx(np.mean(diffs))
    assert (low, high) == pytest.approx((interval.low, interval.high))
    assert p_value == pytest.approx(reference.pvalue)


def test_t_interval_needs_three_seeds():
    mean, low, high, p_value = study_stats.t_interval([0.1, 0.3])
    assert mean == pytest.approx(0.2)
    assert math.isnan(low) and math.isnan(high) and math.isnan(p_value)


def test_t_interval_with_identical_differences_is_exact():
    # 0.8 - 0.7 and 0.9 - 0.8 differ in the last bits; they must count as equal.
    diffs = [0.8 - 0.7, 0.9 - 0.8, 0.6 - 0.5]
    mean, low, high, p_value = study_stats.t_interval(diffs)
    assert low == high == pytest.approx(0.1)
    assert p_value == 0.0
    assert study_stats.t_interval([0.0, 0.0, 0.0])[3] == 1.0


def test_t_interval_rejects_bad_confidence():
    with pytest.raises(ValueError, match="confidence=1.5"):
        study_stats.t_interval([0.1, 0.2, 0.3], confidence=1.5)


def test_holm_adjusts_step_down_and_ignores_nan():
    adjusted = study_stats.holm([0.01, 0.04, math.nan, 0.03, 0.005])
    # m = 4 valid p-values: 0.005*4, 0.01*3, max(0.03*2, 0.03), max(0.04*1, 0.06).
    expected = [0.03, 0.06, math.nan, 0.06, 0.02]
    np.testing.assert_allclose(adjusted, expected, equal_nan=True)
    assert study_stats.holm([0.9, 0.8]).tolist() == [1.0, 1.0]


def test_gap_fraction():
    assert study_stats.gap_fraction(0.8, 0.7, 0.9) == pytest.approx(0.5)
    assert study_stats.gap_fraction(0.6, 0.7, 0.9) == pytest.approx(-0.5)
    assert math.isnan(study_stats.gap_fraction(0.8, 0.7, 0.7))
    assert math.isnan(study_stats.gap_fraction(0.8, 0.75, 0.7))
    assert math.isnan(study_stats.gap_fraction(0.8, 0.7, math.nan))


@pytest.mark.parametrize("n_seeds, mean, p_holm, expected", [
    (3, 0.1, 0.01, "effective"),
    (3, -0.1, 0.01, "ineffective"),
    (3, 0.1, 0.05, "neutral"),
    (5, -0.1, 0.2, "neutral"),
    (2, 0.5, 0.0, "undetermined"),
    (3, 0.1, math.nan, "undetermined"),
])
def test_verdict_rule(n_seeds, mean, p_holm, expected):
    assert study_stats.verdict(n_seeds, mean, p_holm, alpha=0.05) == expected


def test_summarize_verdicts_holm_and_gap_on_hand_made_results():
    summary = study_stats.summarize(_results())
    assert list(summary.columns) == list(study_stats.SUMMARY_COLUMNS)
    verdicts = dict(zip(summary["cell"], summary["verdict"]))
    assert verdicts == {
        "baseline:balanced": "effective", "baseline:unbalanced": "reference",
        "aug:Strong": "effective", "aug:Harmful": "ineffective", "aug:Noisy": "neutral",
        "aug:Borderline": "neutral", "aug:TwoSeeds": "undetermined"}
    # Five tests entered the correction (the two-seed cell and the reference did not).
    assert study_stats.comparison_count(summary) == 5
    borderline = _row(summary, "aug:Borderline")
    assert borderline["p_value"] < 0.05 < borderline["p_holm"]

    # Holm's step-down procedure, written out independently.
    tested = summary[summary["p_value"].notna()].sort_values("p_value")
    m = len(tested)
    rejected = set()
    for k, row in enumerate(tested.itertuples()):
        if row.p_value > 0.05 / (m - k):
            break
        rejected.add(row.cell)
    significant = set(summary.loc[summary["verdict"].isin(["effective", "ineffective"]), "cell"])
    assert significant == rejected

    strong = _row(summary, "aug:Strong")
    assert strong["n_seeds"] == 3
    assert strong["mean"] == pytest.approx(np.mean(UNBALANCED) + 0.11)
    assert strong["mean_difference"] == pytest.approx(0.11)
    assert strong["ci_low"] < 0.11 < strong["ci_high"]
    # Gap from seed means: unbalanced 0.70, balanced 0.90.
    assert strong["gap_fraction"] == pytest.approx(0.11 / 0.20)
    assert _row(summary, "baseline:balanced")["gap_fraction"] == pytest.approx(1.0)
    assert _row(summary, "baseline:unbalanced")["gap_fraction"] == pytest.approx(0.0)
    two = _row(summary, "aug:TwoSeeds")
    assert two["n_seeds"] == 2 and math.isnan(two["ci_low"]) and math.isnan(two["p_value"])


def test_summarize_orders_and_ranks_augmentations():
    summary = study_stats.summarize(_results())
    assert summary["cell"].tolist()[:2] == ["baseline:balanced", "baseline:unbalanced"]
    augmentations = summary[summary["kind"] == "augmentation"]
    # TwoSeeds has the largest mean difference (0.2) even though it is undetermined.
    assert augmentations["cell"].tolist() == [
        "aug:TwoSeeds", "aug:Strong", "aug:Borderline", "aug:Noisy", "aug:Harmful"]
    assert augmentations["rank"].tolist() == [1, 2, 3, 4, 5]
    assert summary.loc[summary["kind"] == "baseline", "rank"].isna().all()


def test_gap_fraction_is_na_without_gap_or_for_natural_ratio():
    no_gap = {"baseline:balanced": [-0.01, 0.0, -0.02], "aug:Strong": [0.1, 0.12, 0.11]}
    summary = study_stats.summarize(_results(differences=no_gap, two_seed_cell=False))
    assert summary["gap_fraction"].isna().all()
    natural = study_stats.summarize(_results(ratio="natural", two_seed_cell=False))
    assert natural["gap_fraction"].isna().all()
    assert set(natural["ratio"]) == {"natural"}


def test_unpaired_seeds_are_dropped_and_duplicates_rejected():
    results = _results(two_seed_cell=False)
    # A seed-3 run of one augmentation whose unbalanced baseline never ran.
    extra = pd.DataFrame([{"ratio": "4", "cell": "aug:Strong", "seed": 3,
                           "test_balanced_accuracy": 0.99}])
    summary = study_stats.summarize(pd.concat([results, extra], ignore_index=True))
    assert _row(summary, "aug:Strong")["n_seeds"] == 3
    duplicate = pd.concat([results, results.iloc[[0]]], ignore_index=True)
    with pytest.raises(ValueError, match="more than one run"):
        study_stats.summarize(duplicate)
    with pytest.raises(ValueError, match="lack column"):
        study_stats.summarize(results.drop(columns=["seed"]))


def test_overall_ranking_over_ratios():
    results = pd.concat([
        _results(ratio="2", differences={"aug:A": [0.1, 0.1, 0.1], "aug:B": [0.0, 0.0, 0.0]},
                 two_seed_cell=False),
        _results(ratio="8", differences={"aug:A": [0.0, 0.0, 0.0], "aug:B": [0.3, 0.3, 0.3]},
                 two_seed_cell=False),
    ], ignore_index=True)
    # Ratio labels from numbers or strings are the same ratio.
    results["ratio"] = [8.0 if r == "8" else r for r in results["ratio"]]
    summary = study_stats.summarize(results)
    assert summary["ratio"].tolist()[0] == "2" and summary["ratio"].tolist()[-1] == "8"
    ranking = study_stats.overall_ranking(summary)
    assert ranking["cell"].tolist() == ["aug:B", "aug:A"]
    assert ranking["mean_difference"].tolist() == pytest.approx([0.15, 0.05])
    assert ranking["rank"].tolist() == [1, 2]
    assert ranking["mean_rank"].tolist() == pytest.approx([1.5, 1.5])
    assert ranking.loc[0, "verdicts"] == "2:neutral 8:effective"


def test_ratio_label():
    assert study_stats.ratio_label(8) == "8"
    assert study_stats.ratio_label("2.5") == "2.5"
    assert study_stats.ratio_label(None) == "natural"
    assert study_stats.ratio_label("Natural") == "natural"
    with pytest.raises(ValueError, match="ratio='x'"):
        study_stats.ratio_label("x")
    with pytest.raises(ValueError, match="ratio=0.5"):
        study_stats.ratio_label(0.5)


def test_a_ratio_without_its_unbalanced_baseline_is_a_clear_error():
    # A sharded merge (or a study) whose unbalanced cells all failed: nothing to pair with.
    results = pd.DataFrame({"ratio": ["8"] * 4 + ["20"] * 2,
                            "cell": ["aug:A", "aug:A", "baseline:balanced", "baseline:balanced",
                                     "baseline:unbalanced", "aug:A"],
                            "seed": [0, 1, 0, 1, 0, 0], "test_balanced_accuracy": [0.8, 0.82, 0.9, 0.91, 0.7, 0.75]})
    with pytest.raises(ValueError, match=r"ratio\(s\) 8 have no finished baseline:unbalanced run"):
        study_stats.summarize(results)
