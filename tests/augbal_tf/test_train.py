"""In-process one/two-epoch runs of augbal_tf.train.train_and_evaluate on tiny sample variants."""

import dataclasses
import glob
import json
import os

from absl import flags
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import config as tf_config  # pylint: disable=no-name-in-module

from augbal_tf import config as config_lib
from augbal_tf import evaluate
from augbal_tf import evaluation
from augbal_tf import flags as flags_lib  # pylint: disable=unused-import (defines the flags)
from augbal_tf import input_pipeline
from augbal_tf import model as model_lib
from augbal_tf import resume
from augbal_tf import train
from augbal_tf import trainer as trainer_lib

pytestmark = pytest.mark.slow

CLASSES = ("tshirt_top", "pullover")


@pytest.fixture(scope="module")
def base_config(tiny_run_config) -> config_lib.TrainConfig:
    return tiny_run_config  # tests/conftest.py: 40/10/20 images per class, 32 px, 2 epochs, log_images=4.


@pytest.fixture(scope="module")
def finished_run(tiny_run):
    return tiny_run  # The run of base_config (shared with test_export_evaluate).


def _tags(log_dir: str) -> set[str]:
    tags = set()
    for path in glob.glob(os.path.join(log_dir, "*", "events.out.tfevents.*")):
        split = os.path.basename(os.path.dirname(path))
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(f"{split}/{value.tag}" for value in event.summary.value)
    return tags


def test_metrics_json_holds_every_split_and_the_environment(finished_run):
    workdir, metrics = finished_run
    assert json.loads(open(os.path.join(workdir, "metrics.json")).read()) == metrics
    assert metrics["selection"] == "validation" and metrics["selected_epoch"] in (1, 2)
    assert metrics["epochs_run"] == 2 and metrics["wall_time_s"] > 0
    for split, size in (("validation", 20), ("test", 40)):
        result = metrics[split]
        assert set(result["per_class"]) == set(CLASSES)
        assert np.sum(result["confusion_matrix"]) == size
        assert result["accuracy"] == pytest.approx(np.trace(result["confusion_matrix"]) / size)
        assert 0.0 <= result["balanced_accuracy"] <= 1.0
    assert metrics["environment"]["packages"]["tensorflow"] == tf.__version__
    assert metrics["environment"]["replicas"] == 1 and metrics["environment"]["devices"]
    assert {key: metrics["config"][key] for key in ("sampling", "class_weight", "seed", "imbalance_ratio")} == {
        "sampling": "unbalanced", "class_weight": "none", "seed": 0, "imbalance_ratio": None}
    assert not os.path.exists(os.path.join(workdir, "backup"))  # Deleted once finished.


def test_exported_model_evaluates_to_the_metrics_json_numbers(finished_run, base_config):
    workdir, metrics = finished_run
    classifier = evaluation.load_saved_model(os.path.join(workdir, "export"))
    builder = input_pipeline.load_variant(base_config).builder
    for split in ("validation", "test"):
        result = evaluation.evaluate_split(classifier, builder, split, batch_size=7)
        for key in ("accuracy", "balanced_accuracy", "confusion_matrix", "per_class"):
            assert result[key] == metrics[split][key], (split, key)


def test_flags_file_reproduces_the_config(finished_run, base_config):
    workdir, _ = finished_run
    flag_values = flags.FLAGS
    try:
        flag_values(["train", f"--flagfile={os.path.join(workdir, 'flags.txt')}"])
        assert flag_values.workdir == workdir
        assert config_lib.from_flags(flag_values) == base_config
    finally:
        flag_values.unparse_flags()


def test_tensorboard_has_curves_images_and_confusion_matrix(finished_run):
    workdir, _ = finished_run
    tags = _tags(os.path.join(workdir, "tensorboard"))
    for split in ("train", "validation"):
        assert {f"{split}/loss", f"{split}/accuracy", f"{split}/balanced_accuracy"} <= tags
    assert {"train/learning_rate", "train/sample_images", "test/confusion_matrix",
            "validation/confusion_matrix"} <= tags


def test_rerun_with_same_flags_returns_the_finished_metrics(finished_run, base_config):
    workdir, metrics = finished_run
    before = os.stat(os.path.join(workdir, "metrics.json")).st_mtime_ns
    assert train.train_and_evaluate(config_lib.replace(base_config, cpu_devices=0), workdir) == metrics
    assert os.stat(os.path.join(workdir, "metrics.json")).st_mtime_ns == before


def test_rerun_with_other_flags_fails_naming_them(finished_run, base_config):
    workdir, _ = finished_run
    changed = config_lib.replace(base_config, epochs=3, learning_rate=1e-3)
    with pytest.raises(ValueError, match=r"different flags: --epochs: 2 -> 3; --learning_rate"):
        train.train_and_evaluate(changed, workdir)


def test_same_seed_same_numbers_then_overwrite_with_a_frozen_weighted_run(finished_run, base_config, tmp_path):
    _, metrics = finished_run
    again = train.train_and_evaluate(base_config, str(tmp_path / "again"))
    strip = lambda history: [{k: v for k, v in entry.items() if k != "seconds"} for entry in history]
    assert strip(again["history"]) == strip(metrics["history"])
    assert again["test"] == metrics["test"] and again["validation"] == metrics["validation"]
    # --overwrite replaces that finished run with a different one: frozen backbone, class
    # weights, no validation split and paper-faithful selection on test.
    config = config_lib.replace(base_config, freeze_backbone=True, class_weight="balanced", imbalance_ratio=4.0,
                                 minority=("pullover",), sampling="unbalanced", selection="test",
                                 validation_per_class=0, epochs=1, export=False, overwrite=True)
    metrics = train.train_and_evaluate(config, str(tmp_path / "again"))
    assert metrics["epochs_run"] == 1 and not os.path.exists(tmp_path / "again" / "export")
    assert metrics["selection"] == "test" and "TEST" in metrics["selection_note"]
    assert metrics["validation"] is None and metrics["split_sizes"]["train"] == 40 + 10
    assert metrics["config"]["class_weight"] == "balanced"
    saved = model_lib.create_model("resnet18", 2, 32, seed=0)
    initial_kernel = saved.stem.conv.kernel.numpy().copy()
    initial_mean = saved.stem.bn.moving_mean.numpy().copy()
    saved.load_weights(str(tmp_path / "again" / "best.weights.h5"))
    np.testing.assert_array_equal(saved.stem.conv.kernel.numpy(), initial_kernel)
    assert not np.allclose(saved.stem.bn.moving_mean.numpy(), initial_mean)


def test_snapshot_restores_every_model_and_optimizer_variable(tmp_path):
    config = config_lib.make(source="sample", image_size=32, batch_size=8)
    saved = trainer_lib.Trainer(config, tf.distribute.get_strategy(), 2, None)
    rng = np.random.default_rng(0)
    for variable in saved.model.variables + saved.optimizer.variables:
        variable.assign(rng.integers(0, 100, size=variable.shape).astype(variable.dtype))
    state = trainer_lib.LoopState(epochs_done=3, best_value=0.5, best_epoch=2, epochs_without_improvement=1,
                             history=[{"epoch": 1}], train_seconds=1.5)
    trainer_lib.save_snapshot(tmp_path / "backup", saved, state)
    restored = trainer_lib.Trainer(config, tf.distribute.get_strategy(), 2, None)
    assert trainer_lib.restore_snapshot(tmp_path / "backup", restored, 3) == state
    for before, after in zip(saved.model.variables + saved.optimizer.variables,
                             restored.model.variables + restored.optimizer.variables):
        np.testing.assert_array_equal(after.numpy(), before.numpy(), err_msg=before.path)
    assert [path.name for path in (tmp_path / "backup").iterdir()] == ["epoch_00003"]


def test_selection_keeps_the_first_best_epoch_and_stops_after_patience():
    state = trainer_lib.LoopState()
    improvements = [trainer_lib.record_epoch(state, value) for value in (0.5, 0.7, 0.7, 0.6)]
    assert improvements == [True, True, False, False]
    assert (state.best_epoch, state.best_value, state.epochs_without_improvement) == (2, 0.7, 2)
    assert trainer_lib.should_stop(state, epochs=10, patience=2)
    assert not trainer_lib.should_stop(state, epochs=10, patience=3)
    assert not trainer_lib.should_stop(state, epochs=10, patience=0)  # 0: no early stopping.
    assert trainer_lib.should_stop(state, epochs=4, patience=0)


def test_class_weights_scale_each_example_loss():
    config = config_lib.make(source="sample", image_size=32, batch_size=8, dropout=0.0, learning_rate=1e-9)
    weights = np.array([0.25, 4.0], np.float32)
    trainer = trainer_lib.Trainer(config, tf.distribute.get_strategy(), 2, weights)
    rng = np.random.default_rng(1)
    images = rng.normal(size=(8, 32, 32, 3)).astype(np.float32)
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    logits = trainer.model(images, training=True).numpy()
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -np.mean(weights[labels] * log_probs[np.arange(8), labels])
    result = trainer.train_epoch(tf.data.Dataset.from_tensor_slices((images, labels)).batch(8), epoch=0)
    assert result["loss"] == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("field, value, message", [
    ("distribution_strategy", "bogus", r"--distribution_strategy='bogus' is not valid; allowed: auto"),
    ("sampling", "smote", r"strategy must be one of \['balanced'"),
    ("selection", "best", r"--selection='best' is not valid"),
    ("image_size", 16, r"--image_size=16 is not valid; must be a number >= 32"),
    ("jit_compile", True, r"--jit_compile needs --nodeterministic"),
])
def test_bad_flags_raise_naming_the_flag(field, value, message):
    with pytest.raises(ValueError, match=message):
        config_lib.make(source="sample", **{field: value})


def test_jit_with_mirrored_on_cpu_is_rejected(base_config, tmp_path):
    config = config_lib.replace(base_config, jit_compile=True, deterministic=False,
                                 distribution_strategy="mirrored")
    with pytest.raises(ValueError, match="--jit_compile with --distribution_strategy=mirrored"):
        train.train_and_evaluate(config, str(tmp_path / "jit"))


def test_missing_data_names_the_folder(base_config, tmp_path):
    missing = tmp_path / "no_such_folder"
    config = config_lib.replace(base_config, source="manual", manual_dir=str(missing), classes=None)
    with pytest.raises(ValueError, match="no_such_folder"):
        train.train_and_evaluate(config, str(tmp_path / "missing"))
    assert not os.path.exists(tmp_path / "missing" / "metrics.json")


@pytest.mark.parametrize("jit_compile", [False, True])
def test_an_epoch_traces_the_train_step_once_despite_a_smaller_last_batch(jit_compile):
    config = config_lib.make(source="sample", image_size=32, batch_size=16, epochs=2, jit_compile=jit_compile,
                                    deterministic=not jit_compile)
    # Op determinism is process-wide and other tests' runs leave it on; XLA needs it off.
    previous = tf_config.is_op_determinism_enabled()
    train._set_determinism(config.deterministic)  # pylint: disable=protected-access
    try:
        _train_twice_and_predict(config)
    finally:
        train._set_determinism(previous)  # pylint: disable=protected-access


def _train_twice_and_predict(config: config_lib.TrainConfig) -> None:
    trainer = trainer_lib.Trainer(config, tf.distribute.get_strategy(), 2, None)
    rng = np.random.default_rng(0)
    images = rng.normal(size=(40, 32, 32, 3)).astype(np.float32)
    labels = rng.integers(0, 2, 40)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16)  # 16, 16, 8
    for epoch in range(2):
        result = trainer.train_epoch(dataset, epoch)
        assert result["examples"] == 40 and np.isfinite(result["loss"])
    assert trainer._train_steps[1].experimental_get_tracing_count() == 1  # pylint: disable=protected-access
    predicted_labels, logits = trainer.predict_logits(dataset)
    assert logits.shape == (40, 2) and np.array_equal(predicted_labels, labels)
    assert trainer._predict.experimental_get_tracing_count() == 1  # pylint: disable=protected-access
