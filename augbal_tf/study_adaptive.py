"""`--seeds=auto`: the study adds seeds in rounds, only to comparisons still open.

Round 1 trains every cell with seeds 0..min_seeds-1. After each round the
group-sequential design of `study_sequential` (exact t-scale boundaries, Lan &
DeMets 1983 alpha spending of the Hwang, Shih & DeCani 1990 type, Holm across the
comparisons as in Maurer & Bretz 2013, a futility rule) decides every comparison
(a cell vs the unbalanced baseline of the same ratio) from the recorded paired
differences; the next look's seed goes only to the comparisons still open, plus
the unbalanced baseline cells of their ratio that the pairing needs. The study stops when every comparison is decided, at
the last look (max_seeds), or when the next round would take the cells' summed
training time (their recorded `wall_time_s`) past `--budget_minutes`.

`plan` is a pure function of results.csv: it replays the looks from the first,
so a killed study rerun with the same command makes the same decisions and
trains the same cells as one that was never interrupted (the budget test of
look k uses only the cells of looks before k, never a half-finished round).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from augbal_tf import study_grid, study_metric, study_sequential, study_stats

AUTO = "auto"
# Why the study stopped (None in `Plan.reason`: cells are still to be trained).
ALL_DECIDED, MAX_SEEDS, BUDGET = "all decided", "max seeds", "budget"
OPEN = "open"  # A comparison the budget stopped before the design decided it.
# Sequential status -> the report's verdict vocabulary (study_stats).
_VERDICTS = {study_sequential.EFFECTIVE: "effective", study_sequential.INEFFECTIVE: "ineffective",
             study_sequential.FUTILE: "neutral", study_sequential.NEUTRAL: "neutral", OPEN: "neutral"}
SEQUENTIAL_COLUMNS = ("sequential", "look", "look_seeds", "t", "boundary")

Key = tuple[str, str]  # (ratio label, cell label) of a comparison.


@dataclasses.dataclass(frozen=True)
class Settings:
    """`--seeds=auto`: seeds 0..max_seeds-1, looked at from min_seeds on; 0 minutes = no budget."""

    min_seeds: int = 3
    max_seeds: int = 10
    budget_minutes: float = 0.0
    alpha: float = study_stats.DEFAULT_ALPHA
    metric: str = study_metric.DEFAULT  # The study's --metric: the paired differences decided on.

    def __post_init__(self):
        if self.min_seeds < 3:
            raise ValueError(f"--min_seeds={self.min_seeds} is invalid; allowed: >= 3 (the first look's "
                             "t-interval needs 2 degrees of freedom)")
        if self.max_seeds < self.min_seeds:
            raise ValueError(f"--max_seeds={self.max_seeds} is invalid; allowed: >= --min_seeds="
                             f"{self.min_seeds}")
        if not (math.isfinite(self.budget_minutes) and self.budget_minutes >= 0):
            raise ValueError(f"--budget_minutes={self.budget_minutes:g} is invalid; allowed: >= 0 "
                             "(0: no budget)")

    @property
    def seeds(self) -> tuple[int, ...]:
        """The seeds a comparison may get, in the order it gets them."""
        return tuple(range(self.max_seeds))

    def design(self, target_effect: float) -> study_sequential.SequentialDesign:
        return study_sequential.SequentialDesign(alpha=self.alpha, min_seeds=self.min_seeds,
                                                 max_seeds=self.max_seeds, target_effect=target_effect)


def settings_from_flags(flag_values) -> Settings | None:
    """The adaptive settings of `--seeds=auto`, or None for a fixed list of seeds.

    `--budget_minutes` (advise's flag, default 30 there) counts for the study only
    when given on the command line or in a flagfile.

    Raises:
      ValueError: `auto` mixed with seed numbers, bad --min_seeds/--max_seeds/--budget_minutes,
        or any of them given with a fixed list of seeds.
    """
    values = [str(value).strip() for value in flag_values.seeds]
    adaptive_flags = [name for name in ("min_seeds", "max_seeds", "budget_minutes")
                      if flag_values[name].present]
    if AUTO not in (value.lower() for value in values):
        if adaptive_flags:
            raise ValueError(f"--{adaptive_flags[0]} applies to the study only with --seeds=auto; "
                             f"got --seeds={','.join(values)}")
        return None
    if len(values) != 1:
        raise ValueError(f"--seeds={','.join(values)} is invalid: auto cannot be mixed with seed numbers "
                         "(auto trains seeds 0..--max_seeds-1)")
    budget = flag_values.budget_minutes if flag_values["budget_minutes"].present else 0.0
    return Settings(min_seeds=flag_values.min_seeds, max_seeds=flag_values.max_seeds, budget_minutes=budget)


def check(grid: study_grid.Grid, settings: Settings) -> None:
    """Fails before anything is written when the grid cannot run adaptively.

    Raises:
      ValueError: a grid without a comparison, or seeds other than `settings.seeds`.
    """
    if grid.seeds != settings.seeds:
        raise ValueError(f"an adaptive study trains seeds 0..{settings.max_seeds - 1}; its grid has seeds "
                         f"{list(grid.seeds)} (build it with Settings.seeds)")
    compared = [name for name in grid.baselines if name != study_grid.REFERENCE_BASELINE]
    if not (compared or grid.augmentations or grid.remedies or grid.online_augmentations):
        raise ValueError("--seeds=auto needs at least one cell to compare with the unbalanced baseline "
                         "(--baselines, --augmentations, --remedies or --online_augmentations)")


@dataclasses.dataclass(frozen=True)
class Plan:
    """Where an adaptive study stands, replayed from its results.

    Attributes:
      look: index of the last look decided (-1: none yet).
      decisions: each comparison's decision at `look` (empty before the first).
      cells: every cell the study needs so far, in grid order (the next round's included).
      reason: why it stopped (ALL_DECIDED, MAX_SEEDS, BUDGET), None while cells are missing.
      budget_note: with BUDGET, the estimate that stopped it.
    """

    look: int
    decisions: dict
    cells: tuple
    reason: str | None
    budget_note: str = ""


def plan(cells: Sequence[study_grid.Cell], results: pd.DataFrame, settings: Settings,
         target_effect: float) -> Plan:
    """The decisions of the recorded `results` and the cells still needed (pure).

    Args:
      cells: every cell of the full grid (seeds 0..max_seeds-1, `study.expand_grid`).
      results: rows of results.csv (may be empty).
      settings, target_effect: the design.
    """
    design = settings.design(target_effect)
    looks = design.looks
    comparisons = list(dict.fromkeys((c.ratio_label, c.label) for c in cells
                                     if c.label != study_stats.REFERENCE_CELL))
    by_key = {(c.ratio_label, c.label, c.seed): c for c in cells}
    differences: dict[Key, dict[int, float]] = {key: {} for key in comparisons}
    seconds: dict[tuple[str, str, int], float] = {}
    if len(results):
        metric = study_metric.get(settings.metric)
        for row in study_stats.paired_differences(results, metric.column,
                                                  metric.higher_is_better).itertuples():
            differences.setdefault((row.ratio, row.cell), {})[int(row.seed)] = float(row.difference)
        if "wall_time_s" in results.columns:
            for ratio, cell, seed, wall in zip(results["ratio"], results["cell"], results["seed"],
                                               results["wall_time_s"]):
                seconds[(study_stats.ratio_label(ratio), cell, int(seed))] = float(wall)

    def needed_cells(needed: dict[Key, int]) -> list:
        wanted = {(ratio, cell, seed) for (ratio, cell), n in needed.items() for seed in range(n)}
        for ratio in {ratio for ratio, _ in needed}:
            most = max(n for (r, _), n in needed.items() if r == ratio)
            wanted |= {(ratio, study_stats.REFERENCE_CELL, seed) for seed in range(most)}
        return [cell for key, cell in by_key.items() if key in wanted]

    needed = {key: looks[0] for key in comparisons}
    decisions: dict = {}
    look = -1
    while True:
        values = {key: [differences[key][s] for s in range(n) if s in differences[key]]
                  for key, n in needed.items()}
        if any(len(values[key]) < n for key, n in needed.items()):
            return Plan(look, decisions, tuple(needed_cells(needed)), None)
        look += 1
        decisions = design.decide(values, look)
        still_open = [key for key in comparisons if decisions[key].status == study_sequential.CONTINUE]
        if not still_open:
            neutral = any(d.status == study_sequential.NEUTRAL and d.look == len(looks) - 1
                          for d in decisions.values())
            return Plan(look, decisions, tuple(needed_cells(needed)), MAX_SEEDS if neutral else ALL_DECIDED)
        following = {**needed, **{key: looks[look + 1] for key in still_open}}
        if settings.budget_minutes:
            note = _over_budget(needed_cells(needed), needed_cells(following), seconds,
                                settings.budget_minutes, look, looks)
            if note:
                return Plan(look, decisions, tuple(needed_cells(needed)), BUDGET, note)
        needed = following


def _over_budget(done: list, following: list, seconds: dict, budget_minutes: float, look: int,
                 looks: Sequence[int]) -> str:
    """Why the next round does not fit the budget ('' when it fits or cannot be estimated)."""
    times = np.array([seconds.get((c.ratio_label, c.label, c.seed), math.nan) for c in done])
    times = times[np.isfinite(times)]
    if not times.size:
        return ""  # No recorded durations (old metrics.json): nothing to estimate from.
    new = len(following) - len(done)
    spent, estimate = float(times.sum()), new * float(times.mean())
    if spent + estimate <= budget_minutes * 60.0:
        return ""
    return (f"the next round (look {look + 2}, {looks[look + 1]} seeds: {new} cells at the measured mean of "
            f"{times.mean():.0f} s per cell, about {estimate / 60:.1f} min) would take the cells' summed "
            f"training time from {spent / 60:.1f} to {(spent + estimate) / 60:.1f} min, past "
            f"--budget_minutes={budget_minutes:g}")


def run_rounds(cells: Sequence[study_grid.Cell], settings: Settings, target_effect: float,
               run_cells: Callable[[Sequence[study_grid.Cell], Callable[[str], None]], pd.DataFrame],
               read_results: Callable[[], pd.DataFrame], log: Callable[[str], None]) -> pd.DataFrame:
    """Trains round after round until `plan` says stop; returns the last round's summary.

    Args:
      cells: the full grid (seeds 0..max_seeds-1).
      run_cells: trains the unfinished ones of the cells given, writes results.csv and the
        report, returns the summary (the study's own loop, `study._run_cells`).
      read_results: results.csv as written by `run_cells`.
      log: progress lines.
    """
    # Always from look 1: results of other flags (cells rerun as changed) must not pull later
    # looks' cells forward; rounds already done only cost a rewrite of the report.
    current = plan(cells, pd.DataFrame(), settings, target_effect)
    rounds = 0
    while True:
        rounds += 1
        log(f"study: --seeds=auto round {rounds}: look {current.look + 2} of "
            f"{len(settings.design(target_effect).looks)}, {len(current.cells)} cells needed so far")
        # Later rounds would list every earlier cell again as skipped.
        summary = run_cells(current.cells, log if rounds == 1 else _without_skipped(log))
        following = plan(cells, read_results(), settings, target_effect)
        if following.reason is not None:
            log(f"study: --seeds=auto stopped ({following.reason}) after {len(following.cells)} runs of "
                f"the {len(cells)} a fixed grid of {settings.max_seeds} seeds would train")
            return summary
        if following.cells == current.cells:  # run_cells raises on failures; never loop on none.
            raise RuntimeError("the adaptive study made no progress: the round's cells have no results")
        current = following


def _without_skipped(log: Callable[[str], None]) -> Callable[[str], None]:
    return lambda line: None if line.endswith("finished earlier, skipped") else log(line)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """The adaptive study's decisions for the report (`study_report`, `report_html`)."""

    decisions: pd.DataFrame  # ratio, cell and SEQUENTIAL_COLUMNS
    rule: str
    notes: tuple[str, ...]

    def annotate(self, summary: pd.DataFrame) -> pd.DataFrame:
        """`summary` with SEQUENTIAL_COLUMNS; verdicts from the design, p (Holm) left out."""
        out = summary.merge(self.decisions, on=["ratio", "cell"], how="left")
        reference = out["cell"] == study_stats.REFERENCE_CELL
        out.loc[reference, "sequential"] = "reference"
        out["verdict"] = [row.verdict if row.cell == study_stats.REFERENCE_CELL or pd.isna(row.sequential)
                          else _VERDICTS.get(row.sequential, "undetermined") for row in out.itertuples()]
        out["sequential"] = out["sequential"].fillna("")
        # The fixed-sample Holm test is not what decided: the stopping rule was.
        out["p_holm"] = math.nan
        out["look"] = out["look"].astype("Int64")
        out["look_seeds"] = out["look_seeds"].astype("Int64")
        out.attrs["sequential_rule"] = self.rule
        return out


def outcome(cells: Sequence[study_grid.Cell], results: pd.DataFrame, settings: Settings,
            target_effect: float) -> Outcome:
    """The report's view of `plan(cells, results, ...)`."""
    state = plan(cells, results, settings, target_effect)
    design = settings.design(target_effect)
    looks = design.looks
    rows = []
    for (ratio, cell), decision in state.decisions.items():
        status = OPEN if decision.status == study_sequential.CONTINUE else decision.status
        rows.append({"ratio": ratio, "cell": cell, "sequential": status, "look": decision.look + 1,
                     "look_seeds": decision.n_seeds, "t": decision.t, "boundary": decision.boundary})
    decisions = pd.DataFrame(rows, columns=["ratio", "cell", *SEQUENTIAL_COLUMNS])
    m = len({(c.ratio_label, c.label) for c in cells if c.label != study_stats.REFERENCE_CELL})
    fixed = len(cells)
    spent = len(results)
    notes = [f"Runs: {spent} of the {fixed} that a fixed grid of {settings.max_seeds} seeds (--max_seeds) "
             f"would train ({100 * (1 - spent / fixed):.0f} % fewer)." if fixed else "Runs: none."]
    if state.reason == ALL_DECIDED:
        notes.append(f"Stopped (all decided) at look {state.look + 1} of {len(looks)}: every comparison "
                     "is decided.")
    elif state.reason == MAX_SEEDS:
        notes.append(f"Stopped (max seeds) at the last look ({settings.max_seeds} seeds): the comparisons "
                     "still open there end neutral.")
    elif state.reason == BUDGET:
        still = sum(1 for d in state.decisions.values() if d.status == study_sequential.CONTINUE)
        notes.append(f"Stopped (budget) after look {state.look + 1} of {len(looks)}: {state.budget_note}; "
                     f"{still} comparison(s) stay open. Rerun with a larger --budget_minutes to continue.")
    else:
        missing = sum(1 for c in state.cells if (c.ratio_label, c.label, c.seed) not in _recorded(results))
        notes.append(f"Not finished: look {state.look + 2} needs {missing} more cell(s); rerun the same "
                     "command to continue (it makes the same decisions).")
    holm = design.holm_boundaries(max(m, 1))
    notes.append("Looks at " + ", ".join(map(str, looks)) + " seeds; a comparison stops effective or "
                 "ineffective at a look when its paired t statistic reaches that look's boundary, |t| >= "
                 + _bounds_text(holm[-1]) + f" at alpha/m = {settings.alpha:g}/{max(m, 1)}"
                 + (f", lower once others are rejected (Holm; down to {_bounds_text(holm[0])} at alpha/1)"
                    if m > 1 else "") + ".")
    notes.append("The budget counts the cells' recorded training time (wall_time_s, dataset "
                 "preparation included); the first round always runs, and a round once started "
                 "is finished." if settings.budget_minutes else "No --budget_minutes: no budget.")
    return Outcome(decisions, rule_text(settings, target_effect, m), tuple(notes))


def _bounds_text(bounds) -> str:
    return ", ".join("none" if math.isinf(b) else f"{b:.3g}" for b in bounds)


def _recorded(results: pd.DataFrame) -> set:
    if not len(results):
        return set()
    return {(study_stats.ratio_label(r), c, int(s))
            for r, c, s in zip(results["ratio"], results["cell"], results["seed"])}


def _metric_note(settings: Settings) -> str:
    # Named when not the default, so the default's rule reads as it always has.
    return "" if settings.metric == study_metric.DEFAULT else " " + study_metric.get(settings.metric).sentence


def rule_text(settings: Settings, target_effect: float, m: int) -> str:
    """The verdict rule of an adaptive study (replaces `study_stats.VERDICT_RULE`)."""
    looks = settings.design(target_effect).looks
    return (
        "Adaptive seeds (--seeds=auto). Each cell is compared with the unbalanced baseline of the "
        f"same seed.{_metric_note(settings)} The study looks after {', '.join(map(str, looks))} seeds; "
        "at each look every "
        "open comparison's paired t statistic is compared with exact t-scale group-sequential "
        "boundaries (Lan & DeMets 1983 alpha spending with the Hwang, Shih & DeCani 1990 function, "
        f"gamma = {study_sequential.HSD_GAMMA:g}; calibrated on simulated null samples, whose t "
        "statistics do not depend on the paired sd), at level alpha/h for the h comparisons not yet "
        f"rejected (Holm's step-down in the group-sequential form of Maurer & Bretz 2013; h = {max(m, 1)} "
        "until the first rejection), so the familywise error over all looks and comparisons is at most "
        f"{settings.alpha:g}. A comparison stops **effective** (significantly above zero), "
        f"**ineffective** (below), or **futile** when its {1 - settings.alpha:.0%} t-interval is "
        f"narrower than {100 * target_effect:g} points and contains zero; one still open at the last "
        "look is **neutral**, one left when the budget stopped the study is **open**. Only open "
        "comparisons (and the unbalanced baseline they are paired with) get more seeds. The verdict "
        "column counts futile and open as neutral; p (Holm) is not computed (the stopping rule "
        "decided). Intervals are uncorrected 95% t-intervals.")
