"""From a folder of skewed images to a recommended remedy, a trained model and a report.

    python -m augbal_tf.advise --manual_dir=FOLDER --workdir=OUT [--budget_minutes=30] [--dry_run]

Steps, each written down with its reason in OUT/advice.md:
1. read the folder (the builder's layouts), count the training images per class;
2. pick the candidates (the baselines, and augmentations/policies as oversamplers) and
   size the study to the budget (seeds per cell; candidates dropped when it is too small);
3. run the study on the natural imbalance (each cell paired with the unbalanced
   baseline of the same seed, Holm-corrected verdicts: `augbal_tf.study`);
4. name the winner by a stated rule (`choose_winner`);
5. train the final model with the winner on seed 0, export it, print the evaluate command.

With `--num_shards=N --shard_index=i` it plans (the same plan on every shard: it
depends on the folder, the flags and the budget only) and runs step 3 for its shard
of the cells; `--report_only` then merges the study and runs steps 4-5.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import shlex
import sys
import time
from collections.abc import Callable, Sequence

import pandas as pd
from absl import app, flags

from augbal_tf import config as config_lib
from augbal_tf import fileio
from augbal_tf import report_html, study, study_grid, study_shards, study_stats

# Sizes a CPU box can afford; a flag the user gives explicitly always wins.
ADVISE_DEFAULTS = {"image_size": 64, "epochs": 10, "batch_size": 32, "patience": 4,
                   "learning_rate": 1e-3, "log_images": 0}
BASELINES = ("unbalanced", "oversample_random", "undersample", "class_weight")
AUGMENTATIONS = ("HorizontalFlip", "TrivialAugmentWide", "RandAugment")
# Loss and prediction fixes, as cheap as the baseline (no extra images): the last to drop.
REMEDIES = ("logit_adjusted", "balanced_softmax", "posthoc")
MIN_SEEDS, MAX_SEEDS = study_stats.MIN_SEEDS, 10
# ResNet18 training at 150 px on 2 CPU cores (benchmarks/results/train_throughput.md);
# the cost of an image scales with its pixel count.
IMAGES_PER_SECOND_150PX = 75.0
CELL_OVERHEAD_SECONDS = 8.0  # Tracing, evaluation, metrics.
# Building a cell's dataset variant (benchmarks/results/build_throughput.md: ~800 images/s).
BUILD_IMAGES_PER_SECOND = 800.0
ADVICE_MD = "advice.md"
RULE = ("The winner is the cell with the largest mean paired difference in test balanced accuracy "
        "over the unbalanced baseline among the cells whose verdict is `effective` (Holm-corrected, "
        "alpha 0.05); a tie (within 0.1 points) goes to the cheaper cell (shorter mean training time). "
        "When no cell is effective, the recommendation is the plain unbalanced baseline.")


@dataclasses.dataclass
class Plan:
    """What advise will run, and why."""

    class_counts: dict[str, int]
    baselines: tuple[str, ...]
    augmentations: tuple[str, ...]
    remedies: tuple[str, ...]
    seeds: tuple[int, ...]
    cell_seconds: float
    decisions: list[str]

    @property
    def imbalance(self) -> float:
        return max(self.class_counts.values()) / min(self.class_counts.values())

    @property
    def num_cells(self) -> int:
        return (len(self.baselines) + len(self.augmentations) + len(self.remedies)) * len(self.seeds)

    @property
    def estimated_seconds(self) -> float:
        # The study's cells plus the final model.
        return (self.num_cells + 1) * self.cell_seconds


def count_images(manual_dir: str, classes: Sequence[str] | None = None) -> dict[str, int]:
    """Training images per class of a folder (test-pool images are not counted).

    Args:
      manual_dir: the folder.
      classes: the classes to keep (None: every class folder).

    Raises:
      ValueError: a missing or empty folder, fewer than 2 classes, or a class with
        fewer than 2 images, naming the folder and the class.
    """
    from augbal_datasets.augbal import sources  # pylint: disable=import-outside-toplevel

    source = sources.ManualSource(manual_dir)
    counts: dict[str, int] = {name: 0 for name in source.class_dirs()}
    for image in source.list_images():
        if image.pool != "test":
            counts[image.label] = counts.get(image.label, 0) + 1
    if classes:
        missing = sorted(set(classes) - set(counts))
        if missing:
            raise ValueError(f"--classes: {missing} are not class folders of {manual_dir} "
                             f"(found: {', '.join(sorted(counts))})")
        counts = {name: counts[name] for name in classes}
    if len(counts) < 2:
        raise ValueError(f"--manual_dir={manual_dir} holds {len(counts)} class folder(s) "
                         f"({', '.join(counts) or 'none'}); advise needs at least 2 classes")
    small = {name: count for name, count in counts.items() if count < 2}
    if small:
        raise ValueError(f"--manual_dir={manual_dir}: class(es) {small} have fewer than 2 training images; "
                         "each class needs images for training and validation")
    return dict(sorted(counts.items()))


def estimate_cell_seconds(train_images: int, epochs: int, image_size: int) -> float:
    """Estimated wall time of one cell on an idle machine of this kind (2 CPU cores)."""
    rate = IMAGES_PER_SECOND_150PX * (150.0 / image_size) ** 2
    return CELL_OVERHEAD_SECONDS + train_images / BUILD_IMAGES_PER_SECOND + epochs * train_images / rate


def make_plan(counts: dict[str, int], base: config_lib.TrainConfig, budget_minutes: float,
              baselines: Sequence[str] = BASELINES, augmentations: Sequence[str] = AUGMENTATIONS,
              remedies: Sequence[str] = REMEDIES) -> Plan:
    """Sizes the study to the budget: as many seeds as fit (3-10), dropping augmentations, then
    remedies, if needed.

    Raises:
      ValueError: when not even the baselines fit 3 seeds; the message names the budget needed.
    """
    decisions = [f"Natural imbalance {max(counts.values()) / min(counts.values()):.1f}:1 "
                 f"({', '.join(f'{name} {count}' for name, count in counts.items())}); the study compares "
                 "remedies at this ratio (no artificial cut)."]
    # Oversampling cells train on every class topped up to the largest one: the costliest cells.
    train_images = max(counts.values()) * len(counts)
    cell_seconds = estimate_cell_seconds(train_images, base.epochs, base.image_size)
    baselines = tuple(study_grid.resolve_baselines(baselines))
    augmentations, remedies = tuple(augmentations), tuple(study_grid.resolve_remedies(remedies))
    budget = budget_minutes * 60.0
    while True:
        cells_per_seed = len(baselines) + len(augmentations) + len(remedies)
        seeds = min(MAX_SEEDS, int(budget / cell_seconds - 1) // cells_per_seed)
        if seeds >= MIN_SEEDS or not (augmentations or remedies):
            break
        dropped = augmentations[-1] if augmentations else remedies[-1]
        decisions.append(f"Dropped {dropped}: with it, {budget_minutes:g} min do not allow "
                         f"{MIN_SEEDS} seeds per cell (about {cell_seconds:.0f} s per training run).")
        if augmentations:
            augmentations = augmentations[:-1]
        else:
            remedies = remedies[:-1]
    if seeds < MIN_SEEDS:
        needed = ((len(baselines) * MIN_SEEDS + 1) * cell_seconds) / 60.0
        raise ValueError(f"--budget_minutes={budget_minutes:g} is too small for even the baselines with "
                         f"{MIN_SEEDS} seeds: about {needed:.0f} min needed at --image_size={base.image_size}, "
                         f"--epochs={base.epochs}; raise the budget or lower --epochs / --image_size")
    decisions.append(f"Candidates: baselines {', '.join(baselines)}; augmentation oversampling with "
                     f"{', '.join(augmentations) or 'none'}; loss/prediction remedies "
                     f"{', '.join(remedies) or 'none'}; {seeds} seeds each (as many as the "
                     f"{budget_minutes:g} min budget allows, at most {MAX_SEEDS}).")
    return Plan(counts, baselines, augmentations, remedies, tuple(range(seeds)), cell_seconds, decisions)


def choose_winner(summary: pd.DataFrame, results: pd.DataFrame) -> tuple[str, str]:
    """(winning cell label, reason) by `RULE`."""
    effective = summary[summary["verdict"] == "effective"]
    if effective.empty:
        return study_stats.REFERENCE_CELL, ("No cell is effective after the Holm correction, so the "
                                            "recommendation is the plain unbalanced baseline.")
    cost = results.groupby("cell")["wall_time_s"].mean()
    best = effective["mean_difference"].max()
    tied = effective[effective["mean_difference"] >= best - 0.001]
    winner = min(tied["cell"], key=lambda cell: cost.get(cell, math.inf))
    row = tied[tied["cell"] == winner].iloc[0]
    reason = (f"{winner} is effective with the largest paired improvement: "
              f"{100 * row['mean_difference']:+.1f} points of balanced accuracy "
              f"(95% interval {100 * row['ci_low']:+.1f} to {100 * row['ci_high']:+.1f}) over "
              f"{int(row['n_seeds'])} seeds; mean training time {cost.get(winner, math.nan):.0f} s per run.")
    if len(tied) > 1:
        reason += f" Tied with {', '.join(c for c in tied['cell'] if c != winner)}; the cheaper one wins."
    return winner, reason


def advise(base: config_lib.TrainConfig, workdir: str, budget_minutes: float, *, dry_run: bool = False,
           baselines: Sequence[str] = BASELINES, augmentations: Sequence[str] = AUGMENTATIONS,
           remedies: Sequence[str] = REMEDIES,
           command: str = "", log: Callable[[str], None] = print,
           train_fn: study.TrainFn | None = None, num_shards: int = 1, shard_index: int = 0,
           report_only: bool = False) -> dict:
    """Runs the whole advice (see the module doc); returns what advice.md says, as a dict.

    `num_shards` > 1 runs the study's cells of shard `shard_index` only (no winner yet);
    `report_only` trains no cell: it merges the study's finished cells and goes on.
    """
    study_shards.check(num_shards, shard_index)
    workdir = os.path.abspath(os.path.expanduser(workdir))
    counts = count_images(base.manual_dir, base.data.classes)
    plan = make_plan(counts, base, budget_minutes, baselines, augmentations, remedies)
    if not base.data.minority:
        smallest = min(counts.values())
        minority = tuple(name for name, count in counts.items() if count == smallest)
        base = config_lib.replace(base, minority=minority)
        plan.decisions.append(f"Minority: {', '.join(minority)} (the fewest training images; set --minority "
                              "to choose); the report gives its recall.")
    log("\n".join(["advise: plan"] + [f"- {line}" for line in plan.decisions] +
                  [f"- {plan.num_cells} training runs + the final model, estimated "
                   f"{plan.estimated_seconds / 60:.0f} min on 2 CPU cores"]))
    if dry_run:
        return {"plan": plan, "winner": None}
    _check_writable(workdir)
    start = time.monotonic()
    sharded = num_shards > 1 and not report_only
    study_config = study.StudyConfig(
        base=base, study_dir=os.path.join(workdir, "study"),
        grid=study_grid.Grid(ratios=(None,), baselines=plan.baselines, augmentations=plan.augmentations,
                             remedies=plan.remedies, seeds=plan.seeds),
        num_shards=num_shards if sharded else 1, shard_index=shard_index if sharded else 0)
    if report_only:
        summary = study.report_study(study_config, command=command, log=log)
    else:
        summary = study.run_study(study_config, train_fn, command=command, log=log)
    if sharded:
        log(f"advise: shard {shard_index} of {num_shards} done. When every shard is done, choose the winner "
            f"and train the final model with:\n  {study.report_only_command(command)}")
        return {"plan": plan, "winner": None}
    results = pd.read_csv(os.path.join(study_config.study_dir, study.RESULTS_CSV))
    winner, reason = choose_winner(summary, results)
    log(f"advise: winner {winner}: {reason}")
    cell = next(c for c in study.expand_grid(study_config) if c.label == winner and c.seed == 0)
    model_dir = os.path.join(workdir, "model")
    final = dataclasses.replace(cell.config, export=True)
    if train_fn is None:
        from augbal_tf import train  # pylint: disable=import-outside-toplevel  (loads TensorFlow)

        train_fn = train.train_and_evaluate
    metrics = train_fn(final, model_dir)
    evaluate_command = (f"python -m augbal_tf.evaluate --saved_model={os.path.join(model_dir, 'export')} "
                        f"--images=FOLDER_OF_NEW_IMAGES --output=predictions.json")
    advice = {"plan": plan, "winner": winner, "reason": reason, "model_dir": model_dir,
              "test_balanced_accuracy": metrics["test"]["balanced_accuracy"],
              "evaluate_command": evaluate_command, "minutes": (time.monotonic() - start) / 60}
    advice["report"] = str(report_html.write_html_report(
        workdir, results=results, summary=summary, command=[command, evaluate_command],
        title="augbal advice", winner={"cell": winner, "reason": reason,
                                       "cost": f"{results[results['cell'] == winner]['wall_time_s'].mean():.0f} s "
                                               "of training per run"},
        decisions=plan.decisions + [RULE], gallery=_gallery(base, winner), gallery_name=winner.split(":", 1)[-1]))
    # advice.md last: its presence marks a finished advice.
    fileio.write_atomic(os.path.join(workdir, ADVICE_MD), _advice_markdown(advice, summary, command))
    log(f"advise: final model in {model_dir} (test balanced accuracy "
        f"{advice['test_balanced_accuracy']:.3f}); open {advice['report']} in a browser "
        f"(also {os.path.join(workdir, ADVICE_MD)}); "
        f"predict new images with:\n  {evaluate_command}")
    return advice


def _gallery(base: config_lib.TrainConfig, winner: str, count: int = 8):
    """The winning augmentation on the user's own minority images (None for non-augmentation winners)."""
    kind, name = winner.split(":", 1)
    if kind != study_grid.AUGMENTATION:
        return None
    import cv2  # pylint: disable=import-outside-toplevel

    from augbal_datasets.augbal import sources  # pylint: disable=import-outside-toplevel

    source = sources.ManualSource(base.manual_dir)
    paths = [image.source_id for image in source.list_images()
             if image.label in (base.data.minority or ()) and image.pool != "test"][:count]
    images = []
    for source_id in paths:
        pixels = cv2.imread(str(source.root / source_id), cv2.IMREAD_COLOR)
        if pixels is not None:
            images.append(cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB))
    return report_html.gallery_pairs(images, name, None, seed=0, count=count) if images else None


def _check_writable(workdir: str) -> None:
    path = pathlib.Path(workdir)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"--workdir={workdir} cannot be created: {error.strerror}") from None
    if not os.access(path, os.W_OK):
        raise ValueError(f"--workdir={workdir} is not writable by this user")


def _advice_markdown(advice: dict, summary: pd.DataFrame, command: str) -> str:
    plan = advice["plan"]
    lines = ["# augbal advice", "", f"**Recommendation: {advice['winner']}.** {advice['reason']}", "",
             f"Final model: `{advice['model_dir']}/export` (test balanced accuracy "
             f"{advice['test_balanced_accuracy']:.3f}). Predict new images:", "",
             f"    {advice['evaluate_command']}", "", "## Decisions", ""]
    lines += [f"- {line}" for line in plan.decisions]
    lines += [f"- Rule: {RULE}", "", "## The study", "",
              f"{plan.num_cells} runs in {advice['minutes']:.1f} min (estimated "
              f"{plan.estimated_seconds / 60:.0f} min); full report: `study/summary.md`.", "",
              "| cell | seeds | mean | paired difference (95% interval) | verdict |", "|---|---|---|---|---|"]
    for row in summary.itertuples():
        interval = ("reference" if row.verdict == "reference" else
                    f"{100 * row.mean_difference:+.1f} ({100 * row.ci_low:+.1f} to {100 * row.ci_high:+.1f})")
        lines.append(f"| {row.cell} | {row.n_seeds} | {row.mean:.3f} | {interval} | {row.verdict} |")
    lines += ["", "## Command", "", f"    {command}", ""]
    return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    values = flags.FLAGS
    for name in ("manual_dir", "workdir"):
        if not values[name].value:
            raise app.UsageError(f"--{name} is required")
    with study.exit_codes():
        base = config_lib.from_flags(values)
        base = config_lib.replace(base, **{name: default for name, default in ADVISE_DEFAULTS.items()
                                           if not values[name].present})
        command = " ".join(["python -m augbal_tf.advise", *map(shlex.quote, sys.argv[1:])])
        advise(base, values.workdir, values.budget_minutes, dry_run=values.dry_run, command=command,
               num_shards=values.num_shards, shard_index=values.shard_index, report_only=values.report_only)


def run() -> None:
    """Console-script entry point (`augbal-advise`)."""
    import augbal_tf.flags  # noqa: F401  (defines every flag)

    app.run(main)


if __name__ == "__main__":
    run()
