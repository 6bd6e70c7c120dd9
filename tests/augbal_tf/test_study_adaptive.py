"""`--seeds=auto` (augbal_tf.study_adaptive) with a stand-in trainer: rounds, stops, resume, report.

The stand-in writes a metrics.json shaped like training's (as in test_study.py); its
scores are the unbalanced baseline's seed noise plus a per-cell effect and noise, so
the paired differences are known: balanced +20 points and HorizontalFlip +10 points
(tiny spread: effective at the first look), Transpose 0 +- 0.1 point (futile at
the first look), GaussNoise 0 +- 3 points (open until the last look).
"""

import copy
import json
import pathlib
import zlib

import numpy as np
import pandas as pd
import pytest

from augbal_tf import config as config_lib
from augbal_tf import fileio, study, study_adaptive, study_grid, study_report, study_sequential
from augbal_tf import report_html, study_power
from augbal_tf import workdir as workdir_lib

CLASSES = ("tshirt_top", "shirt")
# label: (true paired difference, its own noise sd)
EFFECTS = {"baseline:balanced": (0.20, 0.002), "aug:HorizontalFlip": (0.10, 0.0005),
           "aug:Transpose": (0.0, 0.001), "aug:GaussNoise": (0.0, 0.03)}
CELL_SECONDS = 60.0


def _label(config):
    augmentation = config.data.augmentation
    return f"aug:{augmentation}" if augmentation else f"baseline:{config.data.strategy}"


def _noise(label, seed):
    return float(np.random.default_rng([seed, zlib.crc32(label.encode())]).standard_normal())


class FakeTrainer:
    """Counts trained workdirs; raises KeyboardInterrupt (a kill) at training number `kill_at`."""

    def __init__(self, kill_at=None):
        self.trained = []
        self.kill_at = kill_at

    def __call__(self, config, workdir):
        if self.kill_at is not None and len(self.trained) + 1 == self.kill_at:
            raise KeyboardInterrupt("simulated kill")
        workdir_lib.prepare(workdir, config)
        self.trained.append(workdir)
        label = _label(config)
        effect, sd = EFFECTS.get(label, (0.0, 0.0))
        score = 0.6 + 0.03 * _noise("reference", config.seed) + effect + sd * _noise(label, config.seed)
        per_class = {name: {"precision": score, "recall": score, "f1": score, "support": 10}
                     for name in CLASSES}
        split = {"accuracy": score, "balanced_accuracy": score, "per_class": per_class,
                 "confusion_matrix": [[5, 5], [5, 5]]}
        metrics = {"selected_epoch": 1, "selection": "validation", "epochs_run": 1,
                   "wall_time_s": CELL_SECONDS, "validation": split, "test": split,
                   "environment": {"packages": {"fake": "1"}}}
        fileio.write_atomic(pathlib.Path(workdir, workdir_lib.METRICS_FILE), json.dumps(metrics))
        return metrics


def _study(study_dir, augmentations=("HorizontalFlip", "Transpose", "GaussNoise"), **settings):
    settings = study_adaptive.Settings(**{"min_seeds": 3, "max_seeds": 5, **settings})
    base = config_lib.make(source="sample", classes=CLASSES, minority=("shirt",), epochs=1, image_size=32,
                           data_dir=str(pathlib.Path(study_dir).parent / "tfds"))
    grid = study_grid.Grid(ratios=(4.0,), baselines=("balanced", "unbalanced"), augmentations=augmentations,
                           seeds=settings.seeds)
    return study.StudyConfig(base=base, study_dir=str(study_dir), grid=grid, adaptive=settings)


def _seeds_by_cell(study_dir):
    results = study_report.read_results(pathlib.Path(study_dir, study.RESULTS_CSV))
    return {cell: sorted(group["seed"]) for cell, group in results.groupby("cell")}


def _status(summary):
    return {row.cell: (row.sequential, row.look, row.look_seeds) for row in summary.itertuples()}


def test_effective_and_futile_cells_stop_early_the_open_one_and_its_reference_go_on(tmp_path):
    trainer = FakeTrainer()
    summary = study.run_study(_study(tmp_path / "study"), trainer, command="python -m augbal_tf.study "
                              "--seeds=auto", log=lambda _: None)
    status = _status(summary)
    assert status["baseline:balanced"] == ("effective", 1, 3)
    assert status["aug:HorizontalFlip"] == ("effective", 1, 3)
    assert status["aug:Transpose"] == ("futile", 1, 3)
    assert status["aug:GaussNoise"][0] == "neutral" and status["aug:GaussNoise"][1:] == (3, 5)
    assert status["baseline:unbalanced"][0] == "reference"
    # Only the open comparison and the reference it is paired with got seeds 3 and 4.
    seeds = _seeds_by_cell(tmp_path / "study")
    assert seeds == {"baseline:balanced": [0, 1, 2], "aug:HorizontalFlip": [0, 1, 2],
                     "aug:Transpose": [0, 1, 2], "aug:GaussNoise": list(range(5)),
                     "baseline:unbalanced": list(range(5))}
    assert len(trainer.trained) == 19  # Fixed grid of 5 seeds: 25.
    verdicts = dict(zip(summary["cell"], summary["verdict"]))
    assert verdicts["aug:Transpose"] == "neutral" and verdicts["aug:HorizontalFlip"] == "effective"
    assert summary["p_holm"].isna().all()
    # The decisions are the design's own on the recorded paired differences.
    results = study_report.read_results(tmp_path / "study" / study.RESULTS_CSV)
    scores = results.pivot(index="seed", columns="cell", values="test_balanced_accuracy")
    differences = {cell: (scores[cell] - scores["baseline:unbalanced"]).dropna().to_numpy()
                   for cell in scores if cell != "baseline:unbalanced"}
    decisions = study_sequential.SequentialDesign(min_seeds=3, max_seeds=5).decide(differences, 2)
    assert {cell: d.status for cell, d in decisions.items()} == {
        cell: s[0] for cell, s in status.items() if cell != "baseline:unbalanced"}

    text = (tmp_path / "study" / "summary.md").read_text()
    assert "## Adaptive seeds" in text and "Lan & DeMets 1983" in text
    assert "Runs: 19 of the 25 that a fixed grid of 5 seeds (--max_seeds) would train (24 % fewer)." in text
    assert "Stopped (max seeds) at the last look (5 seeds)" in text
    assert "| futile | 1 (3 seeds) |" in text and "| neutral | 3 (5 seeds) |" in text
    csv = pd.read_csv(tmp_path / "study" / "summary.csv")
    assert {"sequential", "look", "look_seeds", "t", "boundary"} <= set(csv.columns)
    page = (tmp_path / "study" / report_html.REPORT_HTML).read_text()
    assert "<th>status</th><th>look (seeds)</th>" in page and "<td>futile</td>" in page
    assert "Stopped (max seeds)" in page and "Hwang, Shih &amp; DeCani 1990" in page


def test_all_decided_stops_at_the_first_look(tmp_path):
    trainer = FakeTrainer()
    study.run_study(_study(tmp_path / "study", augmentations=("HorizontalFlip", "Transpose")), trainer,
                    log=lambda _: None)
    assert len(trainer.trained) == 12
    text = (tmp_path / "study" / "summary.md").read_text()
    assert "Stopped (all decided) at look 1 of 3: every comparison is decided." in text


def test_the_budget_stops_before_a_round_that_would_not_fit(tmp_path):
    # Round 1: 15 cells of 60 s = 15 min; the next round adds 2 cells (GaussNoise + its reference).
    trainer = FakeTrainer()
    summary = study.run_study(_study(tmp_path / "study", budget_minutes=16.5), trainer, log=lambda _: None)
    assert len(trainer.trained) == 15
    assert _status(summary)["aug:GaussNoise"] == ("open", 1, 3)
    assert dict(zip(summary["cell"], summary["verdict"]))["aug:GaussNoise"] == "neutral"
    text = (tmp_path / "study" / "summary.md").read_text()
    assert ("Stopped (budget) after look 1 of 3: the next round (look 2, 4 seeds: 2 cells at the measured "
            "mean of 60 s per cell, about 2.0 min) would take the cells' summed training time from 15.0 to "
            "17.0 min, past --budget_minutes=16.5") in text
    # A larger budget fits one more round (15 + 2 = 17 <= 18.5), not the next (19).
    more = FakeTrainer()
    study.run_study(_study(tmp_path / "study", budget_minutes=18.5), more, log=lambda _: None)
    assert len(more.trained) == 2
    assert "Stopped (budget) after look 2 of 3" in (tmp_path / "study" / "summary.md").read_text()


def test_a_killed_study_resumes_with_the_same_decisions_and_cells(tmp_path):
    whole = FakeTrainer()
    study.run_study(_study(tmp_path / "a" / "study"), whole, log=lambda _: None)
    first = FakeTrainer(kill_at=18)  # Round 3's first cell (rounds: 15 cells, then 2 each).
    with pytest.raises(KeyboardInterrupt):
        study.run_study(_study(tmp_path / "b" / "study"), first, log=lambda _: None)
    assert "Not finished: look 3 needs 2 more cell(s)" in (tmp_path / "b" / "study" / "summary.md").read_text()
    second = FakeTrainer()
    study.run_study(_study(tmp_path / "b" / "study"), second, log=lambda _: None)

    def relative(trainer, root):
        return [str(pathlib.Path(w).relative_to(root)) for w in trainer.trained]

    assert relative(first, tmp_path / "b") + relative(second, tmp_path / "b") == relative(whole, tmp_path / "a")
    for name in ("summary.csv", "summary.md"):
        assert (tmp_path / "a" / "study" / name).read_bytes() == (tmp_path / "b" / "study" / name).read_bytes()


def _flag_values(*args):
    from absl import flags  # pylint: disable=import-outside-toplevel

    from augbal_tf import flags as _  # noqa: F401  pylint: disable=import-outside-toplevel

    values = copy.deepcopy(flags.FLAGS)
    values(["prog", "--source=sample", *args])
    return values


@pytest.mark.parametrize("args, message", [
    (["--seeds=auto", "--min_seeds=2"], "--min_seeds=2 is invalid; allowed: >= 3"),
    (["--seeds=auto", "--min_seeds=5", "--max_seeds=4"], "--max_seeds=4 is invalid; allowed: >= --min_seeds=5"),
    (["--seeds=auto,3"], "auto cannot be mixed with seed numbers"),
    (["--seeds=0,1,2", "--max_seeds=6"], "--max_seeds applies to the study only with --seeds=auto"),
    (["--seeds=auto", "--budget_minutes=-1"], "--budget_minutes=-1 is invalid"),
    (["--seeds=auto", "--target_effect=0"], "--target_effect=0 is invalid"),
    (["--seeds=auto", "--baselines=unbalanced"], "needs at least one cell to compare"),
])
def test_bad_flags_fail_before_anything_is_written(tmp_path, args, message):
    values = _flag_values(f"--study_dir={tmp_path / 'study'}", *args)
    with pytest.raises(ValueError, match=message):
        study.run_study(study.study_from_flags(values), FakeTrainer(), log=lambda _: None)
    assert not (tmp_path / "study").exists()


def test_auto_flags_reach_the_study_and_the_budget_only_when_given():
    config = study.study_from_flags(_flag_values("--study_dir=/tmp/x", "--seeds=auto", "--max_seeds=5"))
    assert config.adaptive == study_adaptive.Settings(min_seeds=3, max_seeds=5, budget_minutes=0.0)
    assert config.grid.seeds == (0, 1, 2, 3, 4)
    config = study.study_from_flags(_flag_values("--study_dir=/tmp/x", "--seeds=AUTO", "--budget_minutes=45",
                                                 "--target_effect=0.05"))
    assert config.adaptive.budget_minutes == 45 and config.target_effect == 0.05
    assert study.study_from_flags(_flag_values("--study_dir=/tmp/x", "--seeds=0,1,2")).adaptive is None


def test_fixed_seeds_write_the_same_files_as_the_plain_report_path(tmp_path):
    values = _flag_values(f"--study_dir={tmp_path / 'study'}", "--seeds=0,1,2", "--ratios=4",
                          "--augmentations=HorizontalFlip,GaussNoise", "--classes=tshirt_top,shirt",
                          "--minority=shirt", f"--data_dir={tmp_path / 'tfds'}")
    config = study.study_from_flags(values)
    trainer = FakeTrainer()
    study.run_study(config, trainer, command="cmd", log=lambda _: None)
    assert len(trainer.trained) == 12
    # The report exactly as run_study wrote it before --seeds=auto existed.
    results = study_report.read_results(tmp_path / "study" / study.RESULTS_CSV)
    assert list(results.columns) == list(study.RESULT_COLUMNS)
    environment = {"packages": {"fake": "1"}}
    summary = study_report.write_report(results, tmp_path / "plain", command="cmd", environment=environment,
                                        title="augbal study: study", failures=(), missing=0)
    # The page also says, per ratio, what neutral means (and whether that leaves the answer open).
    report_html.write_html_report(tmp_path / "plain", results=results, summary=summary, command="cmd",
                                  environment=environment, title="augbal study: study", failures=(), missing=0,
                                  power_sentences=list(study_power.neutral_sentences(summary).values()),
                                  undecided=study_power.undecided_ratios(study_power.neutral_sentences(summary)))
    for name in ("summary.csv", "summary.md", "report.html"):
        assert (tmp_path / "study" / name).read_bytes() == (tmp_path / "plain" / name).read_bytes(), name
    assert "sequential" not in (tmp_path / "study" / "summary.csv").read_text()
