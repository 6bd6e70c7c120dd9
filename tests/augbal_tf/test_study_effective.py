"""`--augmentations=effective_from:<study_dir>` (#14): a policy cell from a finished study's summary."""

import dataclasses
import hashlib
import json
import pathlib

import pytest

from augbal_tf import fileio, study, study_effective, study_grid, study_report
from augbal_tf import workdir as workdir_lib

import test_study  # tests/augbal_tf is on sys.path under pytest's default import mode.


class PolicyTrainer(test_study.FakeTrainer):
    """test_study's stand-in, also scoring a policy that draws HorizontalFlip as HorizontalFlip."""

    def __call__(self, config, workdir):
        workdir_lib.prepare(workdir, config)
        data = config.data
        if isinstance(data.augmentation, tuple) and "HorizontalFlip" in data.augmentation:
            data = dataclasses.replace(data, augmentation="HorizontalFlip")
        metrics = test_study._fake_metrics(dataclasses.replace(config, data=data))  # pylint: disable=protected-access
        fileio.write_atomic(pathlib.Path(workdir, workdir_lib.METRICS_FILE), json.dumps(metrics))
        return metrics


def _finished_study(tmp_path, augmentations=("HorizontalFlip", "GaussNoise"), name="source"):
    """A study run by the real study code on test_study's stand-in trainer (HorizontalFlip scores +0.1)."""
    config = dataclasses.replace(test_study._study(tmp_path, augmentations=augmentations),  # pylint: disable=protected-access
                                 study_dir=str(tmp_path / name))
    summary = study.run_study(config, test_study.FakeTrainer(), log=lambda _: None)
    return config, summary


def test_the_policy_is_the_effective_transforms_of_the_summary(tmp_path):
    _, summary = _finished_study(tmp_path)
    verdicts = dict(zip(summary["cell"], summary["verdict"]))
    assert verdicts["aug:HorizontalFlip"] == "effective" and verdicts["aug:GaussNoise"] != "effective"
    summary_bytes = (tmp_path / "source" / study_report.SUMMARY_CSV).read_bytes()
    digest = hashlib.sha256(summary_bytes).hexdigest()
    (policy,) = study_grid.resolve_augmentations([f"effective_from:{tmp_path / 'source'}", "GaussNoise"])[:1]
    assert policy.transforms == ("HorizontalFlip",)
    assert policy.name == f"effective_from_source_{digest[:8]}" and policy.summary_sha256 == digest
    # Resolving again gives the same entry (the cell name and dataset hash are stable).
    assert study_grid.resolve_augmentations([f"effective_from:{tmp_path / 'source'}/"])[0] == policy


def test_a_policy_cell_trains_the_builders_policy_and_records_its_provenance(tmp_path):
    _finished_study(tmp_path)
    entries = study_grid.resolve_augmentations([f"effective_from:{tmp_path / 'source'}", "GaussNoise"])
    config = dataclasses.replace(test_study._study(tmp_path, augmentations=entries),  # pylint: disable=protected-access
                                 study_dir=str(tmp_path / "next"))
    policy = entries[0]
    cells = [cell for cell in study.expand_grid(config) if cell.seed == 0]
    by_label = {cell.label: cell for cell in cells}
    cell = by_label[f"aug:{policy.name}"]
    assert cell.config.data.strategy == "oversample_augment"
    assert cell.config.data.augmentation == ("HorizontalFlip",)  # a policy: one name per generated image
    assert cell.workdir.endswith(f"aug_{policy.name}/seed_0")
    assert by_label["aug:GaussNoise"].config.data.augmentation == "GaussNoise"
    study.run_study(config, PolicyTrainer(), log=lambda _: None)
    recorded = json.loads((tmp_path / "next" / study_effective.PROVENANCE_FILE).read_text())
    assert recorded == {policy.name: {
        "transforms": ["HorizontalFlip"], "study_dir": str(tmp_path / "source"),
        "summary_csv_sha256": policy.summary_sha256, "choice": "one per generated image, uniform",
        "params": "augstatic defaults"}}
    results = study_report.read_results(tmp_path / "next" / study.RESULTS_CSV)
    assert set(results.loc[results["cell"] == f"aug:{policy.name}", "augmentation"]) == {"HorizontalFlip"}
    # A policy cell of this study expands to its transforms when a third study reads this one.
    summary = study_report.read_results(tmp_path / "next" / study_report.SUMMARY_CSV)
    assert summary.loc[summary["cell"] == f"aug:{policy.name}", "verdict"].item() == "effective"
    assert study_effective.resolve(f"effective_from:{tmp_path / 'next'}").transforms == ("HorizontalFlip",)


def test_a_changed_summary_is_a_new_cell(tmp_path):
    _finished_study(tmp_path)
    before = study_effective.resolve(f"effective_from:{tmp_path / 'source'}")
    path = tmp_path / "source" / study_report.SUMMARY_CSV
    path.write_text(path.read_text() + "\n")
    after = study_effective.resolve(f"effective_from:{tmp_path / 'source'}")
    assert after.transforms == before.transforms and after.name != before.name


def test_clear_errors_name_the_study_folder(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(ValueError, match=f"--augmentations=effective_from:{missing}: {missing} is not a study "
                                         r"folder \(no such folder\)"):
        study_grid.resolve_augmentations([f"effective_from:{missing}"])
    (tmp_path / "photos").mkdir()
    with pytest.raises(ValueError, match=f"{tmp_path / 'photos'} is not a study folder \\(it has no results.csv"):
        study_grid.resolve_augmentations([f"effective_from:{tmp_path / 'photos'}"])
    with pytest.raises(ValueError, match="give the folder of a finished study"):
        study_grid.resolve_augmentations(["effective_from:"])

    _finished_study(tmp_path, augmentations=("GaussNoise",), name="nothing")
    with pytest.raises(ValueError, match=f"the study in {tmp_path / 'nothing'} found no effective augmentation "
                                         r"\(aug:GaussNoise neutral at ratio 4\)"):
        study_grid.resolve_augmentations([f"effective_from:{tmp_path / 'nothing'}"])

    _finished_study(tmp_path, name="unfinished")
    (tmp_path / "unfinished" / study_report.SUMMARY_CSV).unlink()
    with pytest.raises(ValueError, match=f"the study in {tmp_path / 'unfinished'} has no finished summary"):
        study_grid.resolve_augmentations([f"effective_from:{tmp_path / 'unfinished'}"])
    (tmp_path / "unfinished" / study_report.SUMMARY_CSV).write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"summary.csv is not a study summary"):
        study_grid.resolve_augmentations([f"effective_from:{tmp_path / 'unfinished'}"])


def test_the_study_flag_reaches_the_grid(tmp_path):
    import copy  # pylint: disable=import-outside-toplevel

    from absl import flags  # pylint: disable=import-outside-toplevel

    from augbal_tf import flags as _  # noqa: F401  pylint: disable=import-outside-toplevel

    _finished_study(tmp_path)
    values = copy.deepcopy(flags.FLAGS)
    values(["prog", "--source=sample", f"--study_dir={tmp_path / 'next'}",
            f"--augmentations=effective_from:{tmp_path / 'source'},GaussNoise"])
    entry, name = study.study_from_flags(values).grid.augmentations
    assert isinstance(entry, study_effective.EffectivePolicy) and entry.transforms == ("HorizontalFlip",)
    assert name == "GaussNoise"
    assert not (tmp_path / "next").exists()  # Resolving writes nothing.
