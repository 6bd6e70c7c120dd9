"""Cells trained in recycled child processes give the numbers of in-process training."""

import os

import pytest

from augbal_tf import config as config_lib
from augbal_tf import study, study_grid, study_runner, train

pytestmark = pytest.mark.slow


def test_bad_cells_per_process():
    with pytest.raises(ValueError, match="--cells_per_process=0 is not valid"):
        study_runner.CellRunner(0)


def _pid_and_alive(other):
    """In the child: its pid, and whether process `other` (the previous call's child) still exists."""
    try:
        os.kill(other, 0)
    except ProcessLookupError:
        return os.getpid(), False
    return os.getpid(), True


def test_a_child_runs_cells_per_process_calls_and_has_exited_before_the_next_starts():
    runner = study_runner.CellRunner(2)
    pids = [os.getpid()]
    try:
        for _ in range(5):
            pid, previous_alive = runner.call(_pid_and_alive, pids[-1])
            if len(pids) > 1 and pid != pids[-1]:
                assert not previous_alive, "the old child still ran while its replacement started"
            pids.append(pid)
    finally:
        runner.close()
    children = pids[1:]
    assert children[0] == children[1] != children[2] == children[3] != children[4]


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
