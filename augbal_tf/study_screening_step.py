"""`--screen=K`: rank the study's augmentations by affinity and diversity, train the grid on the K best.

Before the grid, at the study's first ratio and first seed (`study_screen` has the
measures and the rule):

* the reference run: the `oversample_random` baseline (the minority oversampled with
  exact copies: the clean counterpart of an augmentation cell, same image counts), in
  `<study_dir>/screen/reference`, exported;
* one run per candidate: its grid cell at that ratio and seed (the kept candidates'
  cells are then finished, not rerun);
* affinity of X = the reference model's accuracy on the validation images augmented
  by X / on the clean ones; diversity of X = the final training loss of X's run /
  the reference run's.

With a frozen pretrained backbone the runs train on cached features and the whole
screen takes seconds; otherwise it costs one seed of the candidates at one ratio.
The decision goes to screen.json (every measure, the rule, kept or cut), screen.csv
and screen.png; a rerun with the same candidates and runs reuses it (no re-screening),
so a resumed study trains exactly the grid it started.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
from collections.abc import Callable, Mapping, Sequence

import pandas as pd

from augbal_tf import config as config_lib
from augbal_tf import fileio, study_grid, study_screen

SCREEN_JSON, SCREEN_CSV, SCREEN_PNG = "screen.json", "screen.csv", "screen.png"
REFERENCE_BASELINE = "oversample_random"
RULE = ("affinity = the clean reference model's accuracy on augmented / clean validation images; "
        "diversity = the candidate run's final training loss / the reference run's (Gontijo-Lopes et al. "
        "2020); each standardised over the candidates (z-score), kept: the K highest z_affinity + "
        "z_diversity, ties by name")
CSV_COLUMNS = ("augmentation", "affinity", "diversity", "score", "rank", "kept",
               "augmented_validation_accuracy", "final_train_loss")


def check(screen: int, augmentations: Sequence[str], num_shards: int) -> None:
    """Refuses a `--screen` that cannot work (the study config's check, before anything is written).

    Raises:
      ValueError: K < 0, no augmentations, or with shards (K >= their number keeps all: the scatter only).
    """
    if screen == 0:
        return
    if screen < 0:
        raise ValueError(f"--screen={screen} is invalid; allowed: 0 (no screening) or K >= 1 "
                         "(keep the K most promising --augmentations)")
    if not augmentations:
        raise ValueError(f"--screen={screen} needs --augmentations to screen (baselines, remedies and "
                         "online cells are never screened)")
    if num_shards > 1:
        raise ValueError("--screen with --num_shards > 1 is not supported: every shard would screen; "
                         "run the screen once without shards first (it is reused), or drop --screen")


@dataclasses.dataclass(frozen=True)
class Decision:
    """Every candidate's measures and the K kept (best first)."""

    k: int
    measures: dict[str, dict]  # name -> affinity, diversity, augmented_validation_accuracy, ...
    reference: dict
    ratio: str
    seed: int

    @property
    def pairs(self) -> dict[str, tuple[float, float]]:
        return {name: (m["affinity"], m["diversity"]) for name, m in self.measures.items()}

    @property
    def kept(self) -> list[str]:
        return study_screen.screen(self.pairs, self.k)

    def table(self) -> pd.DataFrame:
        """screen.csv: one row per candidate, best score first."""
        scores = study_screen.scores(self.pairs)
        order = study_screen.ranked(self.pairs)
        kept = set(self.kept)
        return pd.DataFrame([{"augmentation": name, "affinity": self.measures[name]["affinity"],
                              "diversity": self.measures[name]["diversity"], "score": scores[name],
                              "rank": rank, "kept": name in kept,
                              "augmented_validation_accuracy": self.measures[name]["augmented_validation_accuracy"],
                              "final_train_loss": self.measures[name]["final_train_loss"]}
                             for rank, name in enumerate(order, start=1)], columns=CSV_COLUMNS)

    def to_json(self) -> dict:
        return {"k": self.k, "rule": RULE, "ratio": self.ratio, "seed": self.seed, "kept": self.kept,
                "reference": self.reference, "candidates": self.measures}

    def markdown(self) -> list[str]:
        """summary.md's screening section."""
        n = len(self.measures)
        lines = ["## Screening", "",
                 f"--screen={self.k}: the grid trained the {self.k} of {n} augmentations ranked best "
                 f"(ratio {self.ratio}, seed {self.seed}). Rule: {RULE}.", "",
                 f"![affinity/diversity scatter, cut marked]({SCREEN_PNG})", "",
                 "| rank | augmentation | affinity | diversity | score | kept |", "|---|---|---|---|---|---|"]
        lines += [f"| {r.rank} | {r.augmentation} | {r.affinity:.3f} | {r.diversity:.3f} | {r.score:+.2f} | "
                  f"{'kept' if r.kept else 'cut'} |" for r in self.table().itertuples()]
        return lines + [""]


def read(study_dir: str) -> Decision | None:
    """The recorded decision of `study_dir`, or None."""
    path = pathlib.Path(study_dir, SCREEN_JSON)
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    return Decision(record["k"], record["candidates"], record["reference"], record["ratio"], record["seed"])


def reference_cell(grid: study_grid.Grid, base: config_lib.TrainConfig, study_dir: str) -> study_grid.Cell:
    """The clean reference run at the first ratio and seed, exported (affinity needs its model)."""
    one = study_grid.Grid(ratios=grid.ratios[:1], baselines=(REFERENCE_BASELINE,), seeds=grid.seeds[:1])
    (cell,) = study_grid.expand(one, base, study_dir, export_cells=True)
    return dataclasses.replace(cell, workdir=os.path.join(study_dir, "screen", "reference"))


def candidate_cells(grid: study_grid.Grid, base: config_lib.TrainConfig, study_dir: str,
                    export_cells: bool) -> list[study_grid.Cell]:
    """Each candidate's grid cell at the first ratio and seed."""
    one = study_grid.Grid(ratios=grid.ratios[:1], baselines=(), augmentations=grid.augmentations,
                          seeds=grid.seeds[:1])
    return study_grid.expand(one, base, study_dir, export_cells)


def final_train_loss(metrics: Mapping) -> float:
    """The training loss of a run's last epoch (metrics.json's history)."""
    return float(metrics["history"][-1]["train"]["loss"])


def _matches(decision: Decision | None, reference: study_grid.Cell, candidates: Sequence[study_grid.Cell]) -> bool:
    """True when a recorded decision measured exactly these runs (same candidates, same flags)."""
    if decision is None or decision.reference.get("flags_hash") != config_lib.flags_hash(reference.config):
        return False
    hashes = {cell.name: config_lib.flags_hash(cell.config) for cell in candidates}
    return {n: m.get("flags_hash") for n, m in decision.measures.items()} == hashes


def read_matching(k: int, grid: study_grid.Grid, base: config_lib.TrainConfig, study_dir: str,
                  export_cells: bool) -> Decision:
    """The recorded decision of exactly these candidates and flags (`--report_only`), cut at `k`.

    Raises:
      ValueError: the study folder has none.
    """
    decision = read(study_dir)
    if not _matches(decision, reference_cell(grid, base, study_dir), candidate_cells(grid, base, study_dir,
                                                                                      export_cells)):
        raise ValueError(f"--screen={k}: {os.path.join(study_dir, SCREEN_JSON)} is missing or measured other "
                         "--augmentations or flags; run the study with these flags first (it screens)")
    return dataclasses.replace(decision, k=k)


def run_screen(k: int, grid: study_grid.Grid, base: config_lib.TrainConfig, study_dir: str, export_cells: bool,
               train_cell: Callable[[study_grid.Cell], dict], call: Callable, log: Callable[[str], None]) -> Decision:
    """Screens the grid's augmentations (or reuses the recorded decision) and writes screen.{json,csv,png}.

    Args:
      train_cell: trains one cell (skipping a finished one) and returns its metrics.json.
      call: `call(fn, *args)` runs `fn` where the cells train (a child process: TensorFlow stays out of the study).
    """
    reference = reference_cell(grid, base, study_dir)
    candidates = candidate_cells(grid, base, study_dir, export_cells)
    decision = read(study_dir)
    if _matches(decision, reference, candidates):
        decision = dataclasses.replace(decision, k=k)
        log(f"screen: reusing {SCREEN_JSON} ({len(candidates)} candidates measured earlier); kept {decision.kept}")
    else:
        if decision is not None:
            log(f"screen: {SCREEN_JSON} measured other candidates or flags; screening again")
        decision = _measure(k, reference, candidates, train_cell, call, log)
    _write(decision, study_dir)
    return decision


def _measure(k, reference, candidates, train_cell, call, log) -> Decision:
    runs = [reference, *candidates]
    metrics = {}
    for index, cell in enumerate(runs, start=1):
        log(f"screen [{index}/{len(runs)}] {cell.describe()}")
        metrics[cell.workdir] = train_cell(cell)
    config = reference.config
    params = {cell.name: cell.config.data.transform_params(cell.name) for cell in candidates}
    clean, augmented = call(augmented_accuracies, os.path.join(reference.workdir, "export"), config.data,
                            config.data_dir or config_lib.default_data_dir(), config.manual_dir, params,
                            reference.seed, config.batch_size)
    reference_loss = final_train_loss(metrics[reference.workdir])
    measures = {}
    for cell in candidates:
        loss = final_train_loss(metrics[cell.workdir])
        measures[cell.name] = {"affinity": study_screen.affinity(augmented[cell.name], clean),
                               "diversity": study_screen.diversity(loss, reference_loss),
                               "augmented_validation_accuracy": augmented[cell.name], "final_train_loss": loss,
                               "flags_hash": config_lib.flags_hash(cell.config), "workdir": cell.workdir}
    record = {"cell": reference.label, "workdir": reference.workdir,
              "flags_hash": config_lib.flags_hash(reference.config), "clean_validation_accuracy": clean,
              "final_train_loss": reference_loss}
    decision = Decision(k, measures, record, reference.ratio_label, reference.seed)
    log(f"screen: kept {decision.kept} of {len(candidates)} (top {k} by z_affinity + z_diversity)")
    return decision


def _write(decision: Decision, study_dir: str) -> None:
    directory = pathlib.Path(study_dir)
    directory.mkdir(parents=True, exist_ok=True)
    fileio.write_atomic(directory / SCREEN_JSON, json.dumps(decision.to_json(), indent=2, sort_keys=True))
    with fileio.atomic_path(directory / SCREEN_CSV) as temporary:
        decision.table().to_csv(temporary, index=False)
    study_screen.plot_screen(decision.pairs, decision.k, directory / SCREEN_PNG,
                             title=f"screening at ratio {decision.ratio}, seed {decision.seed}")


def screened_grid(grid: study_grid.Grid, decision: Decision) -> study_grid.Grid:
    """The grid with only the kept augmentations, in the order the flags gave them."""
    kept = set(decision.kept)
    return dataclasses.replace(grid, augmentations=tuple(a for a in grid.augmentations if a in kept))


def augmented_accuracies(export_dir: str, data, data_dir: str, manual_dir: str | None,
                         params: Mapping[str, dict], seed: int, batch_size: int) -> tuple[float, dict[str, float]]:
    """(clean accuracy, {name: accuracy}) of an exported model on the variant's validation images.

    Each candidate augments every validation image once, with its own generator per
    image (`sampling.seeded_rng(seed, "screen/<name>/<index>")`): the same bytes every time.

    Raises:
      ValueError: if the variant has no validation split.
    """
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel  (in the child)

    from augbal_datasets.augbal import config as data_config  # pylint: disable=import-outside-toplevel
    from augbal_datasets.augbal import prepare, sampling  # pylint: disable=import-outside-toplevel
    from augbal_tf import evaluation  # pylint: disable=import-outside-toplevel

    builder = prepare.prepare_variant(data, data_dir, manual_dir)
    if not builder.info.splits.get("validation") or not builder.info.splits["validation"].num_examples:
        raise ValueError("--screen needs a validation split (affinity is measured on it); set "
                         "--validation_per_class > 0")
    pairs = [(image, int(label)) for image, label in prepare.as_decoded_dataset(builder, "validation").map(
        lambda example: (example["image"], example["label"])).as_numpy_iterator()]
    classifier = evaluation.load_saved_model(export_dir)

    def accuracy(images) -> float:
        spec = {"image": tf.TensorSpec([None, None, 3], tf.uint8), "label": tf.TensorSpec([], tf.int64)}
        dataset = tf.data.Dataset.from_generator(
            lambda: ({"image": image, "label": label} for image, (_, label) in zip(images, pairs)),
            output_signature=spec)
        y_true, probabilities = evaluation.predict_split(classifier.predict_fn, dataset, batch_size)
        return float(np.mean(probabilities.argmax(axis=1) == y_true))

    clean = accuracy([image for image, _ in pairs])
    augmented = {}
    for name, transform_params in params.items():
        transform = data_config.create_transform(name, transform_params)
        augmented[name] = accuracy([np.asarray(transform(image, rng=sampling.seeded_rng(seed, f"screen/{name}/{i}")))
                                    for i, (image, _) in enumerate(pairs)])
    if not math.isfinite(clean) or clean <= 0:
        raise ValueError(f"the screening reference model scores {clean} on the clean validation images; "
                         "affinity needs > 0 (train longer or with more images)")
    return clean, augmented
