"""Power of a study's paired comparisons: MDE, seeds needed, and what "neutral" means.

Every comparison is a two-sided one-sample t-test on the paired differences of
`n` seeds (see `study_stats`). Its power against a true mean difference `delta`
is computed exactly with the noncentral t distribution: with df = n - 1,
noncentrality lambda = delta / sd * sqrt(n) and critical value c = t_{1-a/2, df},
power = P(T' > c) + P(T' < -c), T' ~ nct(df, lambda) (the same formula as
statsmodels' `TTestPower`).

Which alpha: Holm's step-down makes the per-comparison threshold depend on the
comparison's rank among the p-values (alpha/m for the smallest, up to alpha for the
largest). Power is therefore computed at the conservative Bonferroni alpha/m, the
threshold Holm applies to the first rejection: the reported MDE is an upper bound on
what the Holm-corrected study can detect.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import optimize, stats

from augbal_tf import study_stats

DEFAULT_POWER = 0.8
DEFAULT_TARGET_EFFECT = 0.02
# Beyond this many seeds the answer is "practically never"; avoids unbounded searches.
MAX_SEEDS_SEARCH = 100_000

POWER_COLUMNS = ("sd_diff", "alpha_bonferroni", "mde", "seeds_needed")


def _check_probability(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name}={value!r} is invalid; allowed: a value in (0, 1)")


def paired_t_power(effect_size: float, n: int, alpha: float) -> float:
    """Power of the two-sided one-sample t-test with `n` paired differences.

    Args:
      effect_size: standardised true mean difference, delta / sd (Cohen's d).
      n: number of paired differences (seeds), >= 2.
      alpha: two-sided significance level, in (0, 1).

    Raises:
      ValueError: if `n` < 2 or `alpha` is outside (0, 1).
    """
    if n < 2:
        raise ValueError(f"n={n!r} is invalid; allowed: an integer >= 2")
    _check_probability("alpha", alpha)
    df = n - 1
    critical = stats.t.ppf(1.0 - alpha / 2.0, df)
    noncentrality = effect_size * math.sqrt(n)
    return _tail(critical, df, noncentrality, upper=True) + _tail(
        -critical, df, noncentrality, upper=False)


def _tail(x: float, df: int, noncentrality: float, upper: bool) -> float:
    """P(T' > x) or P(T' < x); scipy's nct returns NaN for far tails (they are ~0)."""
    direct = stats.nct.sf(x, df, noncentrality) if upper else stats.nct.cdf(x, df, noncentrality)
    if math.isfinite(direct):
        return float(direct)
    complement = stats.nct.cdf(x, df, noncentrality) if upper else stats.nct.sf(x, df, noncentrality)
    return float(1.0 - complement) if math.isfinite(complement) else 0.0


def minimal_detectable_effect(sd: float, n: int, alpha: float,
                              power: float = DEFAULT_POWER) -> float:
    """Smallest true mean difference detected with probability `power` (same units as sd).

    Returns NaN when `sd` is NaN or `n` < 2 (nothing to estimate); 0 when sd is 0.

    Raises:
      ValueError: if `alpha` or `power` is outside (0, 1) or sd is negative.
    """
    _check_probability("alpha", alpha)
    _check_probability("power", power)
    if math.isnan(sd) or n < 2:
        return math.nan
    if sd < 0:
        raise ValueError(f"sd={sd!r} is invalid; allowed: a value >= 0")
    if sd == 0.0:
        return 0.0
    if power <= alpha:
        return 0.0
    upper = 1.0
    while paired_t_power(upper, n, alpha) < power:
        upper *= 2.0
    d = optimize.brentq(lambda e: paired_t_power(e, n, alpha) - power, 0.0, upper,
                        xtol=1e-12, rtol=1e-12)
    return float(d * sd)


def seeds_needed(target_effect: float, sd: float, alpha: float,
                 power: float = DEFAULT_POWER) -> int | None:
    """Smallest number of seeds (>= 2) whose test detects `target_effect` with `power`.

    Returns None when sd is NaN (unknown), 2 when sd is 0.

    Raises:
      ValueError: if `target_effect` <= 0, sd < 0, or alpha/power outside (0, 1).
    """
    if not target_effect > 0:
        raise ValueError(f"target_effect={target_effect!r} is invalid; allowed: a value > 0")
    _check_probability("alpha", alpha)
    _check_probability("power", power)
    if math.isnan(sd):
        return None
    if sd < 0:
        raise ValueError(f"sd={sd!r} is invalid; allowed: a value >= 0")
    if sd == 0.0:
        return 2
    d = target_effect / sd
    # Power increases with n: exponential then binary search.
    high = 2
    while paired_t_power(d, high, alpha) < power:
        high *= 2
        if high > MAX_SEEDS_SEARCH:
            return None
    low = max(2, high // 2)
    if paired_t_power(d, low, alpha) >= power:
        return low
    while high - low > 1:
        mid = (low + high) // 2
        if paired_t_power(d, mid, alpha) >= power:
            high = mid
        else:
            low = mid
    return high


def add_power_columns(summary: pd.DataFrame, differences: pd.DataFrame,
                      alpha: float = study_stats.DEFAULT_ALPHA,
                      target_effect: float = DEFAULT_TARGET_EFFECT,
                      power: float = DEFAULT_POWER) -> pd.DataFrame:
    """A copy of `summary` with `POWER_COLUMNS` appended (existing columns untouched).

    Args:
      summary: output of `study_stats.summarize`.
      differences: output of `study_stats.paired_differences` on the same results.
      alpha: family-wise alpha; power uses alpha / m with m the Holm family size.
      target_effect: effect (metric units, 0.02 = 2 points) for `seeds_needed`.
      power: the power of the MDE and of `seeds_needed`.
    """
    m = study_stats.comparison_count(summary)
    per_alpha = alpha / m if m else alpha
    out = summary.copy()
    sds, alphas, mdes, needed = [], [], [], []
    for row in summary.itertuples():
        tested = not math.isnan(row.p_value)
        values = differences.loc[(differences["ratio"] == row.ratio)
                                 & (differences["cell"] == row.cell), "difference"]
        values = np.round(values.to_numpy(dtype=np.float64), 12)
        sd = float(values.std(ddof=1)) if tested and values.size >= 2 else math.nan
        sds.append(sd)
        alphas.append(per_alpha if tested else math.nan)
        mdes.append(minimal_detectable_effect(sd, int(values.size), per_alpha, power)
                    if tested else math.nan)
        n_needed = seeds_needed(target_effect, sd, per_alpha, power) if tested else None
        needed.append(pd.NA if n_needed is None else n_needed)
    out["sd_diff"] = sds
    out["alpha_bonferroni"] = alphas
    out["mde"] = mdes
    out["seeds_needed"] = pd.array(needed, dtype="Int64")
    return out


NEUTRAL_RULE = (
    "Per ratio, over its neutral comparisons: when every neutral comparison's MDE "
    "(80 % power, Bonferroni alpha/m) is <= target_effect, 'neutral' means 'no effect "
    "larger than X points', X the largest such MDE; otherwise 'too few seeds to tell', "
    "with N = (largest seeds_needed) - (fewest seeds among those comparisons).")


def undecided_ratios(sentences: dict[str, str]) -> list[str]:
    """Ratios whose `neutral_sentences` say 'too few seeds to tell' (NEUTRAL_RULE), in report order.

    At such a ratio "no cell was effective" is not evidence for the plain baseline: a remedy
    better by the target effect could have gone unseen.
    """
    return [ratio for ratio, sentence in sentences.items() if _TOO_FEW in sentence]


_TOO_FEW = "too few seeds to tell"


def neutral_sentences(summary: pd.DataFrame,
                      target_effect: float = DEFAULT_TARGET_EFFECT) -> dict[str, str]:
    """One sentence per ratio saying what its "neutral" verdicts mean (see NEUTRAL_RULE).

    Args:
      summary: `add_power_columns` output.
      target_effect: the effect seeds_needed was computed for.

    Returns:
      {ratio label: sentence}, ratios in report order.
    """
    sentences = {}
    ratios = sorted(summary["ratio"].unique(), key=study_stats.ratio_sort_key)
    for ratio in ratios:
        rows = summary[(summary["ratio"] == ratio) & (summary["verdict"] == "neutral")]
        label = f"Ratio {ratio}"
        if rows.empty:
            sentences[ratio] = f"{label}: no neutral comparison."
            continue
        mdes = rows["mde"].to_numpy(dtype=np.float64)
        worst = float(np.nanmax(mdes)) if np.isfinite(mdes).any() else math.nan
        if math.isfinite(worst) and worst <= target_effect:
            sentences[ratio] = (f"{label}: neutral means no effect larger than "
                                f"{100 * worst:.1f} points ({len(rows)} neutral "
                                "comparison(s), 80 % power).")
            continue
        needed = rows["seeds_needed"].dropna()
        if needed.empty:
            sentences[ratio] = (f"{label}: {_TOO_FEW} (the paired spread "
                                "cannot be estimated).")
            continue
        more = int(needed.max()) - int(rows["n_seeds"].min())
        sentences[ratio] = (f"{label}: {_TOO_FEW} ({max(more, 0)} more seeds "
                            f"would detect a {100 * target_effect:g}-point effect; "
                            f"current largest MDE {100 * worst:.1f} points).")
    return sentences
