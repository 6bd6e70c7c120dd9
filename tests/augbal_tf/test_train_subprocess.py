"""Runs of `python -m augbal_tf.train` in subprocesses: mirrored on 2 logical CPUs and kill and
resume (each in float32 and bfloat16, both precisions trained in one process where no kill
ends it: precision_runs.py), CLI errors (two-worker training: test_multi_worker.py).

Logical CPU devices can be configured once per process, a SIGKILL must hit a real
process, and multi-worker training needs one process per task, hence subprocesses
(bounded in time and always killed at the end).
"""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from augbal_tf import config as config_lib
from augbal_tf import evaluate
from augbal_tf import evaluation
from augbal_tf import input_pipeline
from augbal_tf import model as model_lib
from augbal_tf import trainer as trainer_lib

pytestmark = pytest.mark.slow

# A process trains both precisions: a bfloat16 mirrored run alone took 386 s at load 14 on the 2 shared cores.
TIMEOUT_S = 1200


TRAIN_PER_CLASS = 24


def _flags(data_dir: str, workdir: pathlib.Path, **overrides) -> list[str]:
    values = {"workdir": workdir, "data_dir": data_dir, "source": "sample", "classes": "tshirt_top,pullover",
              "train_per_class": TRAIN_PER_CLASS, "test_per_class": 12, "validation_per_class": 8, "image_size": 32,
              "epochs": 2, "batch_size": 16, "patience": 0, "log_images": 0, "noexport": None}
    values.update(overrides)
    return [f"--{key}" if value is None else f"--{key}={value}" for key, value in values.items()]


PRECISION_RUNS = pathlib.Path(__file__).with_name("precision_runs.py")
PRECISIONS = ("float32", "bfloat16")


def _train(flag_list: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run([sys.executable, "-m", "augbal_tf.train", *flag_list], capture_output=True, text=True,
                          timeout=TIMEOUT_S, env=environment, check=False)


def _train_precisions(flag_list: list[str], precisions=PRECISIONS,
                      kill_after_epoch: int | None = None) -> subprocess.CompletedProcess:
    """One process training `flag_list` once per precision, in <--workdir>/<precision> (precision_runs.py)."""
    kill = [] if kill_after_epoch is None else [f"--kill_after_epoch={kill_after_epoch}"]
    return subprocess.run([sys.executable, str(PRECISION_RUNS), f"--precisions={','.join(precisions)}", *kill,
                           *flag_list], capture_output=True, text=True, timeout=TIMEOUT_S,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, check=False)


def _metrics(workdir: pathlib.Path) -> dict:
    return json.loads((workdir / "metrics.json").read_text())


def _strip_seconds(history: list[dict]) -> list[dict]:
    return [{key: value for key, value in entry.items() if key != "seconds"} for entry in history]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[str, pathlib.Path]:
    """(data_dir, root) of uninterrupted 2-epoch runs on the default strategy, root/<precision> (the references)."""
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    root = tmp_path_factory.mktemp("uninterrupted")
    result = _train_precisions(_flags(data_dir, root))
    assert result.returncode == 0, result.stderr[-3000:]
    return data_dir, root


@pytest.fixture(scope="module")
def data_dir(uninterrupted) -> str:
    return uninterrupted[0]


@pytest.fixture(scope="module")
def mirrored(data_dir, tmp_path_factory) -> tuple[pathlib.Path, str]:
    """(root, stderr) of 1-epoch mirrored runs on 2 logical CPUs, root/<precision>, exported."""
    root = tmp_path_factory.mktemp("mirrored")
    flag_list = _flags(data_dir, root, distribution_strategy="mirrored", cpu_devices=2, epochs=1)
    flag_list.remove("--noexport")
    result = _train_precisions(flag_list)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, result.stderr


@pytest.mark.parametrize("precision", PRECISIONS)
def test_mirrored_on_two_logical_cpus_trains_two_replicas(data_dir, mirrored, precision):
    root, stderr = mirrored
    workdir = root / precision
    assert "2 replica(s) in sync" in stderr
    metrics = _metrics(workdir)
    assert metrics["environment"]["replicas"] == 2 and len(metrics["environment"]["devices"]) == 2
    assert metrics["environment"]["precision"]["precision"] == precision
    assert np.isfinite(metrics["history"][0]["train"]["loss"])
    # Final numbers come from the saved best weights on one device, so the SavedModel agrees exactly.
    config = config_lib.make(source="sample", data_dir=data_dir, classes=("tshirt_top", "pullover"), train_per_class=24,
                                    test_per_class=12, validation_per_class=8)
    classifier = evaluation.load_saved_model(workdir / "export")
    result = evaluation.evaluate_split(classifier, input_pipeline.load_variant(config).builder, "test", 5)
    assert result["confusion_matrix"] == metrics["test"]["confusion_matrix"]
    assert result["balanced_accuracy"] == metrics["test"]["balanced_accuracy"]


@pytest.fixture(scope="module")
def sigkilled_and_resumed(data_dir, tmp_path_factory) -> dict:
    """Each precision SIGKILLed after epoch 1 (a process each), then both resumed in one process, then rerun."""
    root = tmp_path_factory.mktemp("interrupted")
    flag_list = _flags(data_dir, root)
    after_kill = {}
    for precision in PRECISIONS:
        killed = _train_precisions(flag_list, (precision,), kill_after_epoch=1)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
        after_kill[precision] = {"metrics": (root / precision / "metrics.json").exists(),
                                 "backups": [path.name for path in (root / precision / "backup" / "worker_0").iterdir()]}
    resumed = _train_precisions(flag_list)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # Rerunning the finished command reports it and succeeds without training.
    rerun = _train_precisions(flag_list)
    return {"root": root, "after_kill": after_kill, "resumed": resumed, "rerun": rerun}


@pytest.mark.parametrize("precision", PRECISIONS)
def test_sigkilled_run_resumes_to_the_same_result_as_an_uninterrupted_run(uninterrupted, sigkilled_and_resumed,
                                                                          precision):
    reference = uninterrupted[1] / precision
    expected = _metrics(reference)
    interrupted = sigkilled_and_resumed["root"] / precision
    assert sigkilled_and_resumed["after_kill"][precision] == {"metrics": False, "backups": ["epoch_00001"]}
    resumed = sigkilled_and_resumed["resumed"]
    assert f"Resuming from the snapshot after epoch 1 in {interrupted / 'backup' / 'worker_0'}" in resumed.stderr
    actual = _metrics(interrupted)
    assert actual["environment"]["precision"]["precision"] == expected["environment"]["precision"]["precision"] \
        == precision
    assert _strip_seconds(actual["history"]) == _strip_seconds(expected["history"])
    for key in ("selected_epoch", "validation", "test", "epochs_run"):
        assert actual[key] == expected[key], key
    assert not (interrupted / "backup").exists()
    weights = [model_lib.create_model("resnet18", 2, 32) for _ in range(2)]
    weights[0].load_weights(str(reference / "best.weights.h5"))
    weights[1].load_weights(str(interrupted / "best.weights.h5"))
    for before, after in zip(weights[0].get_weights(), weights[1].get_weights()):
        np.testing.assert_array_equal(after, before)
    rerun = sigkilled_and_resumed["rerun"]
    assert rerun.returncode == 0 and f"Run in {interrupted} already finished with the same flags" in rerun.stderr


@pytest.mark.parametrize("overrides, message", [
    ({"distribution_strategy": "mirrored", "cpu_devices": 2, "batch_size": 5},
     "--batch_size=5 is not divisible by the 2 replicas"),
    ({"distribution_strategy": "tpu"}, "--distribution_strategy='tpu' is not valid"),
])
def test_bad_flags_exit_with_a_clear_error(data_dir, tmp_path, overrides, message):
    result = _train(_flags(data_dir, tmp_path / "bad", **overrides))
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "bad" / "metrics.json").exists()


REPLICA_STATISTICS_SCRIPT = """
import json
from augbal_tf import distribution
distribution.configure_cpu_devices(2)
import numpy as np, tensorflow as tf
from augbal_tf import config as config_lib, trainer as trainer_lib
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
trainer = trainer_lib.Trainer(config_lib.make(source="sample", image_size=32, batch_size=8, epochs=1), strategy, 2, None)
rng = np.random.default_rng(0)
# Replica 0 gets dark images, replica 1 bright ones, so their batch statistics differ.
images = np.concatenate([rng.normal(-1, 1, (4, 32, 32, 3)), rng.normal(2, 1, (4, 32, 32, 3))]).astype(np.float32)
dataset = tf.data.Dataset.from_tensors((images, np.array([0, 1] * 4)))
average = trainer._average_moving_statistics
trainer._average_moving_statistics = lambda: None
trainer.train_epoch(dataset, 0)
replicas = lambda: [[v.numpy().tolist() for v in s.value.values] for s in trainer._moving_statistics]
before = replicas()
average()
print(json.dumps({"before": before, "after": replicas()}))
"""


def test_mirrored_replicas_end_each_epoch_with_the_same_batchnorm_statistics():
    result = subprocess.run([sys.executable, "-c", REPLICA_STATISTICS_SCRIPT], capture_output=True, text=True,
                            timeout=TIMEOUT_S, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(values["before"]) == 40  # Moving mean and variance of 20 BatchNorm layers.
    for before, after in zip(values["before"], values["after"]):
        replica_0, replica_1 = np.array(before)
        assert not np.allclose(replica_0, replica_1)  # Each replica saw other images.
        np.testing.assert_allclose(after[0], (replica_0 + replica_1) / 2, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(after[0], after[1])


TWO_MIRRORED_RUNS_SCRIPT = """
from augbal_tf import distribution
distribution.configure_cpu_devices(2)
import numpy as np, tensorflow as tf
from augbal_tf import config as config_lib, trainer as trainer_lib
rng = np.random.default_rng(0)
dataset = tf.data.Dataset.from_tensors((rng.normal(size=(8, 32, 32, 3)).astype(np.float32), np.array([0, 1] * 4)))
# Two runs of one process, as a study child trains its cells: each asks for its strategy, and their
# gradients differ in size (another head width), so their collective all-reduces must not share keys.
for head_width in (16, 8):
    strategy = distribution.create_strategy("mirrored")
    config = config_lib.make(source="sample", image_size=32, batch_size=8, epochs=1, head_width=head_width)
    result = trainer_lib.Trainer(config, strategy, 2, None).train_epoch(dataset, 0)
    print("trained", head_width, strategy.num_replicas_in_sync, result["examples"], flush=True)
"""


def test_two_mirrored_runs_with_other_shapes_train_in_one_process():
    # Before distribution built one MirroredStrategy per process, the second run failed with
    # "Shape mismatch in the collective instance" (each new strategy reused the first one's keys).
    result = subprocess.run([sys.executable, "-c", TWO_MIRRORED_RUNS_SCRIPT], capture_output=True, text=True,
                            timeout=TIMEOUT_S, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [line for line in result.stdout.splitlines() if line.startswith("trained")] == [
        "trained 16 2 8", "trained 8 2 8"]


def test_bad_input_touches_no_workdir_and_the_corrected_command_runs(data_dir, tmp_path):
    workdir = tmp_path / "run"
    bad = _train(_flags(data_dir, workdir, classes="tshirt_top"))
    assert bad.returncode == 2 and "classes needs at least 2 classes" in bad.stderr, bad.stderr[-2000:]
    assert not workdir.exists()  # Validated before anything was written.
    good = _train(_flags(data_dir, workdir, epochs=1))
    assert good.returncode == 0, good.stderr[-3000:]


def test_a_second_process_on_the_same_workdir_refuses_naming_the_first(data_dir, tmp_path):
    workdir = tmp_path / "run"
    flag_list = _flags(data_dir, workdir, epochs=4)
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    first = subprocess.Popen([sys.executable, "-m", "augbal_tf.train", *flag_list], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=environment)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not (workdir / "run.json").exists():  # Written once the first process owns the workdir.
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        second = _train(flag_list)
        assert second.returncode == 2, second.stderr[-3000:]
        assert f"is in use by another process (pid {first.pid} on host" in second.stderr
        assert first.wait(timeout=TIMEOUT_S) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert json.loads((workdir / "metrics.json").read_text())["epochs_run"] == 4
