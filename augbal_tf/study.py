"""The study: run a grid of training runs and report which augmentations help.

    python -m augbal_tf.study --flagfile=launch/quickstart.flags

Each cell (a baseline or an augmentation, at one imbalance ratio, with one seed) is
a normal training run in its own workdir under `--study_dir`:

    <study_dir>/ratio_<r>/<baseline_x | aug_X>/seed_<s>/   (metrics.json, TensorBoard, ...)
    <study_dir>/results.csv, summary.csv, summary.md, summary.png

Seed s is both the training seed and the data seed of its cells, so all cells of
one seed see the same minority subset, validation and test images: comparisons
within a seed are paired (`augbal_tf.study_stats`). Rerunning the command skips
cells that finished with unchanged resolved flags and reruns changed ones.
`--seeds=auto` adds seeds in rounds where comparisons are still open (`study_adaptive`).

`--num_shards=N --shard_index=i` trains one shard of the cells (`augbal_tf.study_shards`:
N machines into one shared folder); `--report_only` then writes the report of every
finished cell, exactly as one process running the whole grid would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import pathlib
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

import pandas as pd
from absl import app, flags

from augbal_tf import config as config_lib
from augbal_tf import fileio, locks
from augbal_tf import report_html, study_grid, study_report, study_runner, study_shards
from augbal_tf import study_adaptive, study_effective, study_metric, study_power, study_screening_step
from augbal_tf import workdir as workdir_lib

RESULTS_CSV = "results.csv"
# This many cells failing in a row with the same error is a setup problem, not bad luck.
MAX_REPEATED_FAILURES = 3

RESULT_COLUMNS = (
    "cell", "dataset", "classes", "ratio", "profile", "sampling", "augmentation", "class_weight", "seed",
    "validation_accuracy", "validation_balanced_accuracy", "test_accuracy",
    "test_balanced_accuracy", "test_minority_recall", "test_minority_f1", "test_macro_f1",
    "test_ece", "test_many_shot_accuracy", "test_medium_shot_accuracy", "test_few_shot_accuracy",
    "selection", "selected_epoch", "epochs_run", "wall_time_s", "workdir")

# Trains one cell and returns its metrics dict: `train_and_evaluate`, or a stand-in.
TrainFn = Callable[[config_lib.TrainConfig, str], dict]


class CellsFailedError(RuntimeError):
    """Some cells raised; the others finished and the report covers them."""


Cell = study_grid.Cell


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """A study: its folder, its grid, and `base`, every training and dataset setting of the cells."""

    base: config_lib.TrainConfig
    study_dir: str
    grid: study_grid.Grid = study_grid.Grid()
    keep_datasets: bool = True
    export_cells: bool = False
    cells_per_process: int = 2  # --cells_per_process (study_runner).
    target_effect: float = study_power.DEFAULT_TARGET_EFFECT  # Power columns; futility width with adaptive.
    adaptive: study_adaptive.Settings | None = None  # --seeds=auto; grid.seeds is then adaptive.seeds.
    num_shards: int = 1  # >1: train only the cells of shard `shard_index` (`study_shards`).
    shard_index: int = 0
    metric: str = study_metric.DEFAULT  # --metric: what cells are compared, decided and ranked by.
    screen: int = 0  # --screen=K: the grid trains the K augmentations screened best (`study_screening_step`).

    def __post_init__(self):
        study_metric.get(self.metric)  # A bad name fails here, before anything is written.
        study_shards.check(self.num_shards, self.shard_index)
        study_screening_step.check(self.screen, self.grid.augmentations, self.num_shards)
        if self.adaptive is not None and self.num_shards > 1:
            # Each round's cells depend on every earlier cell's result: shards would have to wait
            # for each other between rounds.
            raise ValueError("--seeds=auto with --num_shards > 1 is not supported: the rounds of an "
                             "adaptive study depend on all earlier results; give --seeds a list to shard")


def expand_grid(study: StudyConfig) -> list[Cell]:
    """Every cell of the study (see `study_grid.expand`)."""
    return study_grid.expand(study.grid, study.base, study.study_dir, study.export_cells)


def cell_status(cell: Cell) -> workdir_lib.Status:
    """What the cell's workdir holds (`workdir.status`; the study only looks).

    Raises:
      ValueError: if the workdir holds files that are not an augbal run.
    """
    status = workdir_lib.status(cell.workdir, cell.config)
    if status is workdir_lib.Status.FOREIGN:
        raise ValueError(f"cell workdir {cell.workdir} holds no augbal run ({workdir_lib.RUN_FILE} "
                         "missing) but other files; move them or choose another --study_dir")
    return status


def run_study(study: StudyConfig, train_fn: TrainFn | None = None, *, command: str = "",
              log: Callable[[str], None] | None = None) -> pd.DataFrame | None:
    """Runs every unfinished cell, writes results.csv and the report, returns the summary.

    With `study.num_shards` > 1 it runs the unfinished cells of its shard only and writes
    no shared file (no results.csv, no report: `report_study` merges the shards).

    Args:
      study: the grid.
      train_fn: trains one cell; default `train.train_and_evaluate` in a child process
        replaced every `study.cells_per_process` cells (0: in this process).
        Cells whose `cpu_devices` this process cannot provide run
        `python -m augbal_tf.train` in a subprocess instead.
      command: the exact command line, recorded in summary.md.
      log: where progress lines go (default: stdout, flushed at once).

    Returns:
      The summary DataFrame (also in summary.csv); None for a shard.

    Raises:
      ValueError: bad flags, a foreign cell workdir, a folder or shard in use, a layout mismatch.
      CellsFailedError: some cells failed (the others are kept, and reported).
    """
    log = log or _print
    _check_source_folder(study.base)
    _check_metric(study)
    if study.adaptive is not None:
        study_adaptive.check(study.grid, study.adaptive)
    cells = expand_grid(study)
    runner = None
    if train_fn is None and study.cells_per_process:
        runner = study_runner.CellRunner(study.cells_per_process)
    # One process runs a study folder, or one shard of it, at a time (each cell's run
    # also owns its workdir).
    try:
        with study_shards.claim(study.study_dir, cells, study.num_shards, study.shard_index):
            study_effective.write_provenance(study.study_dir, study.grid.augmentations)
            if study.screen:  # Before any grid cell: the grid is the kept augmentations' only.
                study = _screened(study, runner or train_fn, log)
                cells = expand_grid(study)
            if study.adaptive is not None:  # Rounds of cells, each through _run_cells.
                return study_adaptive.run_rounds(
                    cells, _adaptive(study), study.target_effect,
                    lambda chosen, round_log: _run_cells(study, chosen, runner or train_fn, command, round_log),
                    lambda: study_report.read_results(os.path.join(study.study_dir, RESULTS_CSV)), log)
            return _run_cells(study, cells, runner or train_fn, command, log)
    finally:
        if runner:
            runner.close()


def report_study(study: StudyConfig, *, command: str = "", log: Callable[[str], None] | None = None) -> pd.DataFrame:
    """`--report_only`: writes results.csv and the report of every finished cell, trains nothing.

    The shard flags are ignored: it reads every cell of the grid, whatever the layout.

    Returns:
      The summary DataFrame (also in summary.csv).

    Raises:
      ValueError: no cell has finished (nothing is written), flags that give another grid
        than the shards ran, or a one-process study running in the folder.
    """
    log = log or _print
    if study.screen:
        study = _screened(study, None, log, measure=False)
    cells = expand_grid(study)
    study_shards.check_layout(study.study_dir, cells, None)
    finished = {cell.workdir for cell in cells if cell_status(cell) is workdir_lib.Status.FINISHED}
    if not finished:
        raise ValueError(f"--report_only: none of the {len(cells)} cells of the study in {study.study_dir} has "
                         "finished with these flags, so there is nothing to report; run the study (or its "
                         "shards) first, with the same flags")
    missing = [cell.describe() for cell in cells if cell.workdir not in finished]
    log(f"study: report of {len(finished)} of {len(cells)} finished cells in {study.study_dir}" +
        (f"; missing ({len(missing)}, rerun their shards): {', '.join(missing)}" if missing else ""))
    # Shared: shards may still run (they write no shared file); a one-process study may not.
    with locks.acquire(study.study_dir, study_shards.STUDY_LOCK, "study folder", shared=True):
        _write_results(cells, finished, study.study_dir)
        return _write_report(study, cells, finished, command, (), log)


def _run_cells(study: StudyConfig, cells: Sequence[Cell], train_fn: TrainFn | None, command: str,
               log: Callable[[str], None]) -> pd.DataFrame | None:
    sharded = study.num_shards > 1
    grid_cells = cells
    cells = study_shards.select(cells, study.num_shards, study.shard_index)
    statuses = {cell.workdir: cell_status(cell) for cell in cells}
    finished = {workdir for workdir, status in statuses.items() if status is workdir_lib.Status.FINISHED}
    to_run = [cell for cell in cells if cell.workdir not in finished]
    changed = sum(1 for status in statuses.values() if status is workdir_lib.Status.CHANGED)
    scope = (f"shard {study.shard_index} of {study.num_shards}: {len(cells)} of the {len(grid_cells)} cells"
             if sharded else f"{len(cells)} cells")
    log(f"study: {scope} in {study.study_dir}: {len(finished)} finished earlier "
        f"(skipped), {len(to_run)} to run ({changed} with changed flags, rerun from scratch)")
    if not study.base.data.minority:
        log("study: --minority is not set, so results.csv has no minority recall/F1 (the "
            "builder picks the class with the fewest training images)")
    start = time.monotonic()
    durations = []
    failures = []  # (cell name, error message)
    same_failures_in_a_row = 0
    for index, cell in enumerate(cells, start=1):
        name = cell.describe()
        label = f"[{index}/{len(cells)}] {name}"
        if cell.workdir in finished:
            log(f"{label}: finished earlier, skipped")
        else:
            cell_start = time.monotonic()
            try:
                metrics = _train_cell(cell, statuses[cell.workdir], train_fn)
            except Exception as error:  # pylint: disable=broad-except
                # One failing cell (a crash, out of memory, a bad file) must not cost the
                # other cells their runs or the study its report.
                message = f"{type(error).__name__}: {error}"
                log(f"{label}: FAILED: {message}")
                repeats = same_failures_in_a_row and failures[-1][1] == message
                same_failures_in_a_row = same_failures_in_a_row + 1 if repeats else 1
                failures.append((name, message))
                if same_failures_in_a_row == MAX_REPEATED_FAILURES:
                    log(f"study: {MAX_REPEATED_FAILURES} cells in a row failed with the same error; "
                        "stopping early (finished cells are kept: fix it and rerun)")
                    break
                continue
            same_failures_in_a_row = 0
            wall_time = time.monotonic() - cell_start
            finished.add(cell.workdir)
            if not sharded:  # Shards share no file: --report_only writes it.
                # Written after every finished cell, so an interrupted study keeps its rows.
                _write_results(cells, finished, study.study_dir)
            durations.append(wall_time)
            remaining = len(to_run) - len(durations)
            left = remaining * sum(durations) / len(durations)
            metric = study_metric.get(study.metric)
            log(f"{label}: {wall_time:.1f} s, {metric.label} "
                f"{result_row(cell, metrics)[metric.column]:.3f} | elapsed "
                f"{_duration(time.monotonic() - start)}, ~{_duration(left)} left "
                f"({remaining} cells)")
        if not study.keep_datasets:
            _delete_finished_variants(grid_cells, finished, cell)
    failed_summary = _failure_summary(failures)
    if sharded:
        log(f"study: shard {study.shard_index} of {study.num_shards}: {len(finished)} of its {len(cells)} "
            "cells finished. When every shard is done, merge them into the report with the same flags and "
            f"--report_only:\n  {report_only_command(command)}")
        if failures:
            raise CellsFailedError(f"{failed_summary}; rerun this shard to retry them.")
        return None
    _write_results(cells, finished, study.study_dir)  # Also when none ran or none finished.
    if not finished:
        raise CellsFailedError(f"no cell of the study finished, so there is no report. {failed_summary}")
    summary = _write_report(study, cells, finished, command, failures, log)
    if failures:
        raise CellsFailedError(f"{failed_summary}. The report covers the {len(finished)} "
                               "finished cells; rerun the same command to retry the others.")
    return summary


def _write_report(study: StudyConfig, cells: Sequence[Cell], finished: set[str], command: str,
                  failures: Sequence[tuple[str, str]], log: Callable[[str], None]) -> pd.DataFrame:
    """summary.{csv,md,png} and report.html from results.csv; logs the table."""
    results = study_report.read_results(os.path.join(study.study_dir, RESULTS_CSV))
    environment = _environment(cells)
    title = f"augbal study: {os.path.basename(os.path.normpath(study.study_dir))}"
    missing = len(cells) - len(finished)
    metric = study_metric.get(study.metric)
    if not results[metric.column].notna().any():
        raise ValueError(f"--metric={metric.name}: no finished run records {metric.column} in results.csv "
                         "(its metrics.json lacks it), so nothing can be compared by it; choose another "
                         f"--metric ({', '.join(study_metric.METRICS)}) and rerun with --report_only")
    sequential = (study_adaptive.outcome(expand_grid(study), results, _adaptive(study), study.target_effect)
                  if study.adaptive is not None else None)
    screening = study_screening_step.read(study.study_dir) if study.screen else None
    summary = study_report.write_report(results, study.study_dir, command=command, environment=environment,
                                        title=title, failures=failures, missing=missing,
                                        target_effect=study.target_effect, sequential=sequential,
                                        metric=metric, screening=screening)
    neutral = study_power.neutral_sentences(summary, study.target_effect)  # Per ratio: what neutral means.
    report_html.write_html_report(study.study_dir, results=results, summary=summary, command=command,
                                  environment=environment, title=title, failures=failures, missing=missing,
                                  sequential=sequential, metric=metric, screening=screening,
                                  power_sentences=list(neutral.values()),
                                  undecided=study_power.undecided_ratios(neutral))
    log("\n" + study_report.format_table(summary, metric=metric))
    log(f"\nreport: {os.path.join(study.study_dir, report_html.REPORT_HTML)} (open it in a browser; "
        f"also summary.md, summary.csv, summary.png, results.csv); TensorBoard: "
        f"tensorboard --logdir={study.study_dir}")
    return summary


def _screened(study: StudyConfig, train_fn: TrainFn | None, log: Callable[[str], None],
              measure: bool = True) -> StudyConfig:
    """The study with its grid's augmentations screened (`--screen`); measure False: the recorded screen only.

    Raises:
      ValueError: (measure False, --report_only) the study folder has no screen.json of these candidates.
    """
    if not measure:
        decision = study_screening_step.read_matching(study.screen, study.grid, study.base, study.study_dir,
                                                      study.export_cells)
    else:
        call = train_fn.call if isinstance(train_fn, study_runner.CellRunner) else (lambda fn, *args: fn(*args))
        decision = study_screening_step.run_screen(
            study.screen, study.grid, study.base, study.study_dir, study.export_cells,
            lambda cell: _train_or_read(cell, train_fn), call, log)
    return dataclasses.replace(study, grid=study_screening_step.screened_grid(study.grid, decision))


def _train_or_read(cell: Cell, train_fn: TrainFn | None) -> dict:
    status = cell_status(cell)
    if status is workdir_lib.Status.FINISHED:
        return workdir_lib.read_metrics(cell.workdir)
    return _train_cell(cell, status, train_fn)


def _adaptive(study: StudyConfig) -> study_adaptive.Settings:
    """The adaptive settings deciding on the study's metric."""
    return dataclasses.replace(study.adaptive, metric=study.metric)


def report_only_command(command: str) -> str:
    """The merge command of a shard's command: its shard flags dropped, `--report_only` added."""
    words = [word for word in shlex.split(command)
             if not word.startswith(("--num_shards=", "--shard_index="))]
    return " ".join(map(shlex.quote, [*words, "--report_only"])) if words else "... --report_only"


def _check_metric(study: StudyConfig) -> None:
    """Fails before the first cell when no cell could record the chosen metric."""
    data = study.base.data
    if (study.metric.startswith("minority_") and not data.minority
            and data.imbalance_profile != "exponential"):
        raise ValueError(f"--metric={study.metric} needs --minority (the class(es) whose recall/F1 it "
                         "averages); set it, or choose another --metric")


def _check_source_folder(config: config_lib.TrainConfig) -> None:
    """Fails before the first cell when every cell would fail on an unusable source folder."""
    if config.data.source == "fashion_mnist":
        from augbal_datasets.augbal import fashion_mnist  # pylint: disable=import-outside-toplevel
        # Names the folder and the install command (Debian's dataset-fashion-mnist).
        fashion_mnist.find_files(config.manual_dir or fashion_mnist.DEFAULT_DIR)
        return
    if config.data.source != "manual" or not config.manual_dir:
        return
    # The builder's own check (folder and layout), imported only for manual sources.
    from augbal_datasets.augbal import sources  # pylint: disable=import-outside-toplevel

    try:
        sources.ManualSource(config.manual_dir)
    except ValueError as error:
        raise ValueError(f"--manual_dir={config.manual_dir} is not a folder of images ({error}; "
                         f"resolved from {os.getcwd()}); see WORKSPACE.md for the layouts it accepts") from None


def _failure_summary(failures: Sequence[tuple[str, str]]) -> str:
    """One line naming the failed cells, each distinct error message once."""
    cells_by_message: dict[str, list[str]] = {}
    for name, message in failures:
        cells_by_message.setdefault(message, []).append(name)
    return f"{len(failures)} cell(s) failed: " + "; ".join(
        f"{', '.join(names)}: {message}" for message, names in cells_by_message.items())


def _print(line: str) -> None:
    # Flushed: progress must show at once even when stdout is a file or a pipe.
    print(line, flush=True)


def _train_cell(cell: Cell, status: workdir_lib.Status, train_fn: TrainFn | None) -> dict:
    config = cell.config
    if status is workdir_lib.Status.CHANGED:
        # A changed flag must never silently reuse (or resume) the old run.
        config = dataclasses.replace(config, overwrite=True)
    if isinstance(train_fn, study_runner.CellRunner):
        return train_fn(config, cell.workdir)  # A fresh child process splits its own CPU.
    if _needs_subprocess(config):
        return _train_in_subprocess(config, cell.workdir)
    if train_fn is None:
        from augbal_tf import train  # Imported lazily: it loads TensorFlow.

        train_fn = train.train_and_evaluate
    return train_fn(config, cell.workdir)


def _needs_subprocess(config: config_lib.TrainConfig) -> bool:
    """True when the cell asks for a CPU split this process does not have."""
    if config.cpu_devices == 0:
        return False
    import tensorflow as tf  # Only studies that split the CPU pay for this import here.

    return len(tf.config.list_logical_devices("CPU")) != config.cpu_devices


def _train_in_subprocess(config: config_lib.TrainConfig, workdir: str) -> dict:
    flagfile = pathlib.Path(workdir + ".flags")
    flagfile.parent.mkdir(parents=True, exist_ok=True)
    lines = config_lib.flag_lines(config, workdir)
    if config.overwrite:
        lines.append("--overwrite")
    flagfile.write_text("\n".join(lines) + "\n")
    command = [sys.executable, "-m", "augbal_tf.train", f"--flagfile={flagfile}"]
    completed = subprocess.run(command, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"cell {workdir} failed in a subprocess (exit code "
                           f"{completed.returncode}): {' '.join(command)}")
    return workdir_lib.read_metrics(workdir)


def result_row(cell: Cell, metrics: dict) -> dict:
    """The results.csv row of a finished cell."""
    config = cell.config
    test = metrics["test"]
    validation = metrics.get("validation") or {}
    per_class = test.get("per_class", {})
    data = config.data
    minority = data.minority or ()
    if data.imbalance_profile == "exponential":
        minority = tuple(metrics.get("class_names", ())[1:])  # the builder's: every class after the head
    minority_stats = [per_class[name] for name in minority if name in per_class]
    f1s = [stats["f1"] for stats in per_class.values()]
    shots = test.get("shot_accuracy") or {}
    dataset = data.source
    if data.source == "manual" and config.manual_dir:
        dataset = f"manual:{os.path.basename(os.path.normpath(config.manual_dir))}"
    return {
        "cell": cell.label, "dataset": dataset, "classes": ",".join(per_class) or
        ",".join(data.classes or ()), "ratio": cell.ratio_label, "profile": data.imbalance_profile,
        "sampling": data.strategy,
        "augmentation": ",".join(data.augmentation_names), "class_weight": config.class_weight,
        "seed": cell.seed,
        "validation_accuracy": validation.get("accuracy", math.nan),
        "validation_balanced_accuracy": validation.get("balanced_accuracy", math.nan),
        "test_accuracy": test["accuracy"], "test_balanced_accuracy": test["balanced_accuracy"],
        "test_minority_recall": _mean([s["recall"] for s in minority_stats]),
        "test_minority_f1": _mean([s["f1"] for s in minority_stats]),
        "test_macro_f1": _mean(f1s), "test_ece": _number(test.get("expected_calibration_error")),
        "test_many_shot_accuracy": _number(shots.get("many")),
        "test_medium_shot_accuracy": _number(shots.get("medium")),
        "test_few_shot_accuracy": _number(shots.get("few")), "selection": metrics.get("selection", ""),
        "selected_epoch": metrics.get("selected_epoch"),
        "epochs_run": metrics.get("epochs_run", math.nan),
        # Training's own clock: it adds up the epochs of killed and resumed invocations.
        "wall_time_s": metrics.get("wall_time_s", math.nan), "workdir": cell.workdir}


def _number(value) -> float:
    # NaN where a run lacks the metric (older metrics.json, no probabilities, an empty shot group).
    return math.nan if value is None else float(value)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _write_results(cells: Sequence[Cell], finished: set[str], study_dir: str) -> None:
    rows = [result_row(cell, workdir_lib.read_metrics(cell.workdir))
            for cell in cells if cell.workdir in finished]
    frame = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    with fileio.atomic_path(pathlib.Path(study_dir, RESULTS_CSV)) as temporary:
        frame.to_csv(temporary, index=False)


def _delete_finished_variants(cells: Sequence[Cell], finished: set[str], current: Cell) -> None:
    """Deletes the current cell's dataset variant once every cell using it is done."""
    dataset = current.config.data
    sharing = [c for c in cells if c.config.data == dataset]
    # Cells of other shards are looked up on disk: their shard may have finished them.
    if any(c.workdir not in finished and workdir_lib.status(c.workdir, c.config) is not workdir_lib.Status.FINISHED
           for c in sharing):
        return
    variant_dir = os.path.join(current.config.data_dir, "augbal", dataset.name)
    try:
        shutil.rmtree(variant_dir)
    except FileNotFoundError:
        pass  # Never built here, or another shard deleted it first.


def _environment(cells: Sequence[Cell]) -> dict:
    # Every cell records its environment; the most recently finished one describes
    # the software that produced (at least the end of) this report.
    newest, newest_time = {}, -1.0
    for cell in cells:
        path = pathlib.Path(cell.workdir, workdir_lib.METRICS_FILE)
        if path.is_file() and path.stat().st_mtime > newest_time:
            newest_time = path.stat().st_mtime
            newest = json.loads(path.read_text()).get("environment", {})
    return newest


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def study_from_flags(flag_values) -> StudyConfig:
    """Builds the StudyConfig of the study flags (and the training flags as its base).

    Raises:
      ValueError: for a missing `--study_dir` or invalid grid flags.
    """
    if not flag_values.study_dir:
        raise ValueError("--study_dir is required: the folder for the cells' workdirs and the "
                         "report")
    base = config_lib.from_flags(flag_values)
    adaptive = study_adaptive.settings_from_flags(flag_values)
    if not flag_values.target_effect > 0:
        raise ValueError(f"--target_effect={flag_values.target_effect:g} is invalid; allowed: > 0 "
                         "(in the --metric, 0.02 = 2 points)")
    return StudyConfig(
        base=base, study_dir=os.path.abspath(os.path.expanduser(flag_values.study_dir)),
        grid=study_grid.Grid(ratios=study_grid.parse_ratios(flag_values.ratios),
                             baselines=study_grid.resolve_baselines(flag_values.baselines),
                             augmentations=study_grid.resolve_augmentations(flag_values.augmentations),
                             seeds=adaptive.seeds if adaptive else study_grid.parse_seeds(flag_values.seeds),
                             remedies=study_grid.resolve_remedies(flag_values.remedies),
                             online_augmentations=study_grid.resolve_online_augmentations(
                                 flag_values.online_augmentations)),
        keep_datasets=flag_values.keep_datasets, export_cells=flag_values.export_cells,
        cells_per_process=flag_values.cells_per_process, target_effect=flag_values.target_effect,
        adaptive=adaptive, num_shards=flag_values.num_shards, shard_index=flag_values.shard_index,
        metric=flag_values.metric, screen=flag_values.screen)


@contextlib.contextmanager
def exit_codes():
    """The entry points' errors as exit codes, printed `error: ...`: bad input 2, failed cells 1."""
    try:
        yield
    except ValueError as error:  # Bad flags, a foreign folder, or a study folder or shard in use.
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except CellsFailedError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    flag_values = flags.FLAGS
    if not flag_values.study_dir:
        raise app.UsageError("--study_dir is required (the folder for the cells and the report)")
    with exit_codes():
        grid = study_from_flags(flag_values)
        command = " ".join(["python -m augbal_tf.study", *map(shlex.quote, sys.argv[1:])])
        if flag_values.report_only:
            report_study(grid, command=command)  # Reads metrics only: TensorFlow is never imported.
            return
        if grid.base.cpu_devices and not grid.cells_per_process:
            from augbal_tf import distribution  # Splits the CPU before TensorFlow starts.

            distribution.configure_cpu_devices(grid.base.cpu_devices)
        run_study(grid, command=command)


def run() -> None:
    """Console-script entry point (`augbal-study`)."""
    import augbal_tf.flags  # noqa: F401  (defines every flag)

    app.run(main)


if __name__ == "__main__":
    run()
