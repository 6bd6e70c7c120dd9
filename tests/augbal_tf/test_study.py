"""Tests of the study's grid, resume/skip logic and results.csv, with a stand-in trainer.

The stand-in follows the real workdir rules (`augbal_tf.workdir.prepare`) and writes
a metrics.json shaped like training's, without TensorFlow; the end-to-end study with
real training is in test_study_e2e.py.
"""

import dataclasses
import json
import pathlib

import pandas as pd
import pytest

from augbal_tf import config as config_lib
from augbal_tf import fileio
from augbal_tf import study, study_grid, study_report, study_stats
from augbal_tf import workdir as workdir_lib

CLASSES = ("tshirt_top", "shirt")


def _fake_metrics(config):
    # A deterministic "score" per cell so that the report has something to compare.
    score = 0.60 + 0.01 * config.seed
    score += {"balanced": 0.2, "oversample_random": 0.05}.get(config.data.strategy, 0.0)
    score += 0.1 if config.data.augmentation == "HorizontalFlip" else 0.0
    score += 0.02 if config.class_weight == "balanced" else 0.0
    per_class = {name: {"precision": score, "recall": score - 0.1 * (name == "shirt"),
                        "f1": score, "support": 10} for name in CLASSES}
    split = {"accuracy": score, "balanced_accuracy": score, "per_class": per_class,
             "confusion_matrix": [[5, 5], [5, 5]]}
    return {"selected_epoch": 1, "selection": config.selection, "epochs_run": config.epochs,
            "wall_time_s": 1.5 + config.seed,
            "validation": split, "test": split, "environment": {"packages": {"fake": "1"}}}


class FakeTrainer:
    """Counts calls; optionally fails after `fail_after` trainings (an interruption)."""

    def __init__(self, fail_after=None, broken=None, error=None):
        self.calls = []
        self.fail_after = fail_after
        self.broken = broken  # Workdirs containing this text raise, as a crashing run would,
        self.error = error  # with this message (default: one naming the cell).

    def __call__(self, config, workdir):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        if self.broken is not None and self.broken in workdir:
            raise RuntimeError(self.error or f"simulated crash | in {pathlib.Path(workdir).parent.name}")
        status = workdir_lib.prepare(workdir, config)
        self.calls.append((workdir, status, config.overwrite))
        if status == workdir_lib.Status.FINISHED:
            return workdir_lib.read_metrics(workdir)
        metrics = _fake_metrics(config)
        fileio.write_atomic(pathlib.Path(workdir, workdir_lib.METRICS_FILE),
                                 json.dumps(metrics))
        return metrics


def _study(tmp_path, **overrides):
    base = config_lib.make(source="sample", classes=CLASSES, minority=("shirt",),
                                  epochs=1, image_size=32, data_dir=str(tmp_path / "tfds"))
    grid = dict(ratios=("4",), augmentations=("HorizontalFlip", "GaussNoise"), seeds=(0, 1, 2),
                baselines=("balanced", "unbalanced"))
    grid.update({key: overrides.pop(key) for key in list(overrides) if key in grid})
    grid["ratios"] = study_grid.parse_ratios(grid["ratios"])
    fields = dict(base=base, study_dir=str(tmp_path / "study"), grid=study_grid.Grid(**grid))
    fields.update(overrides)
    return study.StudyConfig(**fields)


def test_expand_grid_cells_and_configs(tmp_path):
    grid = study.expand_grid(_study(tmp_path, ratios=("4", "natural"),
                                    baselines=tuple(study_grid.BASELINES), export_cells=True))
    assert len(grid) == 2 * 3 * (5 + 2)
    first_seed = [c for c in grid if c.ratio == 4.0 and c.seed == 0]
    assert [c.label for c in first_seed] == [
        "baseline:balanced", "baseline:unbalanced", "baseline:undersample",
        "baseline:oversample_random", "baseline:class_weight", "aug:HorizontalFlip",
        "aug:GaussNoise"]
    by_name = {c.label: c.config for c in first_seed}
    assert by_name["baseline:class_weight"].data.strategy == "unbalanced"
    assert by_name["baseline:class_weight"].class_weight == "balanced"
    assert by_name["aug:GaussNoise"].data.strategy == "oversample_augment"
    assert by_name["aug:GaussNoise"].data.augmentation == "GaussNoise"
    assert by_name["aug:GaussNoise"].class_weight == "none"
    for cell in grid:
        assert cell.config.seed == cell.config.data.data_seed == cell.seed
        assert cell.config.export is True and cell.config.epochs == 1
        expected_ratio = None if cell.ratio_label == "natural" else 4.0
        assert cell.ratio == cell.config.data.imbalance_ratio == expected_ratio
    workdirs = [c.workdir for c in grid]
    assert len(set(workdirs)) == len(workdirs)
    assert first_seed[-1].workdir.endswith("ratio_4/aug_GaussNoise/seed_0")


def test_run_study_writes_results_and_report(tmp_path):
    trainer = FakeTrainer()
    config = _study(tmp_path)
    lines = []
    summary = study.run_study(config, trainer, command="python -m augbal_tf.study --x",
                              log=lines.append)
    assert len(trainer.calls) == 12
    results = study_report.read_results(tmp_path / "study" / study.RESULTS_CSV)
    assert list(results.columns) == list(study.RESULT_COLUMNS)
    assert len(results) == 12
    assert sorted(results["cell"].unique()) == [
        "aug:GaussNoise", "aug:HorizontalFlip", "baseline:balanced", "baseline:unbalanced"]
    row = results[(results["cell"] == "aug:HorizontalFlip") & (results["seed"] == 2)].iloc[0]
    assert row["sampling"] == "oversample_augment" and row["augmentation"] == "HorizontalFlip"
    assert row["ratio"] == "4" and row["dataset"] == "sample"
    assert row["classes"] == "tshirt_top,shirt"
    assert row["test_balanced_accuracy"] == pytest.approx(0.72)
    assert row["test_minority_recall"] == pytest.approx(0.62)
    assert row["wall_time_s"] == 3.5 and row["epochs_run"] == 1
    assert summary["cell"].tolist() == study_stats.summarize(results)["cell"].tolist()
    assert dict(zip(summary["cell"], summary["verdict"]))["aug:HorizontalFlip"] == "effective"
    for name in ("summary.csv", "summary.md", "summary.png", "report.html"):
        assert (tmp_path / "study" / name).is_file()
    text = (tmp_path / "study" / "summary.md").read_text()
    assert "python -m augbal_tf.study --x" in text
    assert "Runs: 12; their summed wall time: 0.5 min" in text
    assert "- packages.fake: 1" in text
    # report.html's Power section carries summary.md's sentence per ratio on what neutral means.
    page = (tmp_path / "study" / "report.html").read_text()
    power = page[page.index('<section id="power"'):]
    sentence = next(line[2:] for line in text.splitlines() if line.startswith("- Ratio 4: "))
    assert f"<p>{sentence}</p>" in power
    # One progress line per cell with a time-left estimate, then the table.
    progress = [line for line in lines if line.startswith("[")]
    assert len(progress) == 12 and all("left" in line for line in progress)
    assert "baseline:unbalanced" in lines[-2]


def test_rerun_skips_finished_and_reruns_changed_cells(tmp_path):
    study.run_study(_study(tmp_path), FakeTrainer(), log=lambda _: None)
    wall_times = study_report.read_results(tmp_path / "study" / study.RESULTS_CSV)["wall_time_s"]

    again = FakeTrainer()
    study.run_study(_study(tmp_path), again, log=lambda _: None)
    assert again.calls == []
    # Skipped cells keep the wall time of their original run.
    rerun = study_report.read_results(tmp_path / "study" / study.RESULTS_CSV)["wall_time_s"]
    pd.testing.assert_series_equal(wall_times, rerun)

    # One more augmentation: only its three cells run.
    more = FakeTrainer()
    study.run_study(_study(tmp_path, augmentations=("HorizontalFlip", "GaussNoise", "Transpose")),
                    more, log=lambda _: None)
    assert [pathlib.Path(w).parent.name for w, _, _ in more.calls] == ["aug_Transpose"] * 3

    # A changed training flag reruns every cell from scratch (overwrite), never reuses.
    changed = _study(tmp_path)
    changed = study.StudyConfig(**{**changed.__dict__,
                                   "base": config_lib.replace(changed.base, learning_rate=1e-3)})
    rerun = FakeTrainer()
    study.run_study(changed, rerun, log=lambda _: None)
    assert len(rerun.calls) == 12
    assert all(status == workdir_lib.Status.NEW and overwrite
               for _, status, overwrite in rerun.calls)


def test_resume_after_interruption_runs_only_unfinished_cells(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        study.run_study(_study(tmp_path), FakeTrainer(fail_after=5), log=lambda _: None)
    partial = study_report.read_results(tmp_path / "study" / study.RESULTS_CSV)
    assert len(partial) == 5
    resumed = FakeTrainer()
    study.run_study(_study(tmp_path), resumed, log=lambda _: None)
    assert len(resumed.calls) == 7
    assert len(study_report.read_results(tmp_path / "study" / study.RESULTS_CSV)) == 12


def test_a_failing_cell_costs_neither_the_other_cells_nor_the_report(tmp_path):
    lines = []
    with pytest.raises(study.CellsFailedError, match=r"1 cell\(s\) failed: ratio 4 aug:GaussNoise seed 1: "
                                                      r"RuntimeError: simulated crash"):
        study.run_study(_study(tmp_path), FakeTrainer(broken="aug_GaussNoise/seed_1"), log=lines.append)
    assert any("aug:GaussNoise seed 1: FAILED: RuntimeError: simulated crash" in line for line in lines)
    results = study_report.read_results(tmp_path / "study" / study.RESULTS_CSV)
    assert len(results) == 11
    text = (tmp_path / "study" / "summary.md").read_text()
    assert "**Incomplete: 1 cell(s) of the grid have no results**" in text
    assert "| ratio 4 aug:GaussNoise seed 1 | RuntimeError: simulated crash / in aug_GaussNoise |" in text
    # The rerun retries only the failed cell, and the report is whole again.
    retry = FakeTrainer()
    study.run_study(_study(tmp_path), retry, log=lambda _: None)
    assert [workdir for workdir, _, _ in retry.calls] == [str(tmp_path / "study/ratio_4/aug_GaussNoise/seed_1")]
    text = (tmp_path / "study" / "summary.md").read_text()
    assert "Incomplete" not in text and "Failed cells" not in text


def test_the_same_error_in_a_row_stops_the_study_early(tmp_path):
    trainer = FakeTrainer(broken="ratio_4", error="data folder missing")
    lines = []
    with pytest.raises(study.CellsFailedError, match="no cell of the study finished") as raised:
        study.run_study(_study(tmp_path), trainer, log=lines.append)
    # The shared error is named once, after the cells it hit.
    assert str(raised.value).count("data folder missing") == 1
    assert "3 cell(s) failed: ratio 4 baseline:balanced seed 0, ratio 4 baseline:unbalanced seed 0, " in str(raised.value)
    assert sum("FAILED" in line for line in lines) == study.MAX_REPEATED_FAILURES
    assert any("failed with the same error; stopping early" in line for line in lines)
    assert not (tmp_path / "study" / "summary.md").exists()
    assert not (tmp_path / "study" / "report.html").exists()


@pytest.mark.parametrize("make_folder", [False, True])
def test_a_missing_or_empty_manual_folder_fails_before_any_cell(tmp_path, make_folder):
    folder = tmp_path / "intel_scene"
    if make_folder:
        folder.mkdir()
    config = _study(tmp_path)
    config = study.StudyConfig(**{**config.__dict__, "base": config_lib.replace(
        config.base, source="manual", manual_dir=str(folder))})
    trainer = FakeTrainer()
    reason = "holds no class folders" if make_folder else "does not exist or is not a directory"
    with pytest.raises(ValueError, match=f"--manual_dir={folder} is not a folder of images "
                                         f"\\(manual_dir '{folder}' {reason}"):
        study.run_study(config, trainer, log=lambda _: None)
    assert trainer.calls == [] and not (tmp_path / "study").exists()


def test_a_missing_fashion_mnist_folder_fails_before_any_cell(tmp_path):
    config = _study(tmp_path)
    config = study.StudyConfig(**{**config.__dict__, "base": config_lib.replace(
        config.base, source="fashion_mnist", classes=None, minority=None, manual_dir=str(tmp_path / "idx"))})
    trainer = FakeTrainer()
    with pytest.raises(FileNotFoundError, match="idx' does not exist; install Debian's package with "
                                                "scripts/install_system_packages.sh"):
        study.run_study(config, trainer, log=lambda _: None)
    assert trainer.calls == [] and not (tmp_path / "study").exists()


def test_result_row_of_an_exponential_cell_names_the_profile_and_its_minority(tmp_path):
    base = config_lib.replace(_study(tmp_path).base, classes=None, minority=None, imbalance_profile="exponential")
    grid = study_grid.Grid(ratios=(10.0,), baselines=("unbalanced",), seeds=(0,))
    cell = study_grid.expand(grid, base, str(tmp_path), False)[0]
    per_class = {"tshirt_top": {"recall": 1.0, "f1": 1.0}, "pullover": {"recall": 0.5, "f1": 0.4},
                 "shirt": {"recall": 0.0, "f1": 0.0}}
    metrics = {"class_names": list(per_class),
               "test": {"accuracy": 0.5, "balanced_accuracy": 0.5, "per_class": per_class}}
    row = study.result_row(cell, metrics)
    # Every class after the head is a minority of the exponential cut.
    assert row["profile"] == "exponential" and row["test_minority_recall"] == 0.25
    assert row["test_minority_f1"] == pytest.approx(0.2)
    step = study.result_row(dataclasses.replace(cell, config=config_lib.replace(
        cell.config, imbalance_profile="step", minority=("shirt",))), metrics)
    assert step["profile"] == "step" and step["test_minority_recall"] == 0.0


def test_foreign_files_in_a_cell_workdir_are_an_error(tmp_path):
    config = _study(tmp_path, augmentations=())
    cell = study.expand_grid(config)[0]
    pathlib.Path(cell.workdir).mkdir(parents=True)
    pathlib.Path(cell.workdir, "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds no augbal run"):
        study.run_study(config, FakeTrainer(), log=lambda _: None)


def test_grid_flag_parsing():
    assert len(study_grid.resolve_augmentations(["paper"])) == 33
    assert study_grid.resolve_augmentations(["horizontal_flip", "HorizontalFlip", "gauss_noise"]) == (
        "HorizontalFlip", "GaussNoise")
    with pytest.raises(ValueError, match="--augmentations: unknown transform name 'HorizFlip'"):
        study_grid.resolve_augmentations(["HorizFlip"])
    assert study_grid.resolve_baselines(["class_weight", "balanced"]) == (
        "balanced", "unbalanced", "class_weight")
    with pytest.raises(ValueError, match="--baselines=.*'oversample'"):
        study_grid.resolve_baselines(["oversample"])
    assert study_grid.parse_seeds(["2", "0", "2"]) == (2, 0)
    with pytest.raises(ValueError, match="--seeds has '-1'"):
        study_grid.parse_seeds(["-1"])
    with pytest.raises(ValueError, match="--seeds is empty"):
        study_grid.parse_seeds([])
    assert study_grid.parse_ratios(["8", "2.0", "natural", "8.0"]) == (8.0, 2.0, None)
    with pytest.raises(ValueError, match="--ratios: ratio='0.5'"):
        study_grid.parse_ratios(["0.5"])


def test_keep_datasets_false_deletes_each_variant_after_its_last_cell(tmp_path):
    from augbal_datasets.augbal import prepare

    config = _study(tmp_path, baselines=("balanced", "unbalanced", "class_weight"),
                    keep_datasets=False)

    def variant_dir(cell):
        return pathlib.Path(cell.config.data_dir, "augbal", cell.config.data.name)

    grid = study.expand_grid(config)
    for cell in grid:
        (variant_dir(cell) / "1.0.0").mkdir(parents=True, exist_ok=True)
    # unbalanced and class_weight share a variant: 4 variants per seed for 5 cells.
    assert len({variant_dir(c) for c in grid}) == 12
    trainer = FakeTrainer()

    def checking_trainer(cell_config, workdir):
        cell = next(c for c in grid if c.workdir == workdir)
        assert variant_dir(cell).is_dir(), f"variant of {workdir} deleted before it ran"
        return trainer(cell_config, workdir)

    study.run_study(config, checking_trainer, log=lambda _: None)
    assert len(trainer.calls) == 15
    assert not any(variant_dir(c).exists() for c in grid)
