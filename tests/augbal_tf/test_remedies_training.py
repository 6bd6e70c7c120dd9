"""The #13 remedies wired into training: every loss, DRW, post-hoc adjustment, mixup/Remix.

Loss wiring is checked on the Trainer with synthetic images (no dataset); the
logit-adjusted run of the remedy matrix (trained once per session for this file and
test_decoupled_training, which checks every remedy per strategy and across resumes)
is checked end to end: metrics.json records, export and the evaluate command.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from augbal_tf import config as config_lib
from augbal_tf import evaluation
from augbal_tf import input_pipeline
from augbal_tf import losses
from augbal_tf import remedies
from augbal_tf import train
from augbal_tf import trainer as trainer_lib

pytestmark = pytest.mark.slow

TIMEOUT_S = 300
COUNTS = np.array([12, 4])
CLASSES = ("tshirt_top", "pullover")


def _batch(size: int = 8, seed: int = 1):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(size, 32, 32, 3)).astype(np.float32)
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 0][:size])
    return images, labels


def _trainer(**fields) -> trainer_lib.Trainer:
    # A learning rate of ~0 keeps the weights, so the step's loss is the loss of these weights.
    config = config_lib.make(source="sample", image_size=32, batch_size=8, dropout=0.0, learning_rate=1e-9,
                             head_width=16, epochs=3, **fields)
    return trainer_lib.Trainer(config, tf.distribute.get_strategy(), 2, None, COUNTS)


def _one_epoch(trainer, images, labels, epoch=0) -> float:
    return trainer.train_epoch(tf.data.Dataset.from_tensor_slices((images, labels)).batch(len(labels)), epoch)["loss"]


@pytest.mark.parametrize("fields", [
    {"loss": "cross_entropy"}, {"loss": "focal", "focal_gamma": 1.5}, {"loss": "class_balanced", "cb_beta": 0.9},
    {"loss": "class_balanced", "cb_beta": 0.99, "cb_gamma": 1.0}, {"loss": "logit_adjusted", "la_tau": 0.5},
    {"loss": "balanced_softmax"}, {"loss": "ldam", "ldam_scale": 10.0}])
def test_every_loss_trains_one_epoch_with_the_loss_of_make_loss(fields):
    trainer = _trainer(**fields)
    images, labels = _batch()
    logits = trainer.model(images, training=True)
    expected = float(tf.reduce_mean(losses.make_loss(
        fields["loss"], COUNTS, **config_lib.loss_params(trainer.config))(labels, logits)))
    assert _one_epoch(trainer, images, labels) == pytest.approx(expected, rel=1e-4)
    if fields["loss"] == "ldam":
        assert isinstance(trainer.model.head_output, losses.NormedDense)
        assert float(tf.reduce_max(tf.abs(logits))) <= 10.0 + 1e-4  # s * cos


def test_drw_switches_the_class_weights_exactly_at_drw_epoch():
    trainer = _trainer(drw_epoch=1, cb_beta=0.9)
    images, labels = _batch()
    logits = trainer.model(images, training=True)
    plain = tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True).numpy()
    weights = losses.drw_weights(1, 1, COUNTS, 0.9)
    assert _one_epoch(trainer, images, labels, epoch=0) == pytest.approx(plain.mean(), rel=1e-4)
    np.testing.assert_array_equal(trainer.class_weights.numpy(), [1.0, 1.0])
    assert _one_epoch(trainer, images, labels, epoch=1) == pytest.approx((plain * weights[labels]).mean(), rel=1e-4)
    np.testing.assert_array_equal(trainer.class_weights.numpy(), weights)
    # Derived from the epoch: going back (a resume from an earlier snapshot) restores them.
    _one_epoch(trainer, images, labels, epoch=0)
    np.testing.assert_array_equal(trainer.class_weights.numpy(), [1.0, 1.0])


@pytest.mark.parametrize("mode", ["mixup", "remix"])
def test_mix_trains_on_the_batch_mixed_with_the_seed_of_seed_epoch_step(mode):
    trainer = _trainer(mix=mode, mix_alpha=0.4)
    images, labels = _batch()
    seed = tf.random.experimental.stateless_fold_in(
        tf.constant([input_pipeline.epoch_seed(0, 2, trainer_lib.MIX_STREAM), 0], tf.int64),
        tf.constant(0, tf.int64))  # Replica 0 (the fold-in's dtype changes the seed).
    mixed, targets = remedies.mix_batch(images, tf.one_hot(labels, 2), seed, 0.4, mode, COUNTS, 3.0, 0.5)
    expected = float(tf.reduce_mean(losses.cross_entropy()(targets, trainer.model(mixed, training=True))))
    unmixed = float(tf.reduce_mean(losses.cross_entropy()(labels, trainer.model(images, training=True))))
    loss = _one_epoch(trainer, images, labels, epoch=2)
    assert loss == pytest.approx(expected, rel=1e-4) and loss != pytest.approx(unmixed, rel=1e-3)


def test_posthoc_tau_shifts_the_decisions_of_evaluate():
    trainer = _trainer(posthoc_tau=1.0)
    images, labels = _batch()
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
    _, logits = trainer.predict_logits(dataset)
    adjusted = remedies.posthoc_adjust(logits, COUNTS, 1.0).argmax(-1)
    expected = np.mean(adjusted == labels)
    assert trainer.evaluate(dataset, CLASSES)["accuracy"] == pytest.approx(expected)


@pytest.mark.parametrize("fields, message", [
    ({"focal_gamma": -1.0}, "--focal_gamma=-1.0 is not valid"),
    ({"cb_beta": 1.0}, "--cb_beta=1.0 is not valid"),
    ({"loss": "hinge"}, "--loss='hinge' is not valid; allowed: cross_entropy"),
    ({"mix": "cutmix"}, "--mix='cutmix' is not valid"),
    ({"loss": "ldam", "freeze_backbone": True}, "--loss=ldam with --freeze_backbone"),
    ({"loss": "class_balanced", "class_weight": "balanced"}, "--class_weight=balanced with --loss=class_balanced"),
    ({"drw_epoch": 1, "class_weight": "balanced"}, "--class_weight=balanced with --drw_epoch=1"),
    ({"drw_epoch": 2}, "--drw_epoch=2 is not valid with --epochs=2"),
    ({"mix": "mixup", "jit_compile": True, "deterministic": False}, "--mix=mixup cannot run with --jit_compile"),
    ({"posthoc_tau": -0.5}, "--posthoc_tau=-0.5 is not valid"),
])
def test_bad_values_fail_before_any_file_is_written(fields, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        config = config_lib.make(source="sample", epochs=2, **fields)
        train.train_and_evaluate(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("fields, message", [
    ({"loss": "logit_adjusted"}, r"--loss=logit_adjusted: counts must be >= 1 for every class"),
    ({"posthoc_tau": 1.0}, r"--posthoc_tau: train counts must be >= 1 for every class"),
    ({"drw_epoch": 1}, r"--drw_epoch: train counts must be >= 1"),
    ({"mix": "remix"}, r"--mix=remix: train counts must be >= 1"),
])
def test_count_dependent_checks_name_the_flag(fields, message):
    config = config_lib.make(source="sample", epochs=3, **fields)
    with pytest.raises(ValueError, match=message):
        trainer_lib.check_remedies(config, np.array([5, 0]))
    trainer_lib.check_remedies(config, np.array([5, 1]))


def test_defaults_keep_the_flags_hash_of_runs_before_the_remedies():
    config = config_lib.make(source="sample")
    assert config_lib.flags_hash(config) == config_lib.flags_hash(config_lib.replace(config, posthoc_tau=0.0))
    assert config_lib.flags_hash(config) != config_lib.flags_hash(config_lib.replace(config, posthoc_tau=1.0))
    hashed = {key: value for key, value in config_lib.to_dict(config).items()
              if key not in config_lib.UNHASHED_FIELDS and key not in config_lib.HASHED_ONLY_WHEN_SET}
    import hashlib  # pylint: disable=import-outside-toplevel
    assert config_lib.flags_hash(config) == hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()


# --- end to end: the logit-adjusted run of the default strategy's remedy matrix (conftest) ---------

@pytest.fixture(scope="module")
def posthoc_run(remedy_data_dir, remedy_matrix_default):
    """(config, workdir, metrics.json) of remedy_matrix's `logit_adjusted_posthoc` run (2 epochs)."""
    import remedy_matrix  # pylint: disable=import-outside-toplevel (tests/augbal_tf is on sys.path)

    root, results = remedy_matrix_default
    name = "logit_adjusted_posthoc"
    return remedy_matrix.config_of(name, remedy_data_dir), root / name, results[name]["metrics"]


def test_metrics_json_records_counts_loss_and_posthoc(posthoc_run):
    config, _, metrics = posthoc_run
    counts = metrics["train_counts"]
    assert sorted(counts) == [4, 16] and sum(counts) == metrics["split_sizes"]["train"]
    record = metrics["remedies"]
    assert record["loss"] == {"name": "logit_adjusted", "params": {"tau": 1.0}}
    np.testing.assert_allclose(record["posthoc"]["offsets"], -np.log(np.array(counts) / sum(counts)), rtol=1e-6)
    assert record["posthoc"]["tau"] == 1.0 and record["drw"] is None and record["mix"] is None
    assert metrics["test"]["shot_accuracy"] is not None
    assert config_lib.to_dict(config)["posthoc_tau"] == metrics["config"]["posthoc_tau"] == 1.0


def test_export_and_evaluate_command_reproduce_metrics_json_with_posthoc(posthoc_run, tmp_path):
    _, workdir, metrics = posthoc_run
    loaded = tf.saved_model.load(str(workdir / "export"))
    posthoc = loaded.posthoc()
    assert float(posthoc["tau"]) == 1.0
    np.testing.assert_allclose(posthoc["offsets"].numpy(), metrics["remedies"]["posthoc"]["offsets"], rtol=1e-6)
    assert loaded.train_counts().numpy().tolist() == metrics["train_counts"]
    output = tmp_path / "test.json"
    done = subprocess.run([sys.executable, "-m", "augbal_tf.evaluate", f"--flagfile={workdir / 'flags.txt'}",
                           f"--saved_model={workdir / 'export'}", "--split=test", f"--output={output}"],
                          capture_output=True, text=True, timeout=TIMEOUT_S,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(output.read_text()) == metrics["test"]


def test_evaluate_split_reads_the_counts_of_the_export(posthoc_run):
    config, workdir, metrics = posthoc_run
    classifier = evaluation.load_saved_model(workdir / "export")
    assert list(classifier.train_counts) == metrics["train_counts"]
    result = evaluation.evaluate_split(classifier, input_pipeline.load_variant(config).builder, "test", 8)
    assert result == metrics["test"]
