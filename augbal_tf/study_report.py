"""The study's report: summary.csv, summary.md, summary.png and the printed table.

Everything here is computed from `results.csv` alone (through `study_stats`), so a
report can be rebuilt from a finished or interrupted study directory at any time.
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # Headless: the study runs on servers and in CI.
import matplotlib.pyplot as plt  # noqa: E402  (must follow the backend choice)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from augbal_tf import fileio
from augbal_tf import study_metric, study_power, study_stats  # noqa: E402

SUMMARY_CSV = "summary.csv"
SUMMARY_MD = "summary.md"
SUMMARY_PNG = "summary.png"

DEFAULT_METRIC = study_metric.METRICS[study_metric.DEFAULT]
_VERDICT_MARKS = {"effective": "+", "ineffective": "-", "neutral": "=",
                  "undetermined": "?", "reference": "ref"}


def read_results(path: str | pathlib.Path) -> pd.DataFrame:
    """Reads results.csv keeping ratio labels as text (`8`, `natural`).

    Raises:
      ValueError: if the file does not exist.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"results file {str(path)!r} does not exist")
    return pd.read_csv(path, dtype={"ratio": str, "cell": str})


def write_report(results: pd.DataFrame, out_dir: str | pathlib.Path, *,
                 command: str, environment: Mapping | None = None,
                 alpha: float = study_stats.DEFAULT_ALPHA, confidence: float = 0.95,
                 title: str = "augbal study", failures: Sequence[tuple[str, str]] = (),
                 missing: int = 0,
                 target_effect: float = study_power.DEFAULT_TARGET_EFFECT,
                 sequential=None, metric: study_metric.Metric = DEFAULT_METRIC,
                 screening=None) -> pd.DataFrame:
    """Writes summary.csv, summary.md and summary.png into `out_dir`.

    Args:
      results: rows of results.csv.
      out_dir: folder for the three files (created if needed).
      command: the exact command that ran the study, recorded in summary.md.
      environment: package versions, commit and devices, recorded in summary.md.
      alpha: family-wise error rate of the verdicts.
      confidence: coverage of the reported intervals.
      title: heading of summary.md and the heatmap.
      failures: (cell, error message) of the cells that raised in this invocation.
      missing: cells of the grid without results (failed or not reached).
      target_effect: effect (metric units) for the `seeds_needed` power column.
      sequential: a `study_adaptive.Outcome` (--seeds=auto): its decisions give the
        verdicts, its rule and notes replace the Holm rule.
      metric: what is compared, decided and ranked (`--metric`).
      screening: a `study_screening_step.Decision` (--screen): its section and scatter.

    Returns:
      The summary DataFrame (as in summary.csv), with `study_power.POWER_COLUMNS`
      appended to `study_stats.SUMMARY_COLUMNS` (and with `sequential`,
      `study_adaptive.SEQUENTIAL_COLUMNS`).
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = study_stats.summarize(results, metric.column, alpha=alpha, confidence=confidence,
                                    higher_is_better=metric.higher_is_better)
    summary = study_power.add_power_columns(
        summary, study_stats.paired_differences(results, metric.column, metric.higher_is_better), alpha=alpha,
        target_effect=target_effect)
    if sequential is not None:
        summary = sequential.annotate(summary)
    ranking = study_stats.overall_ranking(summary)
    _write_atomic(out_dir / SUMMARY_CSV, summary.to_csv(index=False))
    cell_seconds = (float(results["wall_time_s"].sum()) if "wall_time_s" in results.columns
                    else None)
    text = markdown(summary, ranking, command=command, environment=environment or {},
                    alpha=alpha, confidence=confidence, title=title, n_runs=len(results),
                    cell_seconds=cell_seconds, failures=failures, missing=missing,
                    target_effect=target_effect, notes=sequential.notes if sequential else None,
                    metric=metric, screening=screening.markdown() if screening is not None else ())
    _write_atomic(out_dir / SUMMARY_MD, text)
    plot_heatmap(summary, ranking, out_dir / SUMMARY_PNG, title=title, metric=metric)
    return summary


def rule_text(summary: pd.DataFrame, alpha: float = study_stats.DEFAULT_ALPHA,
              confidence: float = 0.95, metric: study_metric.Metric = DEFAULT_METRIC) -> str:
    """The verdict rule with this report's metric and number of comparisons filled in."""
    if "sequential_rule" in summary.attrs:  # --seeds=auto (study_adaptive.Outcome.annotate).
        return summary.attrs["sequential_rule"]
    text = study_stats.VERDICT_RULE.format(
        n=study_stats.comparison_count(summary), alpha=alpha,
        min_seeds=study_stats.MIN_SEEDS, confidence=confidence, metric=metric.label)
    return f"{text} {metric.orientation}" if metric.orientation else text


def markdown(summary: pd.DataFrame, ranking: pd.DataFrame, *, command: str,
             environment: Mapping, alpha: float = study_stats.DEFAULT_ALPHA,
             confidence: float = 0.95, title: str = "augbal study", n_runs: int = 0,
             cell_seconds: float | None = None, failures: Sequence[tuple[str, str]] = (),
             missing: int = 0,
             target_effect: float = study_power.DEFAULT_TARGET_EFFECT,
             notes: Sequence[str] | None = None,
             metric: study_metric.Metric = DEFAULT_METRIC, screening: Sequence[str] = ()) -> str:
    """The whole summary.md as a string (`cell_seconds`: summed wall time of the runs).

    With `study_power.add_power_columns` output, also the power columns and a
    "What neutral means" section (one sentence per ratio). With `notes` (an adaptive
    study's: runs spent, why it stopped) an "Adaptive seeds" section replaces the
    count of Holm-significant comparisons.
    """
    n_tests = study_stats.comparison_count(summary)
    lines = [f"# {title}", ""]
    if metric.name != study_metric.DEFAULT:  # The default's report reads as it always has.
        lines += [metric.sentence, ""]
    if missing:
        lines += [f"**Incomplete: {missing} cell(s) of the grid have no results** "
                  f"({len(failures)} failed in the last invocation; see *Failed cells*). "
                  "Rerunning the same command retries them and rewrites this report.", ""]
    lines += ["## Verdict rule", "", rule_text(summary, alpha, confidence, metric), ""]
    if notes is not None:
        lines += ["## Adaptive seeds", ""] + [f"- {note}" for note in notes] + [""]
    else:
        lines += [f"{n_tests} comparisons were made (from {n_runs} runs). Without a correction, "
                  f"about {n_tests * alpha:.1f} of them would look significant at alpha = {alpha:g} "
                  "by chance alone even if no augmentation had any effect: "
                  f"{int((summary['p_value'] < alpha).sum())} have an uncorrected p < {alpha:g}, "
                  f"{int((summary['p_holm'] < alpha).sum())} remain significant after the Holm "
                  "correction.", ""]
    lines += [f"Columns: *mean* is the {metric.label} averaged over seeds; *diff* is the "
              "mean paired difference from the unbalanced baseline (same seed) in percentage "
              f"points with its {confidence:.0%} t-interval; *p (Holm)* the corrected p-value; "
              "*gap* the fraction of the balanced-vs-unbalanced gap recovered (from seed means; "
              f"n/a when the balanced baseline is not {'above' if metric.higher_is_better else 'better than'} "
              "the unbalanced one); *rank* ranks "
              "augmentations within the ratio by *diff*"
              + ("; *status* the sequential decision and *look* the look it was taken at (with "
                 "its seeds)." if notes is not None else "."), ""]
    has_power = "mde" in summary.columns
    if has_power:
        m = max(n_tests, 1)
        lines += [f"Power columns: *sd diff* is the standard deviation of the paired differences "
                  f"(pp); *MDE* the smallest true difference (pp) a two-sided paired t-test over "
                  f"this cell's seeds detects with 80 % power at alpha/m = {alpha:g}/{m} (the "
                  "Bonferroni level, the strictest Holm step, so the MDE is conservative); "
                  f"*seeds needed* the seeds that would detect a {100 * target_effect:g}-point "
                  "difference at that level and power, if the spread stays the same.", ""]
        lines += ["## What neutral means", "", study_power.NEUTRAL_RULE.replace(
            "target_effect", f"{100 * target_effect:g} points"), ""]
        lines += [f"- {sentence}" for sentence in
                  study_power.neutral_sentences(summary, target_effect).values()] + [""]
    for ratio in sorted(summary["ratio"].unique(), key=study_stats.ratio_sort_key):
        lines += [f"## Ratio {ratio}" + ("" if ratio == study_stats.NATURAL_RATIO else ":1"), ""]
        lines += _markdown_table(_display_rows(summary[summary["ratio"] == ratio]))
        lines.append("")
    if len(ranking):
        lines += ["## Overall ranking of augmentations", "",
                  f"Ranked by the per-ratio mean paired difference{metric.in_words} averaged over ratios.", ""]
        rows = [{"rank": str(r.rank), "augmentation": r.cell.split(":", 1)[1],
                 "ratios": str(r.n_ratios), "mean diff (pp)": _pp(r.mean_difference),
                 "mean gap": _fraction(r.mean_gap_fraction), "mean rank": f"{r.mean_rank:.1f}",
                 "verdicts": r.verdicts} for r in ranking.itertuples()]
        lines += _markdown_table(rows) + [""]
    lines += list(screening)  # --screen: which augmentations the grid kept, and why.
    if failures:
        lines += ["## Failed cells", "", "| cell | error |", "|---|---|"]
        lines += [f"| {name} | {message.replace('|', '/').splitlines()[0]} |"
                  for name, message in failures] + [""]
    lines += ["## Run", "", "Command:", "", "```", command, "```", ""]
    if cell_seconds is not None and not math.isnan(cell_seconds):
        lines += [f"Runs: {n_runs}; their summed wall time: {cell_seconds / 60:.1f} min "
                  "(training's own clock, dataset preparation included).", ""]
    if environment:
        lines += ["Environment:", ""]
        lines += [f"- {key}: {value}" for key, value in _flatten(environment)]
        lines.append("")
    return "\n".join(lines)


def format_table(summary: pd.DataFrame, alpha: float = study_stats.DEFAULT_ALPHA,
                 confidence: float = 0.95, metric: study_metric.Metric = DEFAULT_METRIC) -> str:
    """The summary as a fixed-width text table for the terminal."""
    rows = _display_rows(summary, with_ratio=True)
    columns = list(rows[0]) if rows else []
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    out = ["  ".join(c.ljust(widths[c]) for c in columns),
           "  ".join("-" * widths[c] for c in columns)]
    out += ["  ".join(r[c].ljust(widths[c]) for c in columns) for r in rows]
    out += ["", rule_text(summary, alpha, confidence, metric).replace("**", "")]
    return "\n".join(out)


def heatmap_rows(summary: pd.DataFrame, ranking: pd.DataFrame) -> tuple[list[str], list[str], list[str]]:
    """The heatmap's rows: (baselines, augmentations in ranking order, the other cells).

    The others are the remedy (plain and `<aug>+<remedy>`) and online cells, best mean
    paired difference over ratios first (ties by name).
    """
    cells = list(summary["cell"].drop_duplicates())
    baselines = [c for c in cells if study_stats.cell_kind(c) == "baseline"]
    augmentations = list(ranking["cell"])
    rest = summary[~summary["cell"].isin(baselines + augmentations)]
    means = rest.groupby("cell", sort=False)["mean_difference"].mean()
    others = sorted(means.index, key=lambda c: (-means[c] if not math.isnan(means[c]) else math.inf, c))
    return baselines, augmentations, others


def plot_heatmap(summary: pd.DataFrame, ranking: pd.DataFrame, path: str | pathlib.Path,
                 title: str = "augbal study", metric: study_metric.Metric = DEFAULT_METRIC) -> None:
    """Cell x ratio heatmap: colour = paired difference, text = mean and verdict."""
    ratios = sorted(summary["ratio"].unique(), key=study_stats.ratio_sort_key)
    baselines, augmentations, others = heatmap_rows(summary, ranking)
    cells = baselines + augmentations + others
    lookup = {(r.cell, r.ratio): r for r in summary.itertuples()}
    differences = np.full((len(cells), len(ratios)), np.nan)
    for i, cell in enumerate(cells):
        for j, ratio in enumerate(ratios):
            row = lookup.get((cell, ratio))
            if row is not None:
                differences[i, j] = 100.0 * row.mean_difference
    limit = np.nanmax(np.abs(differences)) if np.isfinite(differences).any() else 1.0
    # A floor of 5 pp keeps seed noise of a point or two pale instead of saturated.
    limit = max(limit, 5.0)

    fig_height = 1.6 + 0.38 * len(cells)
    fig_width = max(6.5, 3.2 + 1.5 * len(ratios))
    fig, ax = plt.subplots(figsize=(fig_width, fig_height), layout="constrained")
    image = ax.imshow(np.ma.masked_invalid(differences), cmap="RdBu", vmin=-limit,
                      vmax=limit, aspect="auto")
    for i, cell in enumerate(cells):
        for j, ratio in enumerate(ratios):
            row = lookup.get((cell, ratio))
            if row is None:
                continue
            label = f"{100 * row.mean:.1f}% {_VERDICT_MARKS.get(row.verdict, '')}"
            strong = abs(differences[i, j]) > 0.6 * limit
            ax.text(j, i, label, ha="center", va="center", fontsize=8,
                    color="white" if strong else "black")
    ax.set_xticks(range(len(ratios)), [f"{r}:1" if r != study_stats.NATURAL_RATIO else r
                                       for r in ratios])
    ax.set_yticks(range(len(cells)), [c.replace("baseline:", "[baseline] ").replace("aug:", "")
                                      for c in cells])
    if baselines and len(cells) > len(baselines):
        ax.axhline(len(baselines) - 0.5, color="black", linewidth=1.0)
    if others and len(cells) > len(others):
        ax.axhline(len(cells) - len(others) - 0.5, color="black", linewidth=1.0, linestyle="--")
    ax.set_xlabel("imbalance ratio (majority:minority)")
    ax.set_title(f"{title}\ntext: mean {metric.label} over seeds\n"
                 "+ effective   - ineffective   = neutral   ? undetermined", fontsize=9)
    bar = fig.colorbar(image, ax=ax, shrink=0.8)
    bar.set_label("paired diff. from unbalanced (pp)")
    try:
        with fileio.atomic_path(path) as temporary:
            fig.savefig(temporary, dpi=120, format="png")
    finally:
        plt.close(fig)


def _display_rows(summary: pd.DataFrame, with_ratio: bool = False) -> list[dict[str, str]]:
    rows = []
    for r in summary.itertuples():
        row = {"ratio": r.ratio} if with_ratio else {}
        interval = ("" if math.isnan(r.ci_low) else
                    f" [{_pp(r.ci_low)}, {_pp(r.ci_high)}]")
        std = "" if math.isnan(r.std) else f" ± {100 * r.std:.1f}"
        row.update({
            "cell": r.cell, "seeds": str(r.n_seeds), "mean (%)": f"{100 * r.mean:.1f}{std}",
            "diff (pp)": ("ref" if r.verdict == "reference" else _pp(r.mean_difference) + interval),
            "p (Holm)": "" if math.isnan(r.p_holm) else f"{r.p_holm:.3g}",
            "gap": _fraction(r.gap_fraction), "verdict": r.verdict,
            "rank": "" if pd.isna(r.rank) else str(r.rank)})
        if hasattr(r, "mde"):
            row.update({"sd diff (pp)": "" if math.isnan(r.sd_diff) else f"{100 * r.sd_diff:.1f}",
                        "MDE (pp)": "" if math.isnan(r.mde) else f"{100 * r.mde:.1f}",
                        "seeds needed": "" if pd.isna(r.seeds_needed) else str(r.seeds_needed)})
        if hasattr(r, "sequential"):  # --seeds=auto: the design's status and the look it stopped at.
            row.update({"status": r.sequential,
                        "look": "" if pd.isna(r.look) else f"{r.look} ({r.look_seeds} seeds)"})
        rows.append(row)
    return rows


def _markdown_table(rows: list[dict[str, str]]) -> list[str]:
    if not rows:
        return ["(no runs)"]
    columns = list(rows[0])
    return (["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
            + ["| " + " | ".join(row[c] for c in columns) + " |" for row in rows])


def _pp(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:+.1f}"


def _fraction(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def _flatten(mapping: Mapping, prefix: str = ""):
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, prefix=f"{name}.")
        else:
            yield name, value


def _write_atomic(path: pathlib.Path, text: str) -> None:
    # A report is either the old one or the new one, never half of each.
    fileio.write_atomic(path, text)
