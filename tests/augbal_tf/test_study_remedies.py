"""Remedy cells of the study (#13): unbalanced sampling + one remedy's training fields."""

import dataclasses
import json
import pathlib

import pytest

from augbal_tf import fileio
from augbal_tf import study, study_grid, study_report, study_stats
from augbal_tf import workdir as workdir_lib

import test_study  # tests/augbal_tf is on sys.path under pytest's default import mode.


class RemedyTrainer:
    """The stand-in trainer of test_study, scoring logit-adjusted cells 0.05 higher."""

    def __init__(self):
        self.configs = []

    def __call__(self, config, workdir):
        workdir_lib.prepare(workdir, config)
        self.configs.append(config)
        metrics = test_study._fake_metrics(config)  # pylint: disable=protected-access
        if config.loss == "logit_adjusted":
            for split in ("validation", "test"):
                metrics[split] = {**metrics[split], "balanced_accuracy": metrics[split]["balanced_accuracy"] + 0.05}
        fileio.write_atomic(pathlib.Path(workdir, workdir_lib.METRICS_FILE), json.dumps(metrics))
        return metrics


def _remedy_study(tmp_path, remedies, **base_fields):
    config = test_study._study(tmp_path, augmentations=(), baselines=("unbalanced",))  # pylint: disable=protected-access
    return dataclasses.replace(config, grid=dataclasses.replace(config.grid, remedies=remedies),
                               base=test_study.config_lib.replace(config.base, **base_fields))


def test_remedy_cells_train_unbalanced_with_the_remedy_fields(tmp_path):
    config = _remedy_study(tmp_path, study_grid.resolve_remedies(["all"]), epochs=10, loss="focal",
                           focal_gamma=1.0)
    cells = study.expand_grid(config)
    first_seed = {cell.label: cell.config for cell in cells if cell.seed == 0}
    assert list(first_seed) == ["baseline:unbalanced", *(f"remedy:{name}" for name in study_grid.REMEDIES)]
    for label, cell_config in first_seed.items():
        assert cell_config.data.strategy == "unbalanced" and cell_config.class_weight == "none", label
    assert first_seed["remedy:ldam_drw"].loss == "ldam" and first_seed["remedy:ldam_drw"].drw_epoch == 8
    # The base --loss trains every cell that sets no loss of its own, the baseline included.
    assert first_seed["baseline:unbalanced"].loss == "focal"
    assert first_seed["remedy:posthoc"].loss == "focal" and first_seed["remedy:posthoc"].posthoc_tau == 1.0
    assert first_seed["remedy:mixup"].mix == "mixup" and first_seed["remedy:mixup"].loss == "focal"
    assert first_seed["remedy:logit_adjusted"].loss == "logit_adjusted"
    assert first_seed["remedy:focal"].focal_gamma == 1.0  # Remedy parameters come from the base.
    assert all(cfg.drw_epoch == 0 for label, cfg in first_seed.items() if label != "remedy:ldam_drw")
    assert cells[1].workdir.endswith("ratio_4/remedy_logit_adjusted/seed_0")


def test_remedy_cells_are_compared_with_the_unbalanced_baseline_of_their_seed(tmp_path):
    config = _remedy_study(tmp_path, ("logit_adjusted", "posthoc"))
    trainer = RemedyTrainer()
    summary = study.run_study(config, trainer, log=lambda _: None)
    assert len(trainer.configs) == 9
    rows = {row.cell: row for row in summary.itertuples()}
    assert rows["remedy:logit_adjusted"].kind == "remedy"
    assert rows["remedy:logit_adjusted"].mean_difference == pytest.approx(0.05)
    assert rows["remedy:logit_adjusted"].verdict == "effective"
    assert rows["remedy:posthoc"].mean_difference == pytest.approx(0.0)
    results = study_report.read_results(tmp_path / "study" / study.RESULTS_CSV)
    assert sorted(results["cell"].unique()) == ["baseline:unbalanced", "remedy:logit_adjusted", "remedy:posthoc"]


def test_remedy_names_and_kind():
    assert study_stats.cell_kind("remedy:ldam_drw") == "remedy"
    assert study_grid.resolve_remedies(["posthoc", " focal", ""]) == ("focal", "posthoc")
    with pytest.raises(ValueError, match=r"--remedies='cutmix' has unknown name\(s\) \['cutmix'\]"):
        study_grid.resolve_remedies(["cutmix"])
    with pytest.raises(ValueError, match="--remedies=ldam_drw needs --epochs >= 2"):
        study_grid.remedy_fields("ldam_drw", 1)
    assert study_grid.remedy_fields("ldam_drw", 200)["drw_epoch"] == 160  # Cao et al.'s schedule.
    assert study_grid.remedy_fields("ldam_drw", 2)["drw_epoch"] == 1


def test_crt_tau_norm_and_drs_cells_get_their_fields():
    crt = study_grid.remedy_fields("crt", 20)
    assert crt == {"crt_epochs": 2}  # Every other field from the base.
    assert study_grid.remedy_fields("crt", 3)["crt_epochs"] == 1  # At least one cRT epoch.
    assert study_grid.remedy_fields("tau_norm", 20)["tau_norm"] is True
    assert study_grid.remedy_fields("tau_norm", 20)["tau_norm_tau"] is None  # Chosen on validation.
    drs = study_grid.remedy_fields("drs", 10)
    assert (drs["drs_epoch"], drs["sampler"]) == (8, "class_balanced")
    # A remedy sets its own fields only.
    assert study_grid.remedy_fields("logit_adjusted", 10) == {"loss": "logit_adjusted"}
    assert study_grid.remedy_fields("mixup", 10) == {"mix": "mixup"}


def test_base_remedy_flags_apply_to_every_cell_and_a_conflict_names_the_cell(tmp_path):
    config = _remedy_study(tmp_path, ("logit_adjusted", "mixup", "posthoc"), epochs=4, posthoc_tau=0.5,
                           mix="remix")
    first_seed = {cell.label: cell.config for cell in study.expand_grid(config) if cell.seed == 0}
    assert {label: (cfg.loss, cfg.mix, cfg.posthoc_tau) for label, cfg in first_seed.items()} == {
        "baseline:unbalanced": ("cross_entropy", "remix", 0.5), "remedy:logit_adjusted": ("logit_adjusted", "remix", 0.5),
        "remedy:mixup": ("cross_entropy", "mixup", 0.5), "remedy:posthoc": ("cross_entropy", "remix", 1.0)}
    # cRT re-balances the head itself: with a base class-balanced loss the grid fails before training.
    config = _remedy_study(tmp_path, ("crt",), epochs=4, loss="class_balanced")
    with pytest.raises(ValueError, match=r"cell remedy:crt of the study: --crt_epochs=1 re-trains the head with "
                                         "class-balanced sampling; with --drw_epoch, --class_weight=balanced or "
                                         "--loss=class_balanced"):
        study.expand_grid(config)


def test_combined_cells_parse_into_augmentation_and_remedy():
    resolved = study_grid.resolve_remedies(["fancypca+Logit_Adjusted", "logit_adjusted", "FancyPCA+logit_adjusted"])
    assert resolved == ("logit_adjusted", "FancyPCA+logit_adjusted")
    assert study_grid.split_remedy("FancyPCA+logit_adjusted") == ("FancyPCA", "logit_adjusted")
    assert study_grid.remedy_fields("FancyPCA+ldam_drw", 10)["drw_epoch"] == 8
    with pytest.raises(ValueError, match=r"'FancyPCA\+cutmix' combines with 'cutmix', which is not a remedy"):
        study_grid.resolve_remedies(["FancyPCA+cutmix"])
    with pytest.raises(ValueError, match=r"--remedies: 'NoSuchAug\+logit_adjusted'"):
        study_grid.resolve_remedies(["NoSuchAug+logit_adjusted"])


def test_combined_cells_oversample_with_the_augmentation_and_compare_with_unbalanced(tmp_path):
    config = _remedy_study(tmp_path, study_grid.resolve_remedies(["FancyPCA+logit_adjusted", "crt"]))
    cells = {cell.label: cell for cell in study.expand_grid(config) if cell.seed == 0}
    combined = cells["remedy:FancyPCA+logit_adjusted"]
    assert combined.config.data.strategy == "oversample_augment" and combined.config.data.augmentation == "FancyPCA"
    assert combined.config.loss == "logit_adjusted" and combined.kind == study_grid.REMEDY
    assert combined.workdir.endswith("ratio_4/remedy_FancyPCA+logit_adjusted/seed_0")
    assert cells["remedy:crt"].config.data.strategy == "unbalanced" and cells["remedy:crt"].config.crt_epochs >= 1
    trainer = RemedyTrainer()
    summary = study.run_study(config, trainer, log=lambda _: None)
    rows = {row.cell: row for row in summary.itertuples()}
    # The stand-in scores logit-adjusted runs 0.05 higher, paired by seed with unbalanced.
    assert rows["remedy:FancyPCA+logit_adjusted"].mean_difference == pytest.approx(0.05)
    assert rows["remedy:FancyPCA+logit_adjusted"].kind == "remedy"
    assert rows["remedy:crt"].mean_difference == pytest.approx(0.0)
    ranking = study_stats.overall_ranking(summary)
    baselines, augmentations, others = study_report.heatmap_rows(summary, ranking)
    assert baselines == ["baseline:unbalanced"] and augmentations == []
    assert others == ["remedy:FancyPCA+logit_adjusted", "remedy:crt"]  # Remedy cells have heatmap rows.
    study_report.plot_heatmap(summary, ranking, tmp_path / "heatmap.png")
    assert (tmp_path / "heatmap.png").stat().st_size > 0
