"""Cells trained in recycled child processes give the numbers of in-process training."""

import pytest

from augbal_tf import config as config_lib
from augbal_tf import study, study_grid, study_runner, train

pytestmark = pytest.mark.slow


def test_bad_cells_per_process():
    with pytest.raises(ValueError, match="--cells_per_process=0 is not valid"):
        study_runner.CellRunner(0)


def test_child_processes_reproduce_in_process_training(tmp_path):
    base = config_lib.make(source="sample", classes=("tshirt_top", "shirt"), minority=("shirt",),
                           train_per_class=40, validation_per_class=8, test_per_class=16, image_size=32,
                           epochs=1, batch_size=16, log_images=0, data_dir=str(tmp_path / "tfds"))
    grid = study_grid.Grid(ratios=(4.0,), baselines=("unbalanced",), seeds=(0, 1, 2))
    children = study.run_study(study.StudyConfig(base, str(tmp_path / "children"), grid, cells_per_process=2),
                               log=lambda _: None)
    in_process = study.run_study(study.StudyConfig(base, str(tmp_path / "here"), grid),
                                 train.train_and_evaluate, log=lambda _: None)
    assert children["mean"].tolist() == in_process["mean"].tolist()
    assert children["std"].tolist() == in_process["std"].tolist()
