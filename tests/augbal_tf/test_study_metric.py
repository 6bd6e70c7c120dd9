"""`--metric`: the study compares, decides and ranks by the chosen test metric.

A stand-in trainer writes metrics.json in training's shape (per-class recall/F1, ECE,
shot accuracies) with metrics that disagree on purpose: HorizontalFlip gains balanced
accuracy but loses macro-F1, GaussNoise the other way round; HorizontalFlip also
lowers ECE. No TensorFlow.
"""

import copy
import dataclasses
import json
import pathlib

import pandas as pd
import pytest

from augbal_tf import advise
from augbal_tf import config as config_lib
from augbal_tf import fileio, study, study_adaptive, study_grid, study_metric, study_report, study_stats
from augbal_tf import workdir as workdir_lib

CLASSES = ("tshirt_top", "shirt")
# Per cell: (balanced accuracy gain, macro-F1 gain, ECE change) over the unbalanced baseline.
EFFECTS = {"HorizontalFlip": (0.10, -0.06, -0.05), "GaussNoise": (0.02, 0.08, 0.03)}


def _metrics(config):
    noise = 0.004 * ((config.seed * 7) % 5)  # Paired: the same for every cell of a seed.
    jitter = 0.002 * (config.seed % 3)  # A little per-cell spread, so the t-test has variance.
    gain_ba, gain_f1, ece_change = EFFECTS.get(config.data.augmentation, (0.0, 0.0, 0.0))
    if config.data.strategy == "balanced":
        gain_ba, gain_f1, ece_change = 0.15, 0.05, -0.08
    if gain_ba or gain_f1:
        gain_ba, gain_f1, ece_change = gain_ba + jitter, gain_f1 - jitter, ece_change - jitter
    recall = 0.60 + noise + gain_ba
    f1 = 0.55 + noise + gain_f1
    per_class = {name: {"precision": 0.5, "recall": recall, "f1": f1, "support": 10} for name in CLASSES}
    test = {"accuracy": recall, "balanced_accuracy": recall, "macro_f1": f1, "per_class": per_class,
            "confusion_matrix": [[5, 5], [5, 5]], "expected_calibration_error": 0.20 + noise + ece_change,
            "shot_accuracy": {"many": recall, "medium": None, "few": recall - 0.1}}
    if config.seed == 2 and config.data.strategy == "balanced":
        del test["expected_calibration_error"]  # As an older metrics.json would.
    return {"selected_epoch": 1, "selection": config.selection, "epochs_run": 1, "wall_time_s": 1.0,
            "class_names": list(CLASSES), "validation": test, "test": test,
            "environment": {"packages": {"fake": "1"}}}


def _train(config, workdir):
    workdir_lib.prepare(workdir, config)
    metrics = _metrics(config)
    fileio.write_atomic(pathlib.Path(workdir, workdir_lib.METRICS_FILE), json.dumps(metrics))
    return metrics


def _study(tmp_path, name="study", seeds=(0, 1, 2), base=None, **fields):
    base = base or config_lib.make(source="sample", classes=CLASSES, minority=("shirt",), epochs=1, image_size=32,
                           data_dir=str(tmp_path / "tfds"))
    grid = study_grid.Grid(ratios=study_grid.parse_ratios(("4",)), augmentations=tuple(EFFECTS),
                           seeds=seeds, baselines=("balanced", "unbalanced"))
    return study.StudyConfig(base=base, study_dir=str(tmp_path / name), grid=grid, **fields)


@pytest.fixture(name="trained")
def _trained(tmp_path):
    """A finished default study; other metrics are reported from its cells (`--report_only`)."""
    config = _study(tmp_path)
    study.run_study(config, _train, command="cmd", log=lambda _: None)
    return config


def _report(config, metric):
    study.report_study(dataclasses.replace(config, metric=metric), command="cmd", log=lambda _: None)
    folder = pathlib.Path(config.study_dir)
    summary = pd.read_csv(folder / "summary.csv", dtype={"ratio": str})
    return summary.set_index("cell"), (folder / "summary.md").read_text(), (folder / "report.html").read_text()


def test_results_csv_has_ece_and_shot_columns_nan_where_missing(trained):
    results = study_report.read_results(pathlib.Path(trained.study_dir, study.RESULTS_CSV))
    assert list(results.columns) == list(study.RESULT_COLUMNS)
    for metric in study_metric.METRICS.values():
        assert metric.column in results.columns, metric
    flip = results[(results["cell"] == "aug:HorizontalFlip") & (results["seed"] == 0)].iloc[0]
    assert flip["test_ece"] == pytest.approx(0.15)
    assert flip["test_few_shot_accuracy"] == pytest.approx(0.6)
    assert results["test_medium_shot_accuracy"].isna().all()  # An empty shot group.
    old = results[(results["cell"] == "baseline:balanced") & (results["seed"] == 2)]
    assert old["test_ece"].isna().all()
    assert results["test_ece"].notna().sum() == len(results) - 1


def test_ranking_follows_the_chosen_metric(trained):
    by_ba, md_ba, html_ba = _report(trained, "balanced_accuracy")
    by_f1, md_f1, html_f1 = _report(trained, "macro_f1")
    assert by_ba.loc["aug:HorizontalFlip", "rank"] == 1 and by_ba.loc["aug:GaussNoise", "rank"] == 2
    assert by_f1.loc["aug:GaussNoise", "rank"] == 1 and by_f1.loc["aug:HorizontalFlip", "rank"] == 2
    assert by_ba.loc["aug:HorizontalFlip", "verdict"] == "effective"
    assert by_f1.loc["aug:HorizontalFlip", "verdict"] == "ineffective"
    assert by_f1.loc["aug:GaussNoise", "verdict"] == "effective"
    assert by_f1.loc["aug:GaussNoise", "mean_difference"] == pytest.approx(0.08 - 0.002, abs=1e-9)
    assert by_f1.loc["baseline:unbalanced", "mean"] == pytest.approx(0.55 + 0.004 * (0 + 2 + 4) / 3)
    # The power columns are of the chosen metric's differences too.
    assert by_f1.loc["aug:GaussNoise", "sd_diff"] == pytest.approx(by_ba.loc["aug:HorizontalFlip", "sd_diff"])
    assert "difference in test macro-F1 is significantly" in md_f1
    assert "*mean* is the test macro-F1 averaged" in md_f1 and "`--metric=macro_f1`" in md_f1
    assert "pp test macro-F1 over the unbalanced baseline" in html_f1 and "--metric=macro_f1" in html_f1
    assert "Ranked by the per-ratio mean paired difference in test macro-F1" in md_f1
    assert "Paired differences from the unbalanced baseline in test macro-F1</h2>" in html_f1
    assert "macro-F1" not in md_ba + html_ba and "Metric:" not in md_ba


def test_ece_is_oriented_so_that_lower_is_better_is_effective(trained):
    by_ece, md_ece, _ = _report(trained, "ece")
    flip = by_ece.loc["aug:HorizontalFlip"]
    # Baseline minus cell: 0.05 lower ECE (plus the jitter) is +0.05.
    assert flip["mean_difference"] == pytest.approx(0.05 + 0.002, abs=1e-9) and flip["verdict"] == "effective"
    assert flip["rank"] == 1 and flip["mean"] == pytest.approx(0.15 + 0.004 * 2 - 0.002)
    assert by_ece.loc["aug:GaussNoise", "verdict"] == "ineffective"
    # Gap: the balanced baseline's ECE is lower, so there is a gap to recover, and the oriented fraction is > 0.
    assert by_ece.loc["baseline:balanced", "n_seeds"] == 2  # Its seed-2 run records no ECE.
    assert 0 < flip["gap_fraction"] < 1
    assert "Lower test expected calibration error is better" in md_ece
    assert "not better than the unbalanced one" in md_ece


def test_default_report_is_the_balanced_accuracy_report(trained):
    summary, md, _ = _report(trained, "balanced_accuracy")
    results = study_report.read_results(pathlib.Path(trained.study_dir, study.RESULTS_CSV))
    plain = study_stats.summarize(results).set_index("cell")
    pd.testing.assert_series_equal(summary["mean_difference"], plain["mean_difference"], check_names=False)
    assert "difference in test balanced accuracy is significantly" in md
    assert study_report.rule_text(plain.reset_index()) in md


def test_adaptive_seeds_decide_on_the_chosen_metric(tmp_path):
    settings = study_adaptive.Settings(min_seeds=3, max_seeds=4)
    decided = {}
    for metric in ("balanced_accuracy", "macro_f1"):
        config = _study(tmp_path, name=metric, seeds=settings.seeds, metric=metric, adaptive=settings)
        summary = study.run_study(config, _train, command="cmd", log=lambda _: None).set_index("cell")
        decided[metric] = summary.loc["aug:HorizontalFlip", "verdict"]
        text = pathlib.Path(config.study_dir, "summary.md").read_text()
        assert ("`--metric=macro_f1`" in text) == (metric == "macro_f1")
    assert decided == {"balanced_accuracy": "effective", "macro_f1": "ineffective"}


def test_advise_winner_rule_names_the_metric():
    summary = pd.DataFrame([dict(cell="aug:A", verdict="effective", mean_difference=0.03, ci_low=0.01,
                                 ci_high=0.05, n_seeds=5)])
    results = pd.DataFrame({"cell": ["aug:A"], "wall_time_s": [2.0]})
    assert "points of macro-F1" in advise.choose_winner(summary, results, "macro_f1")[1]
    assert "points of balanced accuracy" in advise.choose_winner(summary, results)[1]
    assert advise.RULE == advise.winner_rule("balanced_accuracy")
    assert "in test balanced accuracy over" in advise.RULE
    assert "in test expected calibration error (baseline minus cell: lower is better)" in advise.winner_rule("ece")


def _flag_values(*args):
    from absl import flags  # pylint: disable=import-outside-toplevel

    from augbal_tf import flags as _  # noqa: F401  pylint: disable=import-outside-toplevel

    values = copy.deepcopy(flags.FLAGS)
    values(["prog", "--source=sample", *args])
    return values


def test_metric_flag_and_bad_values_fail_before_anything_is_written(tmp_path):
    assert study.study_from_flags(_flag_values("--study_dir=/tmp/x")).metric == "balanced_accuracy"
    assert study.study_from_flags(_flag_values("--study_dir=/tmp/x", "--metric=ece")).metric == "ece"
    allowed = "allowed: balanced_accuracy, accuracy, macro_f1, minority_recall, minority_f1, ece"
    with pytest.raises(ValueError, match=f"--metric='f1' is invalid; {allowed}, many_shot_accuracy"):
        study.study_from_flags(_flag_values(f"--study_dir={tmp_path / 'study'}", "--metric=f1"))
    with pytest.raises(ValueError, match="--metric='f1' is invalid"):
        _study(tmp_path, metric="f1")
    with pytest.raises(ValueError, match="--metric='f1' is invalid"):
        advise.advise(config_lib.make(source="sample"), str(tmp_path / "advice"), 5, metric="f1")
    assert not (tmp_path / "study").exists() and not (tmp_path / "advice").exists()


def test_a_metric_no_run_can_record_fails_clearly(trained, tmp_path):
    base = dataclasses.replace(trained.base, data=dataclasses.replace(trained.base.data, minority=None))
    with pytest.raises(ValueError, match="--metric=minority_recall needs --minority"):
        study.run_study(_study(tmp_path, name="no_minority", base=base, metric="minority_recall"), _train,
                        log=lambda _: None)
    assert not (tmp_path / "no_minority").exists()
    # Every run's medium-shot group is empty: the report names the metric instead of an empty table.
    with pytest.raises(ValueError, match="--metric=medium_shot_accuracy: no finished run records "
                                         "test_medium_shot_accuracy"):
        _report(trained, "medium_shot_accuracy")
