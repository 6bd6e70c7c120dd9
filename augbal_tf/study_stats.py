"""Statistics of a study: paired differences, t-intervals, Holm, gap fraction, verdicts.

Pure pandas/numpy/scipy over the rows of `results.csv` (one row per training run).
Every cell of seed s shares seed s's data (minority subset, validation and test
images), so each cell is compared with the unbalanced baseline of the same seed:
a paired design whose differences are summarised by a t-interval over seeds.

The verdict rule (also printed at the top of every report, see `VERDICT_RULE`):
a comparison is `effective` when its mean paired difference from the unbalanced
baseline is significantly above zero after a Holm correction over all comparisons
in the report, `ineffective` when significantly below, `neutral` otherwise, and
`undetermined` with fewer than `MIN_SEEDS` paired seeds (no interval, no test).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

REFERENCE_CELL = "baseline:unbalanced"
UPPER_CELL = "baseline:balanced"
NATURAL_RATIO = "natural"
MIN_SEEDS = 3
DEFAULT_ALPHA = 0.05
DEFAULT_METRIC = "test_balanced_accuracy"

# Balanced accuracies are ratios of small integers; differences of equal values can
# still differ in the last bits, which would turn "all seeds agree" into a noisy test.
_DECIMALS = 12

VERDICT_RULE = (
    "Each cell is compared with the unbalanced baseline of the same seed (same minority "
    "subset, validation and test images). A cell is **effective** when its mean paired "
    "difference in {metric} is significantly above zero (two-sided one-sample "
    "t-test over seeds, Holm-corrected over all {n} comparisons in this report, "
    "alpha = {alpha:g}), **ineffective** when significantly below zero, **neutral** otherwise, "
    "and **undetermined** with fewer than {min_seeds} seeds (no interval, no test). "
    "Intervals are uncorrected {confidence:.0%} t-intervals, so a cell can have an "
    "interval excluding zero and still be neutral.")

SUMMARY_COLUMNS = (
    "ratio", "cell", "kind", "n_seeds", "mean", "std", "mean_difference", "ci_low",
    "ci_high", "p_value", "p_holm", "gap_fraction", "verdict", "rank")


def ratio_label(ratio: float | str | None) -> str:
    """The ratio as written in results and reports: `8`, `2.5` or `natural`.

    Raises:
      ValueError: if `ratio` is neither `natural`/None nor a number >= 1.
    """
    if ratio is None or (isinstance(ratio, str) and ratio.strip().lower() == NATURAL_RATIO):
        return NATURAL_RATIO
    try:
        value = float(ratio)
    except (TypeError, ValueError):
        raise ValueError(f"ratio={ratio!r} is not a number; allowed: a number >= 1 or "
                         f"'{NATURAL_RATIO}'") from None
    if not math.isfinite(value) or value < 1:
        raise ValueError(f"ratio={ratio!r} is invalid; allowed: a number >= 1 or "
                         f"'{NATURAL_RATIO}'")
    return f"{value:g}"


def ratio_sort_key(label: str) -> tuple[int, float]:
    """Orders ratio labels numerically, with `natural` last."""
    return (1, 0.0) if label == NATURAL_RATIO else (0, float(label))


def cell_kind(cell: str) -> str:
    """`baseline`, `augmentation` or `remedy` from a cell name such as `aug:FancyPCA`."""
    prefix = cell.split(":", 1)[0]
    if prefix == "baseline":
        return "baseline"
    if prefix == "aug":
        return "augmentation"
    if prefix == "remedy":
        return "remedy"
    if prefix == "online":  # Online augmentation cells (#14).
        return "online"
    raise ValueError(f"cell={cell!r} is not a study cell; allowed: 'baseline:<name>', "
                     "'aug:<augmentation>', 'remedy:<name>' or 'online:<augmentation>'")


def t_interval(differences: Sequence[float],
               confidence: float = 0.95) -> tuple[float, float, float, float]:
    """Mean, t-interval and two-sided p-value (H0: mean 0) of paired differences.

    Args:
      differences: one difference per seed.
      confidence: coverage of the interval, in (0, 1).

    Returns:
      (mean, low, high, p_value); low, high and p_value are NaN with fewer than
      `MIN_SEEDS` values. When all differences are equal the interval is the point
      itself and p is 0 (1 if they are all zero): the t statistic is then infinite
      (or undefined), and scipy would report floating-point noise instead.

    Raises:
      ValueError: if `confidence` is outside (0, 1).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence!r} is invalid; allowed: a value in (0, 1)")
    values = np.round(np.asarray(differences, dtype=np.float64), _DECIMALS)
    if values.size == 0:
        return (math.nan, math.nan, math.nan, math.nan)
    mean = float(values.mean())
    if values.size < MIN_SEEDS:
        return (mean, math.nan, math.nan, math.nan)
    n = values.size
    if np.all(values == values[0]):
        return (mean, mean, mean, 1.0 if values[0] == 0.0 else 0.0)
    sd = float(values.std(ddof=1))
    se = sd / math.sqrt(n)
    t_stat = mean / se
    p_value = float(2.0 * stats.t.sf(abs(t_stat), df=n - 1))
    half_width = float(stats.t.ppf(0.5 + confidence / 2.0, df=n - 1)) * se
    return (mean, mean - half_width, mean + half_width, p_value)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values; NaN entries stay NaN and are not counted.

    The adjusted value of the k-th smallest of m p-values is
    max over j <= k of min(1, (m - j + 1) * p_(j)), so comparing it with alpha
    is exactly Holm's step-down procedure.
    """
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    if valid.size == 0:
        return adjusted
    m = valid.size
    order = valid[np.argsort(p[valid], kind="stable")]
    running = 0.0
    for position, index in enumerate(order):
        running = max(running, min(1.0, (m - position) * p[index]))
        adjusted[index] = running
    return adjusted


def gap_fraction(cell_mean: float, unbalanced_mean: float, balanced_mean: float,
                 higher_is_better: bool = True) -> float:
    """Fraction of the balanced-vs-unbalanced gap a cell recovers (seed means).

    Returns NaN (reported as n/a) when the balanced baseline is not better than the
    unbalanced one, or either is missing: there is no gap to recover.
    """
    if any(math.isnan(v) for v in (cell_mean, unbalanced_mean, balanced_mean)):
        return math.nan
    sign = 1.0 if higher_is_better else -1.0
    gap = sign * (balanced_mean - unbalanced_mean)
    if gap <= 0.0:
        return math.nan
    return sign * (cell_mean - unbalanced_mean) / gap


def verdict(n_seeds: int, mean_difference: float, p_holm: float,
            alpha: float = DEFAULT_ALPHA) -> str:
    """Applies the verdict rule (see `VERDICT_RULE`) to one comparison."""
    if n_seeds < MIN_SEEDS or math.isnan(p_holm):
        return "undetermined"
    if p_holm < alpha and mean_difference > 0.0:
        return "effective"
    if p_holm < alpha and mean_difference < 0.0:
        return "ineffective"
    return "neutral"


def paired_differences(results: pd.DataFrame, metric: str = DEFAULT_METRIC,
                       higher_is_better: bool = True) -> pd.DataFrame:
    """Per ratio, cell and seed: the metric minus the unbalanced baseline's (same seed).

    With `higher_is_better` False (ECE) the difference is the baseline's minus the
    cell's, so a positive difference always means the cell is better.

    Rows whose seed has no unbalanced baseline (for example an interrupted run) are
    dropped: they have nothing to be paired with.

    Raises:
      ValueError: if `results` lacks a required column or has duplicate runs.
    """
    results = _checked(results, metric)
    reference = results.loc[results["cell"] == REFERENCE_CELL, ["ratio", "seed", metric]]
    reference = reference.rename(columns={metric: "reference"})
    paired = results[["ratio", "cell", "seed", metric]].merge(
        reference, on=["ratio", "seed"], how="inner")
    paired["difference"] = (paired[metric] - paired["reference"] if higher_is_better
                            else paired["reference"] - paired[metric])
    return paired


def summarize(results: pd.DataFrame, metric: str = DEFAULT_METRIC,
              alpha: float = DEFAULT_ALPHA, confidence: float = 0.95,
              higher_is_better: bool = True) -> pd.DataFrame:
    """One row per ratio and cell with seed mean, paired interval, gap fraction, verdict.

    Args:
      results: rows of results.csv (columns ratio, cell, seed and `metric`; ratio as
        a label from `ratio_label`).
      metric: the column compared (test balanced accuracy by default).
      higher_is_better: False for a metric such as ECE (see `paired_differences`).
      alpha: family-wise error rate of the Holm-corrected verdicts.
      confidence: coverage of the reported (uncorrected) t-intervals.

    Returns:
      A DataFrame with `SUMMARY_COLUMNS`, ordered by ratio, then baselines, then
      augmentations by rank. `rank` ranks augmentations within a ratio by mean paired
      difference (1 = best); the reference row has verdict `reference`.

    Raises:
      ValueError: on missing columns, duplicate runs or an `alpha` outside (0, 1).
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha={alpha!r} is invalid; allowed: a value in (0, 1)")
    results = _checked(results, metric)
    unpaired = sorted(set(results["ratio"]) - set(results.loc[results["cell"] == REFERENCE_CELL, "ratio"]), key=str)
    if unpaired:
        # Every comparison pairs with it: without it there is nothing to compare or rank.
        raise ValueError(f"ratio(s) {', '.join(map(str, unpaired))} have no finished {REFERENCE_CELL} run, which "
                         "every cell of the ratio is compared with; finish (rerun) those cells first")
    paired = paired_differences(results, metric, higher_is_better)
    rows = []
    for (ratio, cell), group in results.groupby(["ratio", "cell"], sort=False):
        values = group[metric].to_numpy(dtype=np.float64)
        differences = paired.loc[(paired["ratio"] == ratio) & (paired["cell"] == cell),
                                 "difference"].to_numpy()
        is_reference = cell == REFERENCE_CELL
        if is_reference:
            mean_diff, low, high, p_value = (0.0, math.nan, math.nan, math.nan)
        else:
            mean_diff, low, high, p_value = t_interval(differences, confidence)
        rows.append({
            "ratio": ratio, "cell": cell, "kind": cell_kind(cell),
            "n_seeds": int(differences.size), "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if values.size > 1 else math.nan,
            "mean_difference": mean_diff, "ci_low": low, "ci_high": high,
            "p_value": p_value})
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS[:10])
    summary["p_holm"] = holm(summary["p_value"].to_numpy())
    summary["gap_fraction"] = _gap_fractions(summary, higher_is_better)
    summary["verdict"] = [
        "reference" if row.cell == REFERENCE_CELL else
        verdict(row.n_seeds, row.mean_difference, row.p_holm, alpha)
        for row in summary.itertuples()]
    summary["rank"] = _ranks_within_ratio(summary)
    return _ordered(summary)


def comparison_count(summary: pd.DataFrame) -> int:
    """How many tests entered the Holm correction (cells with an interval)."""
    return int(summary["p_value"].notna().sum())


def overall_ranking(summary: pd.DataFrame) -> pd.DataFrame:
    """Ranks augmentations over all ratios by their mean paired difference.

    Returns:
      Columns augmentation (the cell), n_ratios, mean_difference (average over
      ratios of the per-ratio mean paired difference), mean_gap_fraction (over ratios
      where defined), mean_rank (of the per-ratio ranks), verdicts (per ratio, in
      ratio order) and rank (1 = best), best first.
    """
    augmentations = summary[summary["kind"] == "augmentation"]
    rows = []
    for cell, group in augmentations.groupby("cell", sort=False):
        keys = [ratio_sort_key(r) for r in group["ratio"]]
        group = group.iloc[sorted(range(len(keys)), key=keys.__getitem__)]
        gaps = group["gap_fraction"].dropna()
        rows.append({
            "cell": cell, "n_ratios": len(group),
            "mean_difference": float(group["mean_difference"].mean()),
            "mean_gap_fraction": float(gaps.mean()) if len(gaps) else math.nan,
            "mean_rank": float(group["rank"].mean()),
            "verdicts": " ".join(f"{r}:{v}" for r, v in zip(group["ratio"], group["verdict"]))})
    ranking = pd.DataFrame(rows, columns=["cell", "n_ratios", "mean_difference",
                                          "mean_gap_fraction", "mean_rank", "verdicts"])
    ranking = ranking.sort_values(["mean_difference", "cell"], ascending=[False, True],
                                  kind="stable").reset_index(drop=True)
    ranking["rank"] = ranking["mean_difference"].rank(ascending=False, method="min")
    ranking["rank"] = ranking["rank"].astype("Int64")
    return ranking


def _checked(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    """A copy with ratios as labels and runs that have the metric, after checking columns and duplicates."""
    missing = [c for c in ("ratio", "cell", "seed", metric) if c not in results.columns]
    if missing:
        raise ValueError(f"results lack column(s) {missing}; have {list(results.columns)}")
    results = results.assign(ratio=[ratio_label(r) for r in results["ratio"]])
    # A run that lacks the metric (an older metrics.json) has nothing to be compared by.
    results = results[results[metric].notna()]
    duplicated = results.duplicated(["ratio", "cell", "seed"])
    if duplicated.any():
        first = results.loc[duplicated, ["ratio", "cell", "seed"]].iloc[0].to_dict()
        raise ValueError(f"results hold more than one run for {first}; each (ratio, cell, "
                         "seed) must appear once")
    return results


def _gap_fractions(summary: pd.DataFrame, higher_is_better: bool) -> list[float]:
    means = {(r.ratio, r.cell): r.mean for r in summary.itertuples()}
    fractions = []
    for row in summary.itertuples():
        if row.ratio == NATURAL_RATIO:
            # Data that is already imbalanced has no balanced version of itself.
            fractions.append(math.nan)
            continue
        fractions.append(gap_fraction(row.mean, means.get((row.ratio, REFERENCE_CELL), math.nan),
                                      means.get((row.ratio, UPPER_CELL), math.nan), higher_is_better))
    return fractions


def _ranks_within_ratio(summary: pd.DataFrame) -> pd.Series:
    ranks = pd.Series(pd.NA, index=summary.index, dtype="Int64")
    augmentations = summary["kind"] == "augmentation"
    for _, group in summary[augmentations].groupby("ratio", sort=False):
        ranks.loc[group.index] = group["mean_difference"].rank(
            ascending=False, method="min").astype("int64")
    return ranks


def _ordered(summary: pd.DataFrame) -> pd.DataFrame:
    baseline_order = {name: i for i, name in enumerate(
        ("baseline:balanced", "baseline:unbalanced", "baseline:undersample",
         "baseline:oversample_random", "baseline:class_weight"))}
    keys = []
    for row in summary.itertuples():
        if row.kind == "baseline":
            within = (0, baseline_order.get(row.cell, len(baseline_order)), 0.0, row.cell)
        else:
            within = (1, 0, -row.mean_difference if not math.isnan(row.mean_difference)
                      else math.inf, row.cell)
        keys.append((ratio_sort_key(row.ratio), within))
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    return summary.iloc[order].reset_index(drop=True)
