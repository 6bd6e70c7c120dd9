"""Cells trained in recycled child processes give the numbers of in-process training."""

import os
import pathlib
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from augbal_tf import study_report, study_runner

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


def _children(pid: int) -> list[int]:
    """Pids whose parent is `pid` (Linux /proc)."""
    found = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # Exited while we looked.
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux's")
def test_a_killed_study_process_takes_its_child_with_it():
    # The study process, its child busy in a cell (a long sleep), then SIGKILL of the study process.
    study_process = subprocess.Popen([sys.executable, "-c", (
        "import time; from augbal_tf import study_runner; "
        "study_runner.CellRunner(1).call(time.sleep, 120)")])
    try:
        deadline = time.monotonic() + 60
        while not (children := _children(study_process.pid)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert children, "the study process started no child"
        time.sleep(3)  # The child is past its start-up, inside the cell.
        children = _children(study_process.pid)
        study_process.send_signal(signal.SIGKILL)
        study_process.wait()
        deadline = time.monotonic() + 20
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(pid) for pid in children), "a child outlived the killed study process"
    finally:
        study_process.kill()
        for pid in _children(study_process.pid):
            os.kill(pid, signal.SIGKILL)


def _pid_and_cache_record(backbone_built):
    """In the child: a metrics-like dict of a cell that did (or did not) build its backbone."""
    return {"pid": os.getpid(), "feature_cache": {"used": backbone_built is not None, "backbone_built": backbone_built}}


def test_cell_share():
    # A cell on cached features counts as one HEAD_ONLY_CELLS-th, also when it built the backbone to
    # compute missing features (feature_cache keeps that one backbone for the child's next cells).
    for built in (False, True):
        assert study_runner.cell_share({"feature_cache": {"used": True, "backbone_built": built}}) == 1
    for metrics in ({"feature_cache": {"used": False, "backbone_built": None}}, {}, None):
        assert study_runner.cell_share(metrics) == study_runner.HEAD_ONLY_CELLS, metrics


def test_a_child_trains_head_only_cells_per_process_times_more():
    many = study_runner.HEAD_ONLY_CELLS
    runner = study_runner.CellRunner(2)
    try:
        # 2 cells' worth of cached cells (the first built its backbone), then a full cell and one
        # cell's worth of cached ones, then one more cell.
        first = [runner.call(_pid_and_cache_record, built, share=study_runner.cell_share)["pid"]
                 for built in (True, *[False] * (2 * many - 1))]
        second = [runner.call(_pid_and_cache_record, built, share=study_runner.cell_share)["pid"]
                  for built in (None, *[False] * many)]
        third = runner.call(_pid_and_cache_record, None, share=study_runner.cell_share)["pid"]
    finally:
        runner.close()
    assert len(set(first)) == 1 and len(set(second)) == 1
    assert len({first[0], second[0], third}) == 3


def test_child_processes_reproduce_in_process_training(tiny_real_study):
    # Two shards trained the study's 4 cells in child processes (shard 0 one cell per child, shard 1
    # both cells in one child) while the test process trained the same study in itself.
    for code, _, err in tiny_real_study["shards"]:
        assert code == 0, err[-3000:]
    assert tiny_real_study["report"][0] == 0, tiny_real_study["report"][2][-3000:]
    children, in_process = (pd.read_csv(tiny_real_study[name] / study_report.SUMMARY_CSV)
                            for name in ("sharded", "single"))
    assert set(children["cell"]) == {"baseline:unbalanced", "aug:HorizontalFlip"}
    assert children["cell"].tolist() == in_process["cell"].tolist()
    assert children["mean"].tolist() == in_process["mean"].tolist()
    assert children["std"].tolist() == in_process["std"].tolist()
