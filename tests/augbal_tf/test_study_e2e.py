"""The study end to end with real training on the embedded sample (tiny, 1 epoch).

1 augmentation x 2 baselines x 1 ratio x 3 seeds = 9 one-epoch runs (3 seeds: the verdict
rule needs them; 2 comparisons: Holm's step-down). The run is interrupted after 4 cells and resumed; the summary is then recomputed here from
results.csv alone, independently of `augbal_tf.study_stats`.
"""

import json
import math
import os
import pathlib

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from augbal_tf import config as config_lib
from augbal_tf import study, study_grid, study_report

pytestmark = pytest.mark.slow

AUGMENTATIONS = ("HorizontalFlip",)


class CountingTrainer:
    """The real `train_and_evaluate`, counted, optionally interrupted before call k."""

    def __init__(self, interrupt_before=None):
        from augbal_tf import train

        self.train = train.train_and_evaluate
        self.workdirs = []
        self.interrupt_before = interrupt_before

    def __call__(self, config, workdir):
        if self.interrupt_before is not None and len(self.workdirs) >= self.interrupt_before:
            raise KeyboardInterrupt("simulated Ctrl-C")
        self.workdirs.append(workdir)
        return self.train(config, workdir)


def _expected_summary(results: pd.DataFrame) -> dict:
    """The summary's numbers, recomputed from results.csv without study_stats."""
    values = {cell: group.set_index("seed")["test_balanced_accuracy"]
              for cell, group in results.groupby("cell")}
    reference = values["baseline:unbalanced"]
    expected = {}
    for cell, series in values.items():
        diffs = (series - reference.loc[series.index]).round(12).to_numpy()
        if cell == "baseline:unbalanced":
            p_value, low, high = math.nan, math.nan, math.nan
        elif np.all(diffs == diffs[0]):
            # Every seed agrees exactly (common after one epoch): a degenerate t-test.
            p_value = 1.0 if diffs[0] == 0 else 0.0
            low = high = diffs.mean()
        else:
            test = stats.ttest_1samp(diffs, 0.0)
            interval = test.confidence_interval(0.95)
            p_value, low, high = test.pvalue, interval.low, interval.high
        expected[cell] = {"mean": series.mean(), "mean_difference": diffs.mean(),
                          "p_value": p_value, "ci_low": low, "ci_high": high}
    tested = sorted((e["p_value"], cell) for cell, e in expected.items()
                    if not math.isnan(e["p_value"]))
    running = 0.0
    for k, (p_value, cell) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - k) * p_value))
        expected[cell]["p_holm"] = running
    balanced = expected["baseline:balanced"]["mean"]
    unbalanced = expected["baseline:unbalanced"]["mean"]
    for cell, e in expected.items():
        e["gap_fraction"] = ((e["mean"] - unbalanced) / (balanced - unbalanced)
                             if balanced > unbalanced else math.nan)
        p_holm = e.get("p_holm", math.nan)
        if cell == "baseline:unbalanced":
            e["verdict"] = "reference"
        elif p_holm < 0.05:
            e["verdict"] = "effective" if e["mean_difference"] > 0 else "ineffective"
        else:
            e["verdict"] = "neutral"
    return expected


def test_study_end_to_end_with_resume(tmp_path):
    base = config_lib.make(
        source="sample", classes=("tshirt_top", "shirt"), minority=("shirt",),
        train_per_class=40, validation_per_class=10, test_per_class=20, image_size=32,
        epochs=1, batch_size=16, log_images=0, data_dir=str(tmp_path / "tfds"))
    grid = study.StudyConfig(base=base, study_dir=str(tmp_path / "study"), grid=study_grid.Grid(
        ratios=(4.0,), augmentations=AUGMENTATIONS, seeds=(0, 1, 2), baselines=("balanced", "unbalanced")))
    results_path = tmp_path / "study" / study.RESULTS_CSV

    interrupted = CountingTrainer(interrupt_before=4)
    with pytest.raises(KeyboardInterrupt):
        study.run_study(grid, interrupted, log=lambda _: None)
    assert len(study_report.read_results(results_path)) == 4
    finished_times = {w: os.path.getmtime(os.path.join(w, "metrics.json"))
                      for w in interrupted.workdirs}

    resumed = CountingTrainer()
    summary = study.run_study(grid, resumed, log=lambda _: None)
    assert len(resumed.workdirs) == 5
    assert not set(resumed.workdirs) & set(interrupted.workdirs)
    for workdir, mtime in finished_times.items():
        assert os.path.getmtime(os.path.join(workdir, "metrics.json")) == mtime

    results = study_report.read_results(results_path)
    assert list(results.columns) == list(study.RESULT_COLUMNS)
    assert len(results) == 9
    assert sorted(results["cell"].unique()) == sorted(
        ["baseline:balanced", "baseline:unbalanced", *(f"aug:{a}" for a in AUGMENTATIONS)])
    assert sorted(results["seed"].unique()) == [0, 1, 2]
    assert set(results["ratio"]) == {"4"} and set(results["classes"]) == {"tshirt_top,shirt"}
    assert (results["epochs_run"] == 1).all() and (results["selected_epoch"] == 1).all()
    for column in ("test_accuracy", "test_balanced_accuracy", "validation_balanced_accuracy",
                   "test_minority_recall", "test_minority_f1"):
        assert results[column].between(0.0, 1.0).all(), column
    augmented = results[results["cell"].str.startswith("aug:")]
    assert set(augmented["sampling"]) == {"oversample_augment"}
    assert (results["wall_time_s"] > 0).all()
    assert all(os.path.isfile(os.path.join(w, "metrics.json")) for w in results["workdir"])
    # Export is off in study cells unless --export_cells.
    assert not any(os.path.exists(os.path.join(w, "export")) for w in results["workdir"])

    expected = _expected_summary(results)
    written = pd.read_csv(tmp_path / "study" / study_report.SUMMARY_CSV, dtype={"ratio": str})
    assert written["cell"].tolist() == summary["cell"].tolist()
    for row in written.itertuples():
        e = expected[row.cell]
        assert row.n_seeds == 3
        for key in ("mean", "mean_difference", "ci_low", "ci_high", "p_value", "gap_fraction"):
            expected_value = pytest.approx(e[key], nan_ok=True, abs=1e-9)
            assert getattr(row, key) == expected_value, (row.cell, key)
        if row.cell != "baseline:unbalanced":
            assert row.p_holm == pytest.approx(e["p_holm"], abs=1e-9), row.cell
        assert row.verdict == e["verdict"], row.cell
    for name in (study_report.SUMMARY_MD, study_report.SUMMARY_PNG):
        assert (tmp_path / "study" / name).stat().st_size > 0


def test_cell_needing_other_cpu_devices_runs_in_a_subprocess(tmp_path):
    import tensorflow as tf

    # The cell asks for two logical CPU devices (mirrored), which this process lacks.
    if len(tf.config.list_logical_devices("CPU")) == 2:
        pytest.skip("this test process already has 2 logical CPU devices")
    base = config_lib.make(
        source="sample", classes=("tshirt_top", "shirt"), minority=("shirt",),
        train_per_class=20, validation_per_class=8, test_per_class=8, image_size=32,
        epochs=1, batch_size=8, log_images=0, data_dir=str(tmp_path / "tfds"),
        distribution_strategy="mirrored", cpu_devices=2)
    grid = study.StudyConfig(base=base, study_dir=str(tmp_path / "study"), grid=study_grid.Grid(
        ratios=(2.0,), seeds=(0,), baselines=("unbalanced",)))

    def in_process(config, workdir):
        raise AssertionError("a cell with --cpu_devices=2 must not train in this process")

    study.run_study(grid, in_process, log=lambda _: None)
    results = study_report.read_results(tmp_path / "study" / study.RESULTS_CSV)
    assert len(results) == 1
    metrics = json.loads((pathlib.Path(results["workdir"][0]) / "metrics.json").read_text())
    assert metrics["environment"]["replicas"] == 2
    assert pathlib.Path(results["workdir"][0] + ".flags").is_file()
