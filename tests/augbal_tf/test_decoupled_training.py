"""cRT, tau-normalisation, deferred re-sampling and the shot counts of #13, and every remedy per strategy.

Unit checks on tiny inputs first; then `remedy_matrix.py` trains every remedy in one
subprocess per strategy (default, one_device, mirrored with 2 logical CPUs), each run
resumed from a copy of its workdir after epoch 1 and each export evaluated, and one run
is SIGKILLed before its deferred re-sampling and in its cRT stage and resumed.
"""

import json
import os
import pathlib
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from augbal_tf import config as config_lib
from augbal_tf import input_pipeline
from augbal_tf import losses
from augbal_tf import model as model_lib
from augbal_tf import remedies
from augbal_tf import samplers
from augbal_tf import train
from augbal_tf import trainer as trainer_lib

import remedy_matrix  # tests/augbal_tf is on sys.path under pytest's default import mode.

HERE = pathlib.Path(__file__).parent
TIMEOUT_S = 1800  # One training subprocess of the kill-and-resume test.


# --- bad values fail before training -------------------------------------------------------------

@pytest.mark.parametrize("fields,message", [
    ({"crt_epochs": 2, "freeze_backbone": True}, "needs a trained backbone to freeze, but --freeze_backbone with "
                                                 "--weights=none"),
    ({"crt_epochs": 2, "drw_epoch": 1}, "re-balanced twice"),
    ({"crt_epochs": 2, "loss": "class_balanced"}, "re-balanced twice"),
    ({"crt_epochs": 2, "distribution_strategy": "multi_worker"}, "not supported with --distribution_strategy"),
    ({"crt_epochs": -1}, "--crt_epochs=-1 is not valid"),
    ({"tau_norm_tau": 0.5}, "--tau_norm_tau=0.5 needs --tau_norm"),
    ({"tau_norm": True, "tau_norm_tau": -0.5}, "--tau_norm_tau=-0.5 is not valid"),
    ({"tau_norm": True, "loss": "ldam"}, "unit-norm class vectors already"),
    ({"tau_norm": True, "validation_per_class": 0, "selection": "test"}, "chooses tau on the validation split"),
    ({"drs_epoch": 1}, "--drs_epoch=1 needs --sampler=class_balanced"),
    ({"drs_epoch": 3, "sampler": "class_balanced"}, "would never start"),
    # The remaining values of test_remedies_training's list (gamma, beta, the mix parameters).
    ({"cb_gamma": -0.5}, "--cb_gamma=-0.5 is not valid"),
    ({"cb_beta": -0.1}, r"--cb_beta=-0.1 is not valid; must be a finite number >= 0 and < 1.0"),
    ({"la_tau": float("inf")}, "--la_tau=inf is not valid"),
    ({"mix_alpha": 0.0}, "--mix_alpha=0.0 is not valid"),
    ({"ldam_max_margin": 0.0}, "--ldam_max_margin=0.0 is not valid"),
])
def test_bad_values_fail_before_any_file_is_written(fields, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        config = config_lib.make(source="sample", epochs=3, **fields)
        train.train_and_evaluate(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("fields,message", [
    ({"loss": "logit_adjusted", "la_tau": 0.5}, r"--loss=logit_adjusted: loss 'logit_adjusted' \(tau=0.5\) needs "
                                                 "the per-class training counts; got counts=None"),
    ({"loss": "balanced_softmax"}, "needs the per-class training counts; got counts=None"),
    ({"posthoc_tau": 1.0}, "--posthoc_tau: train counts must be a 1-D list"),
])
def test_tau_without_counts_names_the_flag(fields, message):
    config = config_lib.make(source="sample", epochs=3, **fields)
    with pytest.raises(ValueError, match=message):
        trainer_lib.check_remedies(config, None)


def test_crt_on_a_frozen_pretrained_backbone_is_allowed(tmp_path):
    weights = tmp_path / "backbone.weights.h5"
    weights.write_bytes(b"")  # Only its existence is checked here.
    config = config_lib.make(source="sample", epochs=3, crt_epochs=1, freeze_backbone=True, weights=str(weights))
    assert config.crt_epochs == 1


def test_new_flags_at_their_defaults_keep_the_flags_hash():
    config = config_lib.make(source="sample")
    hashed = config_lib.to_dict(config)
    assert all(key in config_lib.HASHED_ONLY_WHEN_SET for key in ("crt_epochs", "tau_norm", "tau_norm_tau",
                                                                   "drs_epoch"))
    assert hashed["tau_norm_tau"] is None
    assert config_lib.flags_hash(config_lib.replace(config, crt_epochs=1)) != config_lib.flags_hash(config)


# --- tau-normalisation -----------------------------------------------------------------------------

def test_choose_tau_by_hand():
    # Class 0's vector is 4x longer: untouched (tau 0) it wins everywhere; tau 1 makes both unit length.
    kernel = np.array([[4.0, 0.0], [0.0, 1.0]], np.float32)
    hidden = np.array([[1.0, 0.5], [0.5, 1.0], [1.0, 0.0], [0.2, 1.0]], np.float32)
    labels = np.array([0, 1, 0, 1])
    # tau 0: logits [4, .5], [2, 1], [4, 0], [.8, 1] -> 0, 0, 0, 1: balanced accuracy (1 + 0.5) / 2.
    np.testing.assert_allclose(remedies.tau_normalized_logits(hidden, kernel, 0.0), hidden @ kernel)
    np.testing.assert_allclose(remedies.tau_normalized_logits(hidden, kernel, 1.0), hidden)
    tau, scores = remedies.choose_tau(hidden, labels, kernel, grid=(0.0, 0.5, 1.0))
    # tau 0.5: kernel columns 2 and 1 -> [2, .5], [1, 1] (tie: argmax 0), [2, 0], [.4, 1]: 0.75 too.
    assert scores == {"0.0": 0.75, "0.5": 0.75, "1.0": 1.0} and tau == 1.0
    # Offsets (post-hoc) are added before the decision: a large class-1 offset makes every tau predict 1.
    tau, scores = remedies.choose_tau(hidden, labels, kernel, offsets=[0.0, 10.0], grid=(0.0, 1.0))
    assert scores == {"0.0": 0.5, "1.0": 0.5} and tau == 0.0  # Ties: the smaller tau.
    assert remedies.TAU_GRID == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def test_apply_tau_norm_rescales_the_output_kernel_and_zeroes_the_bias():
    model = model_lib.create_model("resnet18", 3, 32, head_width=4, dropout=0.0, seed=1)
    model(np.zeros((1, 32, 32, 3), np.float32))
    kernel = model.head_output.kernel.numpy()
    model.head_output.bias.assign([1.0, 2.0, 3.0])
    remedies.apply_tau_norm(model, 0.5)
    np.testing.assert_allclose(model.head_output.kernel.numpy(), kernel / np.linalg.norm(kernel, axis=0) ** 0.5,
                               rtol=1e-6)
    np.testing.assert_array_equal(model.head_output.bias.numpy(), [0.0, 0.0, 0.0])
    images = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype(np.float32)
    hidden = remedies.penultimate(model, model.features(images))
    np.testing.assert_allclose(model(images), hidden.numpy() @ model.head_output.kernel.numpy(), rtol=1e-5,
                               atol=1e-6)


# --- deferred re-sampling in the pipeline ----------------------------------------------------------

def _encoded(labels):
    images = np.random.default_rng(3).integers(0, 256, size=(len(labels), 8, 8, 3), dtype=np.uint8)
    return tf.data.Dataset.from_tensor_slices((images, np.asarray(labels, np.int64))).map(
        lambda image, label: (tf.io.encode_png(image), label))


def _epoch_labels(pipeline, epoch, sampler=None):
    return np.concatenate([labels.numpy() for _, labels in pipeline.epoch(9, epoch, sampler)])


def test_a_per_epoch_sampler_plain_epochs_equal_a_pipeline_without_sampler():
    labels = [0] * 12 + [1] * 3
    plain = input_pipeline.SplitPipeline(_encoded(labels), 15, 8, 5, cache=True)
    resampling = input_pipeline.SplitPipeline(_encoded(labels), 15, 8, 5, cache=True, sampler="class_balanced")
    # DRS before the switch: exactly the plain run's order.
    np.testing.assert_array_equal(_epoch_labels(resampling, 0, "none"), _epoch_labels(plain, 0))
    # From the switch: the sampler's draws of (seed, epoch).
    drawn = np.asarray(labels)[samplers.epoch_indices(labels, "class_balanced", 9, 1)]
    np.testing.assert_array_equal(_epoch_labels(resampling, 1, "class_balanced"), drawn)
    config = config_lib.make(source="sample", epochs=4, drs_epoch=2, sampler="square_root")
    assert [trainer_lib.epoch_sampler(config, epoch) for epoch in range(4)] == [
        "none", "none", "square_root", "square_root"]
    assert trainer_lib.epoch_sampler(config, 1, crt=True) == "class_balanced"
    with pytest.raises(ValueError, match="needs a pipeline made with resample=True"):
        plain.epoch(9, 0, "class_balanced")


# --- the cRT stage on the Trainer ------------------------------------------------------------------

def test_crt_stage_freezes_the_backbone_and_retrains_the_reset_head():
    config = config_lib.make(source="sample", image_size=32, batch_size=8, head_width=8, epochs=2, crt_epochs=1,
                             learning_rate=1e-2, dropout=0.0)
    trainer = trainer_lib.Trainer(config, tf.distribute.get_strategy(), 2, None, np.array([6, 2]))
    rng = np.random.default_rng(0)
    dataset = tf.data.Dataset.from_tensor_slices((rng.normal(size=(8, 32, 32, 3)).astype(np.float32),
                                                  np.array([0, 0, 0, 0, 0, 0, 1, 1]))).batch(8)
    initial_head = [variable.numpy() for variable in trainer.model.head_variables]
    trainer.train_epoch(dataset, 0)
    head_ids = {id(variable) for variable in trainer.model.head_variables}
    backbone = [variable for variable in trainer.model.variables if id(variable) not in head_ids]
    before = [variable.numpy() for variable in backbone]  # BatchNorm statistics included.
    assert not np.allclose(trainer.model.head_variables[0].numpy(), initial_head[0])
    trainer.reset_head()
    for variable, value in zip(trainer.model.head_variables, initial_head):
        np.testing.assert_array_equal(variable.numpy(), value)
    trainer.train_epoch(dataset, 1, trainer_lib.CRT_STAGE)
    for variable, value in zip(backbone, before):
        np.testing.assert_array_equal(variable.numpy(), value, err_msg=variable.path)
    assert not np.allclose(trainer.model.head_variables[0].numpy(), initial_head[0])
    assert int(trainer.crt_optimizer.iterations.numpy()) == 1 and trainer.optimizer.iterations.numpy() == 1


# --- every remedy per strategy (subprocesses) ------------------------------------------------------

def _run(script_args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *script_args], capture_output=True, text=True, timeout=TIMEOUT_S,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, check=False)


def _comparable(metrics: dict) -> dict:
    return {key: metrics[key] for key in ("selected_epoch", "validation", "test", "epochs_run", "remedies",
                                          "train_counts", "shot_counts")} | {
        "history": [{key: value for key, value in entry.items() if key != "seconds"} for entry in metrics["history"]]}


@pytest.fixture(scope="module")
def one_device(remedy_matrices) -> tuple[pathlib.Path, dict]:
    return remedy_matrices["one_device"]


def _check_run(name: str, result: dict) -> None:
    """Checks one matrix entry: export == metrics.json, every copy resumed == uninterrupted, its remedy records."""
    metrics = result["metrics"]
    assert result["evaluate"] == metrics["test"], name  # The export reproduces metrics.json.
    assert all(np.isfinite(entry["train"]["loss"]) for entry in metrics["history"]), name
    epochs = len(metrics["history"])
    resume_after = remedy_matrix.RESUME_AFTER.get(name, remedy_matrix.DEFAULT_RESUME_AFTER)
    assert sorted(map(int, result["resumed"])) == list(resume_after), name
    for epoch, resumed in result["resumed"].items():
        # Only the epochs after the copy were trained again, and they ended where the uninterrupted run did.
        assert resumed["trained"] == list(range(int(epoch) + 1, epochs + 1)), (name, epoch)
        assert _comparable(resumed["metrics"]) == _comparable(metrics), (name, epoch)
        assert resumed["weights"] == result["weights"], (name, epoch)
    record = metrics["remedies"]
    counts = np.array(metrics["train_counts"])
    if name == "combined":
        # 2 plain epochs, the first without the sampler (DRS), then 2 cRT epochs with class-balanced draws.
        assert [(entry["crt"], entry["sampler"]) for entry in metrics["history"]] == [
            (False, "none"), (False, "class_balanced"), (True, "class_balanced"), (True, "class_balanced")]
        assert record["crt"] == {"epochs": 2, "start_epoch": 2, "backbone_epoch": record["crt"]["backbone_epoch"],
                                 "sampler": "class_balanced"}
        assert record["crt"]["backbone_epoch"] in (1, 2) and metrics["selected_epoch"] in (3, 4)
        assert record["tau_norm"]["chosen_on"] == "validation balanced accuracy"
        scores = record["tau_norm"]["validation_balanced_accuracy"]
        assert len(scores) == 11 and scores[str(record["tau_norm"]["tau"])] == max(scores.values())
        assert record["drs"] == {"epoch": 1, "sampler": "class_balanced"} and record["posthoc"]["tau"] == 1.0
        assert record["mix"] == {"mode": "mixup", "alpha": 1.0}
    elif name in ("ldam_drw", "balanced_softmax_drw_remix"):
        assert record["drw"]["epoch"] == 1
        np.testing.assert_allclose(record["drw"]["weights"], losses.drw_weights(1, 1, counts, 0.99), rtol=1e-6)
        if name == "ldam_drw":
            np.testing.assert_allclose(record["ldam_margins"], losses.ldam_margins(counts, 0.5), rtol=1e-6)
        else:
            assert record["mix"] == {"mode": "remix", "alpha": 1.0, "kappa": 3.0, "tau": 0.5}
    elif name == "logit_adjusted_posthoc":
        assert record["loss"] == {"name": "logit_adjusted", "params": {"tau": 1.0}}
        np.testing.assert_allclose(record["posthoc"]["offsets"], -np.log(counts / counts.sum()), rtol=1e-6)


def _check_matrix(results: dict, replicas: int) -> None:
    assert set(results) == set(remedy_matrix.MATRIX)
    for name, result in results.items():
        _check_run(name, result)
        assert result["metrics"]["environment"]["replicas"] == replicas, name


def _strategy_free(record: dict) -> dict:
    # tau-normalisation's scores and cRT's backbone epoch follow the trained numbers, which differ per strategy.
    return {key: value for key, value in record.items() if key not in ("tau_norm", "crt")}


def test_every_remedy_trains_resumes_exports_and_evaluates_equal_on_the_default_strategy(remedy_matrix_default):
    root, results = remedy_matrix_default
    _check_matrix(results, 1)
    oversampled = results["class_balanced_square_root"]["metrics"]
    # Random oversampling trains on 16 + 16 images, 4 of the minority's real: the shot groups use 4.
    assert sorted(oversampled["train_counts"]) == [16, 16] and sorted(oversampled["shot_counts"]) == [4, 16]
    assert oversampled["remedies"]["tau_norm"] == {"tau": 0.5, "chosen_on": "flag",
                                                   "validation_balanced_accuracy": None}
    loaded = tf.saved_model.load(str(root / "class_balanced_square_root" / "export"))
    assert loaded.shot_counts().numpy().tolist() == oversampled["shot_counts"]
    assert bool(loaded.tau_norm()["applied"]) and float(loaded.tau_norm()["tau"]) == 0.5


def test_every_remedy_trains_resumes_exports_and_evaluates_equal_on_one_device(remedy_matrix_default, one_device):
    _check_matrix(one_device[1], 1)
    for name, result in one_device[1].items():
        assert _strategy_free(result["metrics"]["remedies"]) == _strategy_free(
            remedy_matrix_default[1][name]["metrics"]["remedies"]), name


def test_every_remedy_trains_resumes_exports_and_evaluates_equal_mirrored(remedy_matrices, remedy_matrix_default):
    # Remix and mixup under MirroredStrategy: each replica mixes its own sub-batch.
    mirrored = remedy_matrices["mirrored"][1]
    _check_matrix(mirrored, 2)
    for name, result in mirrored.items():
        assert _strategy_free(result["metrics"]["remedies"]) == _strategy_free(
            remedy_matrix_default[1][name]["metrics"]["remedies"]), name


def test_a_run_killed_before_drs_and_in_its_crt_stage_resumes_exactly(remedy_data_dir, one_device, tmp_path):
    _, expected = one_device
    flag_list = [f"--{key}={','.join(value) if isinstance(value, tuple) else value}"
                 for key, value in {**remedy_matrix.VARIANT, **remedy_matrix.MATRIX["combined"]}.items()]
    flag_list += [f"--data_dir={remedy_data_dir}", f"--workdir={tmp_path / 'run'}",
                  "--distribution_strategy=one_device"]
    # After epoch 1: the last plain epoch before deferred re-sampling starts.
    killed = _run([str(HERE / "killing_train.py"), "--kill_after_epoch=1", *flag_list])
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    # After epoch 3: the first cRT epoch, past the switch's own snapshot.
    killed = _run([str(HERE / "killing_train.py"), "--kill_after_epoch=3", *flag_list])
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert "Resuming from the snapshot after epoch 1" in killed.stderr
    resumed = _run(["-m", "augbal_tf.train", *flag_list])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming from the snapshot after epoch 3" in resumed.stderr
    actual = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert _comparable(actual) == _comparable(expected["combined"]["metrics"])
    assert remedy_matrix.weights_digest(tmp_path / "run" / "best.weights.h5") == expected["combined"]["weights"]
