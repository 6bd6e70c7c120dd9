"""`--screen=K` (augbal_tf.study_screening_step) in a tiny real study: kept top K, resume, report.

3 candidate augmentations, --screen=2, one ratio, one seed, 1 epoch at 32 px: the screen
trains the clean reference and the 3 candidates' cells, the grid then adds only the
unbalanced baseline (the 2 kept cells are finished by the screen).
"""

import json
import os
import pathlib

import numpy as np
import pandas as pd
import pytest

from augbal_tf import config as config_lib
from augbal_tf import report_html, study, study_grid, study_report, study_screening_step

pytestmark = pytest.mark.slow

AUGMENTATIONS = ("HorizontalFlip", "GaussNoise", "Transpose")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class CountingTrainer:
    """The real `train_and_evaluate`, recording each workdir it trains."""

    def __init__(self):
        from augbal_tf import train

        self.train = train.train_and_evaluate
        self.workdirs = []

    def __call__(self, config, workdir):
        self.workdirs.append(workdir)
        return self.train(config, workdir)


def _base(tmp_path):
    return config_lib.make(source="sample", classes=("tshirt_top", "shirt"), minority=("shirt",),
                           train_per_class=40, validation_per_class=10, test_per_class=16, image_size=32,
                           epochs=1, batch_size=16, log_images=0, data_dir=str(tmp_path / "tfds"))


def _study(tmp_path, **kwargs):
    grid = study_grid.Grid(ratios=(4.0,), baselines=("unbalanced",), augmentations=AUGMENTATIONS, seeds=(0,))
    return study.StudyConfig(base=_base(tmp_path), study_dir=str(tmp_path / "study"), grid=grid, **kwargs)


def _top_two(candidates: dict) -> list[str]:
    """The rule recomputed here: z-scores (ddof 0) summed, highest first, ties by name."""
    names = sorted(candidates)
    values = np.array([[candidates[n]["affinity"], candidates[n]["diversity"]] for n in names])
    z = [(c - c.mean()) / c.std() if c.std() else np.zeros_like(c) for c in values.T]
    score = dict(zip(names, z[0] + z[1]))
    return sorted(names, key=lambda n: (-round(score[n], 9), n))[:2]


def test_screen_keeps_the_top_two_resumes_and_reports(tmp_path):
    config = _study(tmp_path, screen=2)
    first = CountingTrainer()
    summary = study.run_study(config, first, log=lambda _: None)
    study_dir = tmp_path / "study"
    record = json.loads((study_dir / study_screening_step.SCREEN_JSON).read_text())
    candidates = record["candidates"]
    assert sorted(candidates) == sorted(AUGMENTATIONS)
    kept = _top_two(candidates)
    assert sorted(record["kept"]) == sorted(kept) and record["k"] == 2

    # The measures come from the runs: diversity is the ratio of their last training losses.
    reference = json.loads((pathlib.Path(record["reference"]["workdir"]) / "metrics.json").read_text())
    for name, measures in candidates.items():
        run = json.loads((pathlib.Path(measures["workdir"]) / "metrics.json").read_text())
        assert measures["diversity"] == pytest.approx(
            run["history"][-1]["train"]["loss"] / reference["history"][-1]["train"]["loss"])
        assert 0 <= measures["augmented_validation_accuracy"] <= 1
        assert measures["affinity"] == pytest.approx(
            measures["augmented_validation_accuracy"] / record["reference"]["clean_validation_accuracy"])
    assert reference["config"]["sampling"] == "oversample_random" and reference["config"]["export"]
    # Its exported model on the clean validation images scores what training measured.
    assert record["reference"]["clean_validation_accuracy"] == pytest.approx(reference["validation"]["accuracy"])

    # Trained: the reference, the 3 candidates, then only the unbalanced baseline of the grid.
    assert len(first.workdirs) == 5
    results = study_report.read_results(study_dir / study.RESULTS_CSV)
    assert sorted(results["cell"]) == sorted(["baseline:unbalanced", *(f"aug:{a}" for a in kept)])
    assert set(summary["cell"]) == set(results["cell"])
    cut = (set(AUGMENTATIONS) - set(kept)).pop()
    screen_csv = pd.read_csv(study_dir / study_screening_step.SCREEN_CSV)
    assert screen_csv.set_index("augmentation")["kept"].to_dict() == {a: a in kept for a in AUGMENTATIONS}

    # The report: the section, every candidate named, the scatter.
    markdown = (study_dir / study_report.SUMMARY_MD).read_text()
    assert "## Screening" in markdown and "screen.png" in markdown
    assert all(f"| {a} |" in markdown for a in AUGMENTATIONS) and f"| {cut} |" in markdown
    assert (study_dir / study_screening_step.SCREEN_PNG).read_bytes().startswith(PNG_SIGNATURE)
    page = (study_dir / report_html.REPORT_HTML).read_text()
    section = page[page.index('<section id="screening"'):]
    section = section[:section.index("</section>")]
    assert "<img " in section and all(a in section for a in AUGMENTATIONS) and "cut" in section

    # Resumed: nothing retrained, nothing re-screened, the same decision and results.
    before = {name: (study_dir / name).read_bytes()
              for name in (study_screening_step.SCREEN_JSON, study.RESULTS_CSV, study_report.SUMMARY_CSV)}
    again = CountingTrainer()
    study.run_study(config, again, log=lambda _: None)
    assert again.workdirs == []
    for name, content in before.items():
        assert (study_dir / name).read_bytes() == content, name

    # --report_only reuses the recorded screen; other candidates have none to reuse.
    study.report_study(config, log=lambda _: None)
    assert (study_dir / study_report.SUMMARY_CSV).read_bytes() == before[study_report.SUMMARY_CSV]
    other = study.StudyConfig(base=config.base, study_dir=config.study_dir, screen=1, grid=study_grid.Grid(
        ratios=(4.0,), baselines=("unbalanced",), augmentations=("HorizontalFlip", "Blur"), seeds=(0,)))
    with pytest.raises(ValueError, match="screen.json is missing or measured other"):
        study.report_study(other, log=lambda _: None)


def _flag_values(*args):
    import copy

    from absl import flags

    from augbal_tf import flags as _  # noqa: F401  pylint: disable=import-outside-toplevel

    values = copy.deepcopy(flags.FLAGS)
    values(["prog", "--source=sample", *args])
    return values


@pytest.mark.parametrize("args, match", [
    (["--screen=-1", "--augmentations=HorizontalFlip,GaussNoise"], "--screen=-1 is invalid"),
    (["--screen=2"], "needs --augmentations"),
    (["--screen=1", "--augmentations=HorizontalFlip,GaussNoise", "--num_shards=2"],
     "--num_shards > 1 is not supported"),
])
def test_bad_screen_fails_before_anything_is_written(tmp_path, args, match):
    with pytest.raises(ValueError, match=match):
        study.run_study(study.study_from_flags(_flag_values(f"--study_dir={tmp_path / 'study'}", *args)),
                        CountingTrainer(), log=lambda _: None)
    assert not (tmp_path / "study").exists()


def test_screen_flag_reaches_the_study_config_and_works_with_auto_seeds():
    values = _flag_values("--study_dir=/tmp/x", "--augmentations=HorizontalFlip,GaussNoise,Blur", "--screen=2",
                          "--seeds=auto")
    config = study.study_from_flags(values)
    assert config.screen == 2 and config.adaptive is not None
    assert study.study_from_flags(_flag_values("--study_dir=/tmp/x")).screen == 0
