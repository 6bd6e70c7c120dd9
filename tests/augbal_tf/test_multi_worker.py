"""Two `python -m augbal_tf.train` workers under MultiWorkerMirroredStrategy on 127.0.0.1.

Each worker is a real process with its own TF_CONFIG (one task per process is
how tf.distribute works); every wait is bounded and every process is killed on
the way out, whatever happens. The dataset variant is prepared once, in the
test process, before any worker starts, so the workers never race to build it.
"""

import contextlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from augbal_datasets.augbal import prepare
from augbal_tf import config as config_lib
from augbal_tf import locks
from augbal_tf import distribution
from augbal_tf import multi_worker
from augbal_tf import trainer as trainer_lib

pytestmark = pytest.mark.slow

TIMEOUT_S = 420
TRAIN_PER_CLASS = 24
RUN = dict(source="sample", classes=("tshirt_top", "pullover"), train_per_class=TRAIN_PER_CLASS,
           test_per_class=12, validation_per_class=8, image_size=32, epochs=2, batch_size=16, patience=0,
           log_images=0)
# Tolerance against one process: from the same initial weights and data order, the two
# workers differ only in BatchNorm batch statistics (each replica normalises its own 8
# images instead of all 16) and in dropout masks (drawn per replica). Measured here:
# 0.9-1.6% on the epoch-1 losses; 5% leaves room while catching a wrong gradient scale
# (a sum instead of a mean over workers doubles the step) or duplicated/missing data.
LOSS_TOLERANCE = 0.05


def _flags(data_dir: pathlib.Path, workdir: pathlib.Path, **overrides) -> list[str]:
    values = {**RUN, "classes": ",".join(RUN["classes"]), "data_dir": data_dir, "workdir": workdir, **overrides}
    return [f"--{key}={value}" for key, value in values.items()]


KILLING_TRAIN = pathlib.Path(__file__).with_name("killing_train.py")


def _start(flag_list: list[str], log: pathlib.Path, env: dict, kill_after_epoch: int | None = None
           ) -> subprocess.Popen:
    command = ([sys.executable, str(KILLING_TRAIN), f"--kill_after_epoch={kill_after_epoch}"]
               if kill_after_epoch is not None else [sys.executable, "-m", "augbal_tf.train"])
    # Logs go to files: a full pipe would block a worker mid-run.
    with open(log, "w") as stream:
        return subprocess.Popen([*command, *flag_list], stdout=stream,
                                stderr=subprocess.STDOUT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env})


@contextlib.contextmanager
def _cluster(data_dir, workdir, logs: pathlib.Path, kill_after_epoch: dict | None = None, **overrides):
    """Starts two workers on free loopback ports; yields the processes; kills any still running on exit."""
    workers = [f"127.0.0.1:{port}" for port in multi_worker.free_loopback_ports(2)]
    processes = []
    try:
        for index in range(2):
            env = {"TF_CONFIG": multi_worker.tf_config(workers, index)}
            processes.append(_start(_flags(data_dir, workdir, distribution_strategy="multi_worker", **overrides),
                                    logs / f"worker_{index}.log", env, (kill_after_epoch or {}).get(index)))
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=60)


def _wait_all(processes, deadline: float) -> list[int]:
    return [process.wait(timeout=max(deadline - time.monotonic(), 1)) for process in processes]


def _metrics(workdir: pathlib.Path) -> dict:
    return json.loads((workdir / "metrics.json").read_text())


def _without_seconds(history: list[dict]) -> list[dict]:
    return [{key: value for key, value in entry.items() if key != "seconds"} for entry in history]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> pathlib.Path:
    """A data_dir holding the one prepared variant every run of this module reads."""
    data_dir = tmp_path_factory.mktemp("tfds")
    config = config_lib.make(data_dir=str(data_dir), **RUN)
    prepare.prepare_variant(config.data, str(data_dir))
    return data_dir


def _side_by_side(data_dir, root: pathlib.Path, **overrides) -> dict:
    """One uninterrupted two-worker run, and the same flags trained in this process while it runs."""
    from augbal_tf import train  # pylint: disable=import-outside-toplevel

    single = root / "single"
    deadline = time.monotonic() + TIMEOUT_S
    with _cluster(data_dir, root / "multi", root, None, **overrides) as workers:
        # The reference in this process: no TensorFlow start of its own.
        train.train_and_evaluate(config_lib.make(data_dir=str(data_dir), **{**RUN, **overrides}), str(single))
        codes = _wait_all(workers, deadline)
    logs = {name: (root / f"{name}.log").read_text() for name in ("worker_0", "worker_1")}
    assert codes == [0, 0], "\n".join(text[-3000:] for text in logs.values())
    return {"multi": root / "multi", "single": single, "logs": logs}


@pytest.fixture(scope="module")
def runs(data_dir, tmp_path_factory) -> dict:
    """`_side_by_side` in float32 (the resume test's reference too)."""
    return _side_by_side(data_dir, tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def runs_bfloat16(data_dir, tmp_path_factory) -> dict:
    """`_side_by_side` under --precision=bfloat16."""
    return _side_by_side(data_dir, tmp_path_factory.mktemp("runs_bfloat16"), precision="bfloat16")


@pytest.mark.parametrize("precision, runs_fixture", [("float32", "runs"), ("bfloat16", "runs_bfloat16")])
def test_two_workers_train_one_run_and_match_a_single_process(request, data_dir, precision, runs_fixture):
    runs = request.getfixturevalue(runs_fixture)
    workdir, logs = runs["multi"], runs["logs"]
    # Only the chief (worker 0) writes outputs; the per-task backups are gone after success.
    assert sorted(path.name for path in workdir.iterdir() if not locks.is_lock_file(path)) == [
        "best.weights.h5", "export", "flags.txt", "metrics.json", "run.json", "tensorboard"]
    # Each task owned the workdir through its own lock (released when it exited).
    assert {path.name for path in workdir.iterdir() if locks.is_lock_file(path)} == {
        ".augbal-task0.lock", ".augbal-task1.lock"}
    assert (workdir / "export" / "saved_model.pb").is_file()
    assert list((workdir / "tensorboard").rglob("events.out.tfevents.*"))
    assert "Finished: selected epoch" in logs["worker_0"]
    assert "Finished: selected epoch" not in logs["worker_1"]
    assert "2 replica(s) in sync" in logs["worker_1"]
    # The workers found the variant prepared above instead of building their own.
    assert len([path for path in (data_dir / "augbal").iterdir() if not path.name.startswith(".")]) == 1

    multi, single = _metrics(workdir), _metrics(runs["single"])
    assert multi["environment"]["replicas"] == 2 and single["environment"]["replicas"] == 1
    assert multi["environment"]["precision"]["precision"] == single["environment"]["precision"]["precision"] \
        == precision
    assert multi["epochs_run"] == single["epochs_run"] == RUN["epochs"]
    # DATA sharding: every training example is seen once per epoch over both workers
    # (FILE sharding cannot split tfds' one-file split; duplicated data would count 96).
    assert [entry["train"]["examples"] for entry in multi["history"]] == [2 * TRAIN_PER_CLASS] * RUN["epochs"]
    assert multi["history"][0]["train"]["loss"] == pytest.approx(single["history"][0]["train"]["loss"],
                                                                 rel=LOSS_TOLERANCE)
    for multi_epoch, single_epoch in zip(multi["history"], single["history"]):
        assert multi_epoch["validation"]["loss"] == pytest.approx(single_epoch["validation"]["loss"],
                                                                  rel=LOSS_TOLERANCE)
    for split in ("validation", "test"):
        assert set(multi[split]) >= {"accuracy", "balanced_accuracy", "per_class", "confusion_matrix"}
        assert sum(map(sum, multi[split]["confusion_matrix"])) == sum(map(sum, single[split]["confusion_matrix"]))


def test_killed_worker_then_restarted_cluster_resumes_from_the_backups(runs, data_dir, tmp_path):
    workdir = tmp_path / "run"
    deadline = time.monotonic() + TIMEOUT_S
    with _cluster(data_dir, workdir, tmp_path, kill_after_epoch={1: 1}) as (chief, worker):
        assert worker.wait(timeout=TIMEOUT_S) == -signal.SIGKILL, (tmp_path / "worker_1.log").read_text()[-3000:]
        # The chief saves its own epoch-1 snapshot (no collective op precedes it), then blocks
        # or fails in epoch 2's first collective with a dead peer: stop it, as a cluster manager would.
        chief_snapshot = workdir / "backup" / "worker_0" / "epoch_00001"
        while not chief_snapshot.is_dir() and chief.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert chief.poll() != 0, "the chief finished a run without its peer"
    assert not (workdir / "metrics.json").exists()
    assert chief_snapshot.is_dir() and (workdir / "backup" / "worker_1" / "epoch_00001").is_dir()

    with _cluster(data_dir, workdir, tmp_path) as processes:
        codes = _wait_all(processes, deadline + TIMEOUT_S)
    logs = [(tmp_path / f"worker_{index}.log").read_text() for index in range(2)]
    assert codes == [0, 0], "\n".join(text[-3000:] for text in logs)
    # Both tasks continue from their own backups after epoch 1 (not from 0).
    for index, log in enumerate(logs):
        assert f"Resuming from the snapshot after epoch 1 in {workdir / 'backup' / f'worker_{index}'}" in log
        assert "epoch 1/2" not in log and "epoch 2/2" in log
    assert not (workdir / "backup").exists()
    # Snapshots carry weights, optimizer state and loop state; dropout and shuffling derive from
    # (seed, epoch): the resumed run ends exactly where the uninterrupted two-worker run did.
    resumed, uninterrupted = _metrics(workdir), _metrics(runs["multi"])
    assert _without_seconds(resumed["history"]) == _without_seconds(uninterrupted["history"])
    for key in ("selected_epoch", "epochs_run", "validation", "test"):
        assert resumed[key] == uninterrupted[key], key


def test_tf_config_names_the_cluster_and_this_task():
    assert json.loads(multi_worker.tf_config(["10.0.0.1:2222", "10.0.0.2:2222"], 1)) == {
        "cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]}, "task": {"type": "worker", "index": 1}}
    with pytest.raises(ValueError, match="index=2 is not a worker of a 2-worker cluster"):
        multi_worker.tf_config(["a:1", "b:2"], 2)
    with pytest.raises(ValueError, match="'hostA' is not 'host:port'"):
        multi_worker.tf_config(["hostA"], 0)
    first, second = multi_worker.free_loopback_ports(2)
    assert first != second


def test_a_single_process_strategy_refuses_a_multi_task_tf_config(monkeypatch):
    # Otherwise every task would train a full run of its own into the shared workdir.
    monkeypatch.setenv("TF_CONFIG", multi_worker.tf_config(["127.0.0.1:1", "127.0.0.1:2"], 0))
    with pytest.raises(ValueError, match="--distribution_strategy=auto but TF_CONFIG describes a cluster of 2"):
        distribution.create_strategy("auto")
