"""Tests of the group-sequential design: boundaries, decisions, simulated error and savings."""

import math

import numpy as np
import pytest

from augbal_tf import study_sequential as seq

# Lan-DeMets O'Brien-Fleming-type two-sided alpha = 0.05, equally spaced looks, as
# tabulated by ldbounds / gsDesign (sfLDOF, one-sided 0.025 per side).
PUBLISHED = {
    2: [2.963, 1.969],
    3: [3.710, 2.511, 1.993],
    4: [4.333, 2.963, 2.359, 2.014],
    5: [4.877, 3.357, 2.680, 2.290, 2.031],
}


@pytest.mark.parametrize("k", sorted(PUBLISHED))
def test_boundaries_match_published_tables(k):
    bounds = seq.spending_boundaries([i / k for i in range(1, k + 1)], 0.05)
    assert bounds == pytest.approx(PUBLISHED[k], abs=1.5e-3)


def test_boundaries_spend_alpha_by_monte_carlo():
    # Independent check of the recursion: cumulative crossing of simulated Brownian
    # motion at unequal fractions matches the spending function (4 standard errors).
    fractions = [0.3, 0.5, 0.8, 1.0]
    bounds = np.array(seq.spending_boundaries(fractions, 0.05))
    rng = np.random.default_rng(0)
    increments = rng.standard_normal((400_000, 4)) * np.sqrt(np.diff([0.0] + fractions))
    z = np.cumsum(increments, axis=1) / np.sqrt(fractions)
    crossed = np.maximum.accumulate(np.abs(z) >= bounds, axis=1).mean(axis=0)
    for t, rate in zip(fractions, crossed):
        expected = seq.obrien_fleming_spending(t, 0.05)
        assert abs(rate - expected) < 4 * math.sqrt(expected * (1 - expected) / 400_000) + 1e-5


def test_decide_is_pure_and_replays_earlier_looks():
    design = seq.SequentialDesign(alpha=0.05, min_seeds=3, max_seeds=6, target_effect=0.02)
    data = {"aug:big": [0.30, 0.31, 0.29, 0.30, 0.31, 0.30],
            "aug:zero": [0.001, -0.001, 0.0005, -0.0005, 0.0, 0.001],
            "aug:open": [0.05, -0.04, 0.03, 0.02, -0.01, 0.04]}
    first = design.decide(data, 0)
    assert first["aug:open"].status == seq.CONTINUE
    assert first["aug:zero"].status == seq.FUTILE
    assert design.next_round(data, 0) == {n: 4 for n, d in first.items()
                                          if d.status == seq.CONTINUE}
    last = design.decide(data, len(design.looks) - 1)
    # A comparison stopped at look 0 keeps that decision even with later data.
    assert last["aug:zero"] == first["aug:zero"]
    assert last == design.decide({k: list(v) for k, v in data.items()}, len(design.looks) - 1)
    assert last["aug:open"].status in seq.TERMINAL
    with pytest.raises(ValueError, match="needs 4"):
        design.decide({"aug:open": data["aug:open"][:3]}, 1)
    with pytest.raises(ValueError, match="min_seeds"):
        seq.SequentialDesign(min_seeds=2)


def _simulate(design, effects, sd, n_studies, rng):
    """Returns (rate of studies with any rejection of a true null, any-correct-rejection
    power per comparison, mean runs per study)."""
    m = len(effects)
    last = len(design.looks) - 1
    false_any = 0
    rejected = np.zeros(m)
    runs = 0
    for _ in range(n_studies):
        data = {f"c{i}": list(effects[i] + sd * rng.standard_normal(design.max_seeds))
                for i in range(m)}
        decisions = design.decide(data, last)
        runs += sum(d.n_seeds for d in decisions.values())
        false = [d.status in (seq.EFFECTIVE, seq.INEFFECTIVE) and effects[i] == 0.0
                 for i, d in enumerate(decisions.values())]
        false_any += any(false)
        rejected += [d.status == seq.EFFECTIVE for d in decisions.values()]
    return false_any / n_studies, rejected / n_studies, runs / n_studies


def test_exact_thresholds_are_the_spent_alpha_per_look():
    design = seq.SequentialDesign(alpha=0.05, min_seeds=3, max_seeds=10, step=7)
    from scipy import stats
    spent_first = seq.obrien_fleming_spending(0.3, 0.05 / 4)
    spent_last = 0.05 / 4 - spent_first
    assert design.boundaries(4) == pytest.approx(
        [stats.norm.isf(spent_first / 2), stats.norm.isf(spent_last / 2)])


def test_familywise_error_under_the_null():
    # 1500 studies of 6 null comparisons with sd 0.03-0.08, 3..10 seeds, every look.
    design = seq.SequentialDesign(alpha=0.05, min_seeds=3, max_seeds=10, target_effect=0.02)
    rng = np.random.default_rng(15)
    n = 1500
    sds = np.array([0.03, 0.04, 0.05, 0.06, 0.07, 0.08])
    false_any = 0
    for _ in range(n):
        data = {f"c{i}": list(s * rng.standard_normal(10)) for i, s in enumerate(sds)}
        decisions = design.decide(data, len(design.looks) - 1)
        false_any += any(d.status in (seq.EFFECTIVE, seq.INEFFECTIVE) for d in decisions.values())
    rate = false_any / n
    print(f"null familywise rate {rate:.4f} over {n} studies")
    # Monte-Carlo error: 3 standard errors of a rate of alpha over n studies (0.0169).
    assert rate <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / n), rate


def test_adaptive_needs_fewer_runs_than_fixed_grid_for_comparable_power():
    from scipy import stats
    # 4 comparisons, true effect 0.05 with paired sd 0.04; looks at 4, 7 and 10 seeds
    # (fewer looks lose less power under the exact per-look spending).
    design = seq.SequentialDesign(alpha=0.05, min_seeds=4, max_seeds=10, step=3,
                                  target_effect=0.02)
    rng = np.random.default_rng(7)
    n = 300
    _, power, runs = _simulate(design, [0.05] * 4, 0.04, n, rng)
    # Fixed grid: 10 seeds each, two-sided t-test at Bonferroni 0.05 / 4.
    fixed_hits = 0
    for _ in range(n * 4):
        x = 0.05 + 0.04 * rng.standard_normal(10)
        fixed_hits += stats.ttest_1samp(x, 0.0).pvalue < 0.05 / 4 and x.mean() > 0
    fixed_power = fixed_hits / (n * 4)
    adaptive_power = float(power.mean())
    fixed_runs = 4 * 10
    print(f"adaptive power {adaptive_power:.3f} runs {runs:.1f}; "
          f"fixed power {fixed_power:.3f} runs {fixed_runs}")
    # Measured: adaptive power 0.739, 37.9 runs; fixed power 0.782, 40 runs.
    assert runs < fixed_runs - 1.0
    assert adaptive_power >= fixed_power - 0.07
