"""Trains and evaluates one model: `python -m augbal_tf.train --flagfile=F`.

`train_and_evaluate(config, workdir)` is the library entry (the study calls
it in-process for many runs); `main` only parses flags and calls it.
"""

import dataclasses
import json
import os
import pathlib
import shutil
import sys
import time

from absl import app
from absl import flags
from absl import logging
import keras
import numpy as np
import tensorflow as tf

from augbal_datasets.augbal import prepare
from augbal_tf import config as config_lib
from augbal_tf import distribution
from augbal_tf import environment
from augbal_tf import evaluation
from augbal_tf import export
from augbal_tf import feature_cache
from augbal_tf import fileio
from augbal_tf import fine_tune
from augbal_tf import flags as flags_lib  # pylint: disable=unused-import (defines the flags)
from augbal_tf import input_pipeline
from augbal_tf import locks
from augbal_tf import losses
from augbal_tf import metrics as metrics_lib
from augbal_tf import model as model_lib
from augbal_tf import precision as precision_lib
from augbal_tf import remedies
from augbal_tf import resume
from augbal_tf import tensorboard_logging
from augbal_tf import trainer as trainer_lib
from augbal_tf import workdir as workdir_lib

FLAGS = flags.FLAGS

TEST_SELECTION_NOTE = ("paper-faithful selection on the TEST split: the selected epoch maximises test "
                       "accuracy, so test numbers are optimistic (the test set leaked into model selection)")


def _set_determinism(deterministic: bool) -> None:
    # Op determinism is process-wide; set it to this run's value (a study may mix runs).
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    else:
        from tensorflow.python.framework import config as tf_config  # pylint: disable=g-import-not-at-top
        tf_config.disable_op_determinism()


def _check_splits(config: config_lib.TrainConfig, variant: input_pipeline.Variant) -> None:
    name = variant.builder.info.config_name
    if "test" not in variant.split_sizes:
        raise ValueError(f"dataset variant {name!r} has no test split")
    if config.selection == "validation" and not variant.split_sizes.get("validation"):
        raise ValueError(f"--selection=validation needs a validation split, but dataset variant {name!r} "
                         f"has none; set --validation_per_class > 0 or --selection=test")


def _full_model(config: config_lib.TrainConfig, num_classes: int, weights=None) -> keras.Model:
    """The run's classifier built outside the training strategy's scope (one device, float32)."""
    extra = {} if weights is None else {"weights": weights}  # ResNets take no weights argument.
    return model_lib.create_model(config.model, num_classes, config.image_size,
                                  bn_mode=config_lib.resolved_bn_mode(config), head_width=config.head_width,
                                  dropout=config.dropout, seed=config.seed, head_scale=trainer_lib.head_scale(config),
                                  **extra)


def _best_model(config: config_lib.TrainConfig, num_classes: int, best_weights: str) -> keras.Model:
    """The model with the best weights (--tau_norm is applied afterwards, by `_tau_norm`)."""
    best_model = _full_model(config, num_classes)
    best_model.load_weights(best_weights)
    return best_model


def _served_model(config: config_lib.TrainConfig, num_classes: int, head: keras.Model) -> keras.Model:
    """The full model (backbone + `head`'s weights) of a cached-feature run, as `_best_model` builds it.

    The frozen backbone's weights are the ones it started from (--weights), so the exported
    model takes uint8 images exactly as an uncached run's does.
    """
    model = _full_model(config, num_classes, weights=config_lib.model_weights(config))
    model_lib.copy_head(head, model)
    return model


def _final_metrics(config: config_lib.TrainConfig, variant: input_pipeline.Variant, best_model: keras.Model,
                   counts: np.ndarray, shot_counts: np.ndarray) -> dict:
    """Per-split metrics of the best weights, through the serving function on one device.

    Under MirroredStrategy each replica keeps its own BatchNorm moving statistics and
    only replica 0's are saved: evaluating the saved weights through the same serving
    function as the SavedModel makes these numbers equal what `augbal_tf.evaluate` reports.
    """
    serve = export.serving_function(best_model, config.image_size, offsets=trainer_lib.posthoc_offsets(config, counts))
    results = {}
    for split in ("validation", "test"):
        if variant.split_sizes.get(split):
            results[split] = evaluation.evaluate_dataset(serve, prepare.as_decoded_dataset(variant.builder, split),
                                                       variant.class_names, config.batch_size, shot_counts)
        else:
            results[split] = None
    return results


def _feature_metrics(config: config_lib.TrainConfig, model: keras.Model, cached: feature_cache.CachedSplits,
                     variant: input_pipeline.Variant, counts: np.ndarray, shot_counts: np.ndarray) -> dict:
    """`_final_metrics` on cached features: the serving function's softmax(head + offsets) without the backbone.

    The same predictions as the SavedModel up to float rounding: the cached features were
    computed in other batches than the serving function's, and oneDNN's convolutions sum
    in a batch-dependent order (differences of ~1e-6 in the probabilities).
    """
    offsets = trainer_lib.posthoc_offsets(config, counts)
    head = tf.function(lambda inputs: tf.nn.softmax(
        model.head(inputs, training=False) + (0.0 if offsets is None else tf.constant(offsets, tf.float32)), axis=-1))
    results = {}
    for split in ("validation", "test"):
        if not variant.split_sizes.get(split):
            results[split] = None
            continue
        features = cached.features[split]
        probabilities = np.concatenate([head(tf.constant(features[start:start + config.batch_size])).numpy()
                                        for start in range(0, len(features), config.batch_size)])
        results[split] = metrics_lib.classification_metrics(cached.labels[split], probabilities.argmax(axis=1),
                                                            variant.class_names, probabilities,
                                                            train_counts=shot_counts)
    return results


def train_counts(variant: input_pipeline.Variant) -> np.ndarray:
    """Per-class counts of the split trained on: the loss's priors, DRW, post-hoc offsets, Remix, shot accuracy."""
    return np.bincount(variant.labels("train"), minlength=len(variant.class_names))


def _tau_norm(config: config_lib.TrainConfig, model: keras.Model, validation, from_features: bool,
              counts: np.ndarray) -> dict | None:
    """Applies --tau_norm to `model` in place and returns its metrics.json record (None when off).

    Without --tau_norm_tau, tau is the one of `remedies.TAU_GRID` with the best validation
    balanced accuracy (the post-hoc offsets included, as served). `validation` yields the
    validation split's (model inputs, labels) batches: images, or cached features.
    """
    if not config.tau_norm:
        return None
    tau, scores = config.tau_norm_tau, None
    if tau is None:
        hidden, labels = [], []
        for inputs, batch_labels in validation:
            features = inputs if from_features else model.features(inputs, training=False)
            hidden.append(keras.ops.convert_to_numpy(remedies.penultimate(model, features)))
            labels.append(np.asarray(batch_labels))
        kernel = keras.ops.convert_to_numpy(model.head_output.kernel)
        tau, scores = remedies.choose_tau(np.concatenate(hidden), np.concatenate(labels), kernel,
                                          trainer_lib.posthoc_offsets(config, counts))
    remedies.apply_tau_norm(model, tau)
    return {"tau": tau, "chosen_on": "flag" if scores is None else "validation balanced accuracy",
            "validation_balanced_accuracy": scores}


def _checked_variant(config: config_lib.TrainConfig) -> input_pipeline.Variant:
    """The dataset variant, after the checks that need its splits and train counts."""
    variant = input_pipeline.load_variant(config)
    _check_splits(config, variant)
    # Value ranges were checked when the config was built; these need the counts.
    trainer_lib.check_remedies(config, train_counts(variant))
    return variant


def _remedies_record(config: config_lib.TrainConfig, counts: np.ndarray, loss) -> dict:
    """What metrics.json records of the loss, DRW, post-hoc adjustment and mixing (#13)."""
    offsets = trainer_lib.posthoc_offsets(config, counts)
    record = {
        "loss": {"name": loss.name, "params": loss.params},
        "drw": None,
        "posthoc": None if offsets is None else {"tau": config.posthoc_tau, "offsets": offsets.tolist()},
        "mix": None if config.mix == "none" else {
            "mode": config.mix, "alpha": config.mix_alpha,
            **({"kappa": config.remix_kappa, "tau": config.remix_tau} if config.mix == "remix" else {})},
        # The margins of the cosines (the loss subtracts ldam_scale times them from the scaled logits).
        "ldam_margins": losses.ldam_margins(counts, config.ldam_max_margin).tolist() if loss.name == "ldam" else None,
    }
    if loss.name == "class_balanced":
        record["loss"]["class_weights"] = loss.class_weights.tolist()
    if config.drw_epoch:
        record["drw"] = {"epoch": config.drw_epoch, "beta": config.cb_beta,
                         "weights": trainer_lib.epoch_class_weights(config, config.drw_epoch, counts, None,
                                                                    len(counts)).tolist()}
    return record


def _fine_tune_record(config: config_lib.TrainConfig, trainer: trainer_lib.Trainer) -> dict | None:
    """What metrics.json records of two-stage fine-tuning (None when off); history has each epoch's stage."""
    if not config.fine_tune_epoch:
        return None
    return {"epoch": config.fine_tune_epoch, "layers": config.fine_tune_layers or "all",
            "learning_rate": fine_tune.learning_rate(config),
            "bn_mode": config_lib.resolved_bn_mode(config),
            "variables": {"stage_1": len(trainer.variables), "stage_2": len(trainer.fine_tune_variables)},
            "parameters": {"stage_1": _count(trainer.variables), "stage_2": _count(trainer.fine_tune_variables)}}


def _count(variables) -> int:
    return int(sum(np.prod(variable.shape) for variable in variables))


def train_and_evaluate(config: config_lib.TrainConfig, workdir: str, *,
                       after_epoch: trainer_lib.EpochHook | None = None) -> dict:
    """Trains a model for `config` in `workdir` (resuming or reusing it) and returns metrics.json.

    Args:
      config: the validated run configuration.
      workdir: output folder (layout in `augbal_tf.workdir`), owned by this process for the run.
      after_epoch: called after each epoch's snapshot (tests use it to kill the process).

    Returns:
      The content of `workdir/metrics.json`.

    Raises:
      ValueError: on a workdir holding a different run, a dataset variant that lacks
        a needed split (the config validated itself when it was built).
      locks.BusyError: another process owns the workdir.
    """
    if not config.data_dir:
        config = dataclasses.replace(config, data_dir=config_lib.default_data_dir())
    model_lib.preprocessing_for(config.model)  # An unknown --model fails before any file is written.
    start = time.perf_counter()
    workdir = pathlib.Path(os.path.abspath(os.path.expanduser(workdir)))
    distribution.configure_cpu_devices(config.cpu_devices)
    # The strategy first: MultiWorkerMirroredStrategy must precede TensorFlow's runtime start.
    strategy = distribution.create_strategy(config.distribution_strategy, config.jit_compile)
    fine_tune.check(config)  # A --fine_tune_layers beyond the backbone's blocks fails before any file is written.
    keras.backend.clear_session()  # No Keras state carried over from an earlier run in this process.
    _set_determinism(config.deterministic)
    distribution.replica_batch_size(config.batch_size, strategy)
    task_index, is_chief = distribution.task_info(strategy)
    lock = locks.acquire(workdir, f"task{task_index}", "workdir")
    try:
        return _train_locked(config, workdir, strategy, task_index, is_chief, start, after_epoch)
    finally:
        lock.release()


def _train_locked(config: config_lib.TrainConfig, workdir: pathlib.Path, strategy: tf.distribute.Strategy,
                  task_index: int, is_chief: bool, start: float, after_epoch) -> dict:
    variant = None
    if config.overwrite or workdir_lib.status(workdir, config) in (workdir_lib.Status.NEW,
                                                                   workdir_lib.Status.RESUME):
        # A run that will train: the count-dependent remedy checks fail before its files are written.
        variant = _checked_variant(config)
    status = workdir_lib.prepare(workdir, config, write=is_chief)
    if status is workdir_lib.Status.FINISHED:
        logging.info("Run in %s already finished with the same flags; nothing to do", workdir)
        return workdir_lib.read_metrics(workdir)

    if variant is None:
        variant = _checked_variant(config)
    class_names = variant.class_names
    logging.info("Dataset variant %s: classes %s, split sizes %s", variant.builder.info.config_name,
                 list(class_names), variant.split_sizes)
    weights = input_pipeline.class_weights(variant.labels("train"), len(class_names), config.class_weight)
    counts = train_counts(variant)
    # The shot groups count real images (oversampled copies would put every class in "many").
    shot_counts = input_pipeline.real_counts(variant)

    # Online augmentation and re-sampling (#14, #13): the training split only.
    # `--online_classes=minority` by real counts: after oversampling every class has the majority's.
    online = input_pipeline.online_augmentation(config, class_names, shot_counts)

    # The cached-feature fast path (#12): the same pipeline over features computed once.
    refusal = feature_cache.refusal(config)
    trainer = trainer_lib.Trainer(config, strategy, len(class_names), weights, counts, features=refusal is None)
    cached, cache_record = None, feature_cache.not_used_record(refusal)
    if refusal is None:
        directory = feature_cache.cache_dir()
        cached = feature_cache.split_features(feature_cache.Extractor(config), variant, variant.split_sizes,
                                              config.image_size, directory)
        cache_record = cached.record(directory)
        logging.info("Cached features in %s: %d computed, %d read", directory, cached.counts["computed"],
                     cached.counts["read"])
    else:
        logging.info("Training without cached features: %s", refusal)

    def pipeline(split: str, **online_kwargs) -> input_pipeline.SplitPipeline:
        source = variant.encoded(split) if cached is None else cached.dataset(split)
        return input_pipeline.SplitPipeline(source, variant.split_sizes[split], config.image_size,
                                            config.batch_size, config.cache, config.deterministic,
                                            strategy.num_replicas_in_sync, model_lib.preprocessing_for(config.model),
                                            features=cached is not None, **online_kwargs)

    train = pipeline("train", online=online, sampler=config.sampler, resample=config.crt_epochs > 0)
    evaluation = {"validation": pipeline("validation")} if variant.split_sizes.get("validation") else {}
    if config.selection == "test":
        evaluation["test"] = pipeline("test")
    backup_dir = workdir_lib.backup_dir(workdir, task_index)
    if config.overwrite and not is_chief:
        shutil.rmtree(backup_dir, ignore_errors=True)
    # Multi-worker tasks resume from the latest epoch that every task has a snapshot of.
    epoch = int(trainer.agree(resume.latest_epoch(backup_dir), np.min))
    state = trainer_lib.restore_snapshot(backup_dir, trainer, epoch)
    if state is None:
        state = trainer_lib.LoopState()
    else:
        logging.info("Resuming from the snapshot after epoch %d in %s", state.epochs_done, backup_dir)
    epochs_before = state.epochs_done
    best_weights = str(workdir / workdir_lib.BEST_WEIGHTS_FILE)
    writers = tensorboard_logging.Writers(workdir / workdir_lib.TENSORBOARD_DIR) if is_chief else None
    try:
        state = trainer_lib.run(trainer, train, evaluation, class_names, state, str(backup_dir),
                                best_weights if is_chief else None, writers, after_epoch)
        # A barrier (multi-worker): every task has written its last snapshot before the
        # chief goes on to finish the run and delete the backups.
        trainer.agree(0.0)
        if not is_chief:
            return {}
        best_model = None
        if cached is None:
            best_model = _best_model(config, len(class_names), best_weights)
            tau_record = _tau_norm(config, best_model, evaluation.get("validation") and
                                   evaluation["validation"].ordered(), False, counts)
            results = _final_metrics(config, variant, best_model, counts, shot_counts)
        else:
            # The backbone never changed: the best head on the cached features gives the served
            # model's predictions (the trainer's model is the head alone; best_weights holds the head).
            trainer.model.load_weights(best_weights)
            tau_record = _tau_norm(config, trainer.model, evaluation.get("validation") and
                                   evaluation["validation"].ordered(), True, counts)
            results = _feature_metrics(config, trainer.model, cached, variant, counts, shot_counts)
        for split, result in results.items():
            if result is not None:
                writers.image(split, "confusion_matrix", tensorboard_logging.confusion_matrix_png(
                    result["confusion_matrix"], class_names, f"{split}, epoch {state.best_epoch}"),
                    step=state.best_epoch)
    finally:
        if writers:
            writers.close()
    if config.export:
        tau = None if tau_record is None else tau_record["tau"]
        if best_model is None:
            # trainer.model is the best head, tau-normalised in place above when --tau_norm is on.
            best_model = _served_model(config, len(class_names), trainer.model)
        export.export_saved_model(best_model, workdir / workdir_lib.EXPORT_DIR, class_names, config.image_size,
                                  train_counts=counts, posthoc_tau=config.posthoc_tau,
                                  offsets=trainer_lib.posthoc_offsets(config, counts), shot_counts=shot_counts,
                                  tau_norm=tau)
    metrics = {
        "selected_epoch": state.best_epoch,
        "selection": config.selection,
        "selection_note": (TEST_SELECTION_NOTE if config.selection == "test" else
                           "selected epoch maximises validation balanced accuracy; test is held out"),
        "class_names": list(class_names),
        "validation": results["validation"],
        "test": results["test"],
        "epochs_run": state.epochs_done,
        "stopped_early": (state.epochs_done if state.crt_start is None else state.crt_start) < config.epochs,
        # Epoch times of earlier (killed) invocations + everything this invocation did besides epochs.
        "wall_time_s": state.train_seconds + (time.perf_counter() - start) - sum(
            entry["seconds"] for entry in state.history[epochs_before:]),
        "dataset_variant": variant.builder.info.config_name,
        "split_sizes": variant.split_sizes,
        "train_counts": counts.tolist(),
        "shot_counts": shot_counts.tolist(),
        "remedies": {**_remedies_record(config, counts, trainer.loss),
                     "crt": None if not config.crt_epochs else {
                         "epochs": config.crt_epochs, "start_epoch": state.crt_start,
                         "backbone_epoch": state.crt_backbone_epoch, "sampler": "class_balanced"},
                     "tau_norm": tau_record,
                     "drs": None if not config.drs_epoch else {"epoch": config.drs_epoch,
                                                               "sampler": config.sampler}},
        "online": input_pipeline.online_record(config, online, class_names),  # #14, #13
        "fine_tune": _fine_tune_record(config, trainer),  # #12
        "feature_cache": cache_record,  # #12
        "flags_hash": config_lib.flags_hash(config),
        "config": config_lib.to_dict(config),
        "history": state.history,
        "environment": {**environment.describe(distribution.device_names(strategy), config.distribution_strategy,
                                               strategy.num_replicas_in_sync),
                        "precision": precision_lib.describe(config_lib.requested_precision(config))},
    }
    # metrics.json is written last: its presence marks the run as finished.
    fileio.write_atomic(workdir / workdir_lib.METRICS_FILE, json.dumps(metrics, indent=2))
    shutil.rmtree(workdir / workdir_lib.BACKUP_DIR, ignore_errors=True)
    logging.info("Finished: selected epoch %s (%s); test accuracy %.4f, balanced accuracy %.4f; %s",
                 state.best_epoch, config.selection, results["test"]["accuracy"],
                 results["test"]["balanced_accuracy"], workdir / workdir_lib.METRICS_FILE)
    return metrics


def main(argv) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.workdir:
        raise app.UsageError("--workdir is required")
    try:
        config = config_lib.from_flags(FLAGS)
        train_and_evaluate(config, FLAGS.workdir)
    except ValueError as error:
        logging.error("%s", error)
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def run() -> None:
    """Console-script entry point (`augbal-train`)."""
    app.run(main)


if __name__ == "__main__":
    run()
