"""Online augmentation cells of the study (#14): unbalanced sampling + a transform applied every epoch."""

import dataclasses
import json
import pathlib

import pytest

from augbal_tf import fileio
from augbal_tf import study, study_grid, study_report, study_stats
from augbal_tf import workdir as workdir_lib

import test_study  # tests/augbal_tf is on sys.path under pytest's default import mode.


class OnlineTrainer:
    """The stand-in trainer of test_study, scoring RandAugment cells 0.04 higher."""

    def __init__(self):
        self.configs = []

    def __call__(self, config, workdir):
        workdir_lib.prepare(workdir, config)
        self.configs.append(config)
        metrics = test_study._fake_metrics(config)  # pylint: disable=protected-access
        if config.online_augmentation == "RandAugment":
            for split in ("validation", "test"):
                metrics[split] = {**metrics[split], "balanced_accuracy": metrics[split]["balanced_accuracy"] + 0.04}
        fileio.write_atomic(pathlib.Path(workdir, workdir_lib.METRICS_FILE), json.dumps(metrics))
        return metrics


def _online_study(tmp_path, names, **base_fields):
    # pylint: disable-next=protected-access
    config = test_study._study(tmp_path, augmentations=(), baselines=("unbalanced",))
    return dataclasses.replace(config, grid=dataclasses.replace(config.grid, online_augmentations=names),
                               base=test_study.config_lib.replace(config.base, **base_fields))


def test_online_cells_train_unbalanced_with_the_online_transform(tmp_path):
    names = study_grid.resolve_online_augmentations(["randaugment", " trivialaugmentwide", "RandAugment", ""])
    assert names == ("RandAugment", "TrivialAugmentWide")
    # A base that sets a sampler: the cells still train without re-sampling, only their own transform.
    config = _online_study(tmp_path, names, sampler="class_balanced")
    cells = study.expand_grid(config)
    first_seed = {cell.label: cell.config for cell in cells if cell.seed == 0}
    assert list(first_seed) == ["baseline:unbalanced", "online:RandAugment", "online:TrivialAugmentWide"]
    for label, cell_config in first_seed.items():
        assert cell_config.data.strategy == "unbalanced" and cell_config.data.augmentation is None, label
        assert cell_config.sampler == "none" and cell_config.online_classes == "all", label
    assert first_seed["baseline:unbalanced"].online_augmentation == ""
    assert first_seed["online:TrivialAugmentWide"].online_augmentation == "TrivialAugmentWide"
    assert cells[1].workdir.endswith("online_RandAugment/seed_0")


def test_online_cells_are_compared_with_the_unbalanced_baseline_of_their_seed(tmp_path):
    config = _online_study(tmp_path, ("RandAugment", "HorizontalFlip"))
    trainer = OnlineTrainer()
    summary = study.run_study(config, trainer, log=lambda _: None)
    assert len(trainer.configs) == 3 * len(config.grid.seeds)
    rows = {row.cell: row for row in summary.itertuples()}
    assert rows["online:RandAugment"].kind == "online"
    assert rows["online:RandAugment"].mean_difference == pytest.approx(0.04)
    assert rows["online:RandAugment"].verdict == "effective"
    assert rows["online:HorizontalFlip"].mean_difference == pytest.approx(0.0)
    results = study_report.read_results(tmp_path / "study" / study.RESULTS_CSV)
    assert sorted(results["cell"].unique()) == ["baseline:unbalanced", "online:HorizontalFlip", "online:RandAugment"]


def test_online_names_and_kind():
    assert study_stats.cell_kind("online:RandAugment") == "online"
    with pytest.raises(ValueError, match="--online_augmentations: "):
        study_grid.resolve_online_augmentations(["NoSuchPolicy"])
    with pytest.raises(ValueError, match="'online:<augmentation>'"):
        study_stats.cell_kind("offline:RandAugment")


def test_the_study_flags_reach_the_grid():
    import copy  # pylint: disable=import-outside-toplevel

    from absl import flags  # pylint: disable=import-outside-toplevel

    from augbal_tf import flags as _  # noqa: F401  pylint: disable=import-outside-toplevel
    from augbal_tf import study  # pylint: disable=import-outside-toplevel

    values = copy.deepcopy(flags.FLAGS)
    values(["prog", "--source=sample", "--study_dir=/tmp/x", "--online_augmentations=randaugment",
            "--remedies=logit_adjusted"])
    grid = study.study_from_flags(values).grid
    assert grid.online_augmentations == ("RandAugment",) and grid.remedies == ("logit_adjusted",)


def test_paired_online_cells_sample_or_oversample_beside_the_transform(tmp_path):
    names = study_grid.resolve_online_augmentations(
        ["randaugment+class_balanced", "RandAugment+Square_Root", "augmix+oversample_random",
         "trivialaugmentwide+minority", "randaugment"])
    assert names == ("RandAugment+class_balanced", "RandAugment+square_root", "AugMix+oversample_random",
                     "TrivialAugmentWide+minority", "RandAugment")
    cells = study.expand_grid(_online_study(tmp_path, names))
    first_seed = {cell.label: cell for cell in cells if cell.seed == 0}
    expected = {  # label: (strategy, online transform, sampler, online classes)
        "online:RandAugment+class_balanced": ("unbalanced", "RandAugment", "class_balanced", "all"),
        "online:RandAugment+square_root": ("unbalanced", "RandAugment", "square_root", "all"),
        "online:AugMix+oversample_random": ("oversample_random", "AugMix", "none", "all"),
        "online:TrivialAugmentWide+minority": ("oversample_random", "TrivialAugmentWide", "none", "minority"),
        "online:RandAugment": ("unbalanced", "RandAugment", "none", "all"),
        "baseline:unbalanced": ("unbalanced", "", "none", "all"),
    }
    assert {label: (cell.config.data.strategy, cell.config.online_augmentation, cell.config.sampler,
                    cell.config.online_classes) for label, cell in first_seed.items()} == expected
    assert first_seed["online:RandAugment+class_balanced"].workdir.endswith(
        "online_RandAugment+class_balanced/seed_0")
    assert study_stats.cell_kind("online:RandAugment+class_balanced") == "online"


@pytest.mark.parametrize("name, message", [
    ("randaugment+balanced", r"'randaugment\+balanced' pairs the transform with 'balanced'; allowed after '\+': "
                             r"class_balanced, square_root, oversample_random, minority"),
    ("NoSuchPolicy+class_balanced", "--online_augmentations: "),
])
def test_bad_online_pairings_name_the_flag_and_the_choices(name, message):
    with pytest.raises(ValueError, match=message):
        study_grid.resolve_online_augmentations([name])
