"""Workdir rules without TensorFlow training: status, reruns after a failed start, locks."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from augbal_tf import config as config_lib
from augbal_tf import fileio
from augbal_tf import locks
from augbal_tf import workdir as workdir_lib

Status = workdir_lib.Status


def _config(**fields):
    return config_lib.make(source="sample", classes=("tshirt_top", "shirt"), **fields)


def test_a_run_that_never_finished_an_epoch_does_not_block_another(tmp_path):
    workdir = tmp_path / "w"
    assert workdir_lib.prepare(workdir, _config(epochs=2)) is Status.NEW
    # It failed before its first snapshot: a different command may start there at once.
    assert workdir_lib.status(workdir, _config(epochs=5)) is Status.NEW
    assert workdir_lib.prepare(workdir, _config(epochs=5)) is Status.NEW
    assert json.loads((workdir / workdir_lib.RUN_FILE).read_text())["config"]["epochs"] == 5


def test_a_run_with_progress_and_other_flags_is_refused_naming_the_flags(tmp_path):
    workdir = tmp_path / "w"
    workdir_lib.prepare(workdir, _config(epochs=2))
    (workdir_lib.backup_dir(workdir, 0) / "epoch_00001").mkdir(parents=True)
    assert workdir_lib.status(workdir, _config(epochs=2)) is Status.RESUME
    assert workdir_lib.status(workdir, _config(epochs=3)) is Status.CHANGED
    with pytest.raises(ValueError, match=r"holds a unfinished run with different flags: --epochs: 2 -> 3"):
        workdir_lib.prepare(workdir, _config(epochs=3))
    fileio.write_atomic(workdir / workdir_lib.METRICS_FILE, "{}")
    assert workdir_lib.status(workdir, _config(epochs=2)) is Status.FINISHED
    assert workdir_lib.prepare(workdir, _config(epochs=3, overwrite=True)) is Status.NEW
    assert not (workdir / workdir_lib.METRICS_FILE).exists()


def test_foreign_files_are_refused_but_lock_files_are_not_foreign(tmp_path):
    workdir = tmp_path / "w"
    with locks.acquire(workdir, "task0", "workdir"):
        assert workdir_lib.status(workdir, _config()) is Status.NEW
        (workdir / "notes.txt").write_text("mine")
        assert workdir_lib.status(workdir, _config()) is Status.FOREIGN
        with pytest.raises(ValueError, match="is not empty and holds no augbal run"):
            workdir_lib.prepare(workdir, _config())


def test_a_second_owner_is_refused_naming_the_holder(tmp_path):
    with locks.acquire(tmp_path, "task0", "workdir"):
        with pytest.raises(locks.BusyError, match=rf"workdir {tmp_path} is in use by another process "
                                                  rf"\(pid {os.getpid()} on host "):
            locks.acquire(tmp_path, "task0", "workdir")
        locks.acquire(tmp_path, "task1", "workdir").release()  # Another task's lock is independent.
    locks.acquire(tmp_path, "task0", "workdir").release()  # Released: free again.


def test_a_lock_held_by_a_sigkilled_process_does_not_block(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from augbal_tf import locks; "
        f"locks.acquire({str(tmp_path)!r}, 'study', 'study folder'); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(locks.BusyError, match=rf"pid {holder.pid} on host"):
            locks.acquire(tmp_path, "study", "study folder")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    deadline = time.monotonic() + 10
    while True:  # The kernel drops the lock with the process.
        try:
            locks.acquire(tmp_path, "study", "study folder").release()
            break
        except locks.BusyError:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.csv"
    with pytest.raises(RuntimeError):
        with fileio.atomic_path(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("crash mid-write")
    assert list(pathlib.Path(tmp_path).iterdir()) == []
    fileio.write_atomic(target, b"bytes")
    assert target.read_bytes() == b"bytes"


def test_two_writers_of_one_file_never_share_a_temporary(tmp_path):
    # Shards on different machines can have the same pid: the name must differ per call.
    target = tmp_path / "report.html"
    with fileio.atomic_path(target) as first, fileio.atomic_path(target) as second:
        assert first != second and first.parent == second.parent == tmp_path
        assert first.name.endswith("report.html") and second.name.endswith("report.html")
        first.write_text("a")
        second.write_text("b")
    assert target.read_text() == "a"  # The outer context renamed last.
    assert list(tmp_path.iterdir()) == [target]
