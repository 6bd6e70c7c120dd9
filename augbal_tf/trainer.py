"""The training loop: a custom `strategy.run` step, per-epoch evaluation, early stopping, snapshots.

A custom loop (rather than `model.fit`) because Keras 3.15's `fit` crashes under
MultiWorkerMirroredStrategy (keras-team/keras#20585), and because resuming
exactly needs the dropout stream, shuffle order, optimizer state and
early-stopping state under our control.
"""

import dataclasses
import time
from collections.abc import Callable

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from augbal_tf import backbones
from augbal_tf import config as config_lib
from augbal_tf import feature_cache
from augbal_tf import fileio
from augbal_tf import fine_tune
from augbal_tf import input_pipeline
from augbal_tf import losses
from augbal_tf import metrics as metrics_lib
from augbal_tf import precision as precision_lib
from augbal_tf import model as model_lib
from augbal_tf import remedies
from augbal_tf import resume
from augbal_tf import tensorboard_logging

# Stream of the mixup/Remix draws (input_pipeline owns 0: shuffle, 1: dropout).
MIX_STREAM = 2
# The training stage of cRT's epochs (fine-tuning's are 1 and 2).
CRT_STAGE = 3

@dataclasses.dataclass
class LoopState:
    """The training loop's bookkeeping after `epochs_done` completed epochs (snapshotted each epoch)."""

    epochs_done: int = 0
    best_value: float | None = None
    best_epoch: int | None = None
    epochs_without_improvement: int = 0
    history: list = dataclasses.field(default_factory=list)
    train_seconds: float = 0.0
    # cRT (--crt_epochs): epochs done when its stage started (None: not yet) and the epoch whose
    # backbone it froze (the main training's best).
    crt_start: int | None = None
    crt_backbone_epoch: int | None = None


def record_epoch(state: LoopState, value: float) -> bool:
    """Updates the best-model and early-stopping bookkeeping with epoch `epochs_done + 1`'s value.

    Returns:
      True when `value` strictly improves on the best so far (ties keep the earlier epoch).
    """
    improved = state.best_value is None or value > state.best_value
    if improved:
        state.best_value, state.best_epoch, state.epochs_without_improvement = value, state.epochs_done + 1, 0
    else:
        state.epochs_without_improvement += 1
    state.epochs_done += 1
    return improved


def should_stop(state: LoopState, epochs: int, patience: int, fine_tune_epoch: int = 0) -> bool:
    """True after `epochs` epochs, or `patience` epochs without improvement (patience 0: never early).

    Fine-tuning's stage 1 (before `fine_tune_epoch` epochs) never stops early.
    """
    if state.epochs_done >= epochs:
        return True
    return bool(patience and state.epochs_done >= fine_tune_epoch and state.epochs_without_improvement >= patience)


def start_stage_two(state: LoopState) -> None:
    """At the switch to fine-tuning's stage 2, patience counts again (the best epoch so far stays)."""
    state.epochs_without_improvement = 0


def start_crt(trainer: "Trainer", state: LoopState, backup_dir: str, best_weights_path: str | None) -> None:
    """Switches to the cRT stage: best weights, a re-initialised head, selection over cRT epochs only.

    The switch is snapshotted at once (replacing the last epoch's snapshot), so a run killed
    in the cRT stage resumes from this state and never re-reads the best-weights file, which
    the cRT epochs overwrite.
    """
    if best_weights_path:
        trainer.model.load_weights(best_weights_path)
    trainer.reset_head()
    state.crt_start, state.crt_backbone_epoch = state.epochs_done, state.best_epoch
    state.best_value, state.best_epoch, state.epochs_without_improvement = None, None, 0
    save_snapshot(backup_dir, trainer, state)


def save_snapshot(backup_dir: str, trainer: "Trainer", state: LoopState) -> None:
    resume.save(backup_dir, trainer.checkpoint, state.epochs_done, dataclasses.asdict(state))


def restore_snapshot(backup_dir: str, trainer: "Trainer", epoch: int) -> LoopState | None:
    saved = resume.restore(backup_dir, trainer.checkpoint, epoch)
    return None if saved is None else LoopState(**saved)


# Called after each epoch's snapshot is saved (tests inject one that kills the process).
EpochHook = Callable[[LoopState], None]


def build_optimizer(config: config_lib.TrainConfig, precision: str,
                    learning_rate: float | None = None) -> keras.optimizers.Optimizer:
    """The optimizer named by --optimizer (loss-scaled only when the resolved `precision` is float16).

    `learning_rate` defaults to --learning_rate (fine-tuning's stage 2 passes its own).
    """
    decay = config.weight_decay or None
    rate = config.learning_rate if learning_rate is None else learning_rate
    if config.optimizer == "adam":
        optimizer = keras.optimizers.Adam(rate, weight_decay=decay)
    elif config.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(rate, weight_decay=config.weight_decay)
    elif config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(rate, momentum=config.momentum, weight_decay=decay)
    elif config.optimizer == "rmsprop":
        optimizer = keras.optimizers.RMSprop(rate, momentum=config.momentum, weight_decay=decay)
    else:
        raise ValueError(f"--optimizer={config.optimizer!r} is not valid; allowed: "
                         f"{', '.join(config_lib.OPTIMIZERS)}")
    return keras.optimizers.LossScaleOptimizer(optimizer) if precision_lib.needs_loss_scaling(precision) else optimizer


def training_checkpoint(model: keras.Model, optimizer: keras.optimizers.Optimizer,
                        fine_tune_optimizer: keras.optimizers.Optimizer | None = None,
                        crt_optimizer: keras.optimizers.Optimizer | None = None) -> tf.train.Checkpoint:
    """A checkpoint of every model and optimizer variable, keyed by position.

    Not `tf.train.Checkpoint(model=model)`: TF's object graph does not follow Keras 3
    layer lists (the ResNet blocks), so it would silently skip most of the model.
    Positions are stable for a given architecture, unlike Keras' auto-generated names.
    The stage-2 optimizer of fine-tuning is saved from the start (its state is zero in
    stage 1), so a snapshot of either stage restores both.
    """
    variables = {f"model_{index:04d}": variable for index, variable in enumerate(model.variables)}
    variables.update({f"optimizer_{index:04d}": variable for index, variable in enumerate(optimizer.variables)})
    if fine_tune_optimizer is not None:
        variables.update({f"fine_tune_optimizer_{index:04d}": variable
                          for index, variable in enumerate(fine_tune_optimizer.variables)})
    if crt_optimizer is not None:  # cRT's head optimizer, saved from the start as fine-tuning's.
        variables.update({f"crt_optimizer_{index:04d}": variable
                          for index, variable in enumerate(crt_optimizer.variables)})
    return tf.train.Checkpoint(**variables)


def make_loss(config: config_lib.TrainConfig, counts) -> losses.Loss:
    """The --loss of `config` for the per-class training counts (validated: raises ValueError)."""
    try:
        return losses.make_loss(config.loss, counts, **config_lib.loss_params(config))
    except ValueError as error:
        raise ValueError(f"--loss={config.loss}: {error}") from None


def head_scale(config: config_lib.TrainConfig) -> float | None:
    """The `head_scale` of `model.create_model`: LDAM's cosine head, else None (a Dense head)."""
    return config.ldam_scale if config.loss == "ldam" else None


def epoch_class_weights(config: config_lib.TrainConfig, epoch: int, counts, base: np.ndarray | None,
                        num_classes: int) -> np.ndarray:
    """The loss's class weights in 0-based `epoch`: DRW's CB weights from --drw_epoch on, else `base` or ones.

    A function of the epoch alone, so a resumed run re-derives them exactly.
    """
    if config.drw_epoch:
        weights = losses.drw_weights(epoch, config.drw_epoch, counts, config.cb_beta)
        if weights is not None:
            return weights
    return np.ones(num_classes, np.float32) if base is None else np.asarray(base, np.float32)


def check_remedies(config: config_lib.TrainConfig, counts) -> None:
    """The count-dependent checks of the loss, DRW, post-hoc and Remix settings (ValueError naming the flag)."""
    make_loss(config, counts)
    for flag, active in (("drw_epoch", config.drw_epoch), ("posthoc_tau", config.posthoc_tau),
                         ("mix=remix", config.mix == "remix")):
        if active:
            try:
                losses.check_counts(counts, "train counts")
            except ValueError as error:
                raise ValueError(f"--{flag}: {error}") from None


def posthoc_offsets(config: config_lib.TrainConfig, counts) -> np.ndarray | None:
    """float32 [C] added to the logits before the decision (--posthoc_tau), or None when off."""
    return remedies.posthoc_offsets(counts, config.posthoc_tau) if config.posthoc_tau else None


class Trainer:
    """Model, optimizer and step functions, all created in the strategy's scope."""

    def __init__(self, config: config_lib.TrainConfig, strategy: tf.distribute.Strategy, num_classes: int,
                 class_weights: np.ndarray | None, counts=None, features: bool = False):
        self.config, self.strategy, self.num_classes = config, strategy, num_classes
        # A frozen inference-mode backbone runs with training=False (the Keras transfer-learning
        # convention: no drop-connect either), so its features are fixed and `features` (the
        # cached path, #12: batches of pooled features instead of images) trains the same head,
        # built alone (`model_lib.HeadClassifier`).
        self.fixed_backbone = feature_cache.fixed_backbone(config)
        if features and not self.fixed_backbone:
            raise ValueError("cached features need a frozen backbone in inference mode")
        self.features = features
        # Without counts (tests of the plain loop) only the count-free settings work: the remedies
        # that need them get None and raise.
        self.counts = None if counts is None else np.asarray(counts)
        self.loss = make_loss(config, counts)
        self.base_weights = class_weights
        self.offsets = posthoc_offsets(config, counts)
        # Resolved once (auto reads the CPU flags and asks TensorFlow for GPUs).
        self.precision = precision_lib.resolve_precision(config_lib.requested_precision(config))
        with strategy.scope():
            if features:
                # Only the head (the same layers and initial values): the backbone is not needed to
                # train on cached features, and building and tracing it costs more than the epochs.
                self.model = model_lib.create_head_model(
                    config.model, num_classes, head_width=config.head_width, dropout=config.dropout,
                    seed=config.seed, head_scale=head_scale(config), dtype=precision_lib.keras_policy(self.precision))
            else:
                self.model = model_lib.create_model(
                    config.model, num_classes, config.image_size, weights=config_lib.model_weights(config),
                    bn_mode=config_lib.resolved_bn_mode(config), head_width=config.head_width,
                    dropout=config.dropout, seed=config.seed, head_scale=head_scale(config),
                    dtype=precision_lib.keras_policy(self.precision))
            self.optimizer = build_optimizer(config, self.precision)
            # Freezing variables, not layers: with --bn_mode=train BatchNorm layers stay in
            # training mode, so the backbone's moving statistics keep updating as in the paper's
            # PyTorch runs; --bn_mode=inference (the default with pretrained weights) fixes them.
            # Fine-tuning's stage 1 is such a frozen run.
            frozen = config.freeze_backbone or config.fine_tune_epoch > 0
            self.variables = self.model.head_variables if frozen else self.model.trainable_variables
            self.optimizer.build(self.variables)
            # Fine-tuning's stage 2: its own variables and a second optimizer (augbal_tf.fine_tune).
            self.fine_tune_variables, self.fine_tune_optimizer = None, None
            if config.fine_tune_epoch:
                self.fine_tune_variables = fine_tune.stage_two_variables(self.model, config.fine_tune_layers)
                self.fine_tune_optimizer = build_optimizer(config, self.precision, fine_tune.learning_rate(config))
                self.fine_tune_optimizer.build(self.fine_tune_variables)
            # cRT (Kang et al. 2020): the head re-trained from its initial values by a fresh optimizer
            # while the backbone stays frozen in inference mode.
            self.crt_optimizer = None
            if config.crt_epochs:
                self.crt_optimizer = build_optimizer(config, self.precision)
                self.crt_optimizer.build(self.model.head_variables)
                self._initial_head = [keras.ops.convert_to_numpy(variable) for variable in self.model.head_variables]
            # A variable, not a constant (which the traced step would freeze): DRW assigns it
            # each epoch. Not in the checkpoint: it derives from the epoch, so resume is exact.
            self.class_weights = tf.Variable(epoch_class_weights(config, 0, self.counts, class_weights, num_classes),
                                             trainable=False, dtype=tf.float32, name="class_weights")
        self.checkpoint = training_checkpoint(self.model, self.optimizer, self.fine_tune_optimizer,
                                              self.crt_optimizer)
        # Stage -> (variables, optimizer) that its training step updates; CRT_STAGE freezes the backbone.
        self._stages = {1: (self.variables, self.optimizer), 2: (self.fine_tune_variables, self.fine_tune_optimizer),
                        CRT_STAGE: (None if self.crt_optimizer is None else self.model.head_variables,
                                    self.crt_optimizer)}
        self._train_steps = {}  # Stage -> step, each traced once, at its first epoch.
        self._moving_statistics = [variable for layer in self.model._flatten_layers()  # pylint: disable=protected-access
                                   if isinstance(layer, keras.layers.BatchNormalization)
                                   for variable in (layer.moving_mean, layer.moving_variance)]

        @tf.function
        def average_moving_statistics():
            def replica_fn():
                context = tf.distribute.get_replica_context()
                # One batched all-reduce of all 40 tensors, not one round trip per tensor.
                means = context.all_reduce(tf.distribute.ReduceOp.MEAN,
                                           [tf.identity(variable.value) for variable in self._moving_statistics])
                for variable, mean in zip(self._moving_statistics, means):
                    variable.assign(mean)
            strategy.run(replica_fn)

        self._average_moving_statistics = average_moving_statistics
        # A batch dimension of None: the last, smaller batch must not trace the model again.
        if features:
            self._predict = tf.function(lambda inputs: self.model.head(inputs, training=False), input_signature=[
                tf.TensorSpec([None, backbones.get_spec(config.model).features], tf.float32)])
        else:
            self._predict = tf.function(lambda images: self.model(images, training=False), input_signature=[
                tf.TensorSpec([None, config.image_size, config.image_size, 3], tf.float32)])

    def reset_head(self) -> None:
        """The head's variables back to their initial values (cRT's re-initialisation; same seed, same values)."""
        for variable, value in zip(self.model.head_variables, self._initial_head):
            variable.assign(value)

    def _logits(self, inputs, training: bool, frozen: bool = False):
        if self.features:
            return self.model.head(inputs, training=training)
        if self.fixed_backbone or frozen:
            return self.model.head(self.model.features(inputs, training=False), training=training)
        return self.model(inputs, training=training)

    def _make_train_step(self, stage: int, element_spec) -> Callable:
        """The traced distributed training step of `stage` (its variables and optimizer)."""
        variables, optimizer = self._stages[stage]

        def replica_step(images, labels, mix_seed):
            return self._replica_step(images, labels, mix_seed, variables, optimizer, frozen=stage == CRT_STAGE)

        if self.config.jit_compile:
            replica_step = tf.function(replica_step, jit_compile=True)

        def train_step(images, labels, mix_seed):
            outputs = self.strategy.run(replica_step, (images, labels, mix_seed))
            return [self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for value in outputs]

        # The element spec has a batch dimension of None, so the epoch's last, smaller
        # batch reuses the same graph instead of tracing the whole backward pass again.
        return tf.function(train_step, input_signature=[*element_spec, tf.TensorSpec([2], tf.int64)])

    def optimizer_for(self, epoch: int, crt: bool = False) -> keras.optimizers.Optimizer:
        """The optimizer that trains 0-based `epoch` (fine-tuning's stage 2 and cRT have their own)."""
        return self._stages[CRT_STAGE if crt else fine_tune.stage(self.config, epoch)][1]

    def _replica_step(self, images, labels, mix_seed, variables, optimizer, frozen: bool = False):
        targets = labels
        if self.config.mix != "none":
            # Pairs within this replica's sub-batch; each replica its own stream of (seed, epoch, step).
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group
            seed = tf.random.experimental.stateless_fold_in(mix_seed, tf.cast(replica, tf.int64))
            images, targets = remedies.mix_batch(
                images, tf.one_hot(labels, self.num_classes), seed, self.config.mix_alpha, self.config.mix,
                self.counts, self.config.remix_kappa, self.config.remix_tau)
            images = tf.cast(images, self.model.compute_dtype)
        with tf.GradientTape() as tape:
            logits = self._logits(images, training=True, frozen=frozen)
            weighted = self.loss(targets, logits, class_weights=self.class_weights)
            local_count = tf.cast(tf.shape(labels)[0], tf.float32)
            # Gradients are summed over replicas, so normalise by the global batch.
            global_count = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, local_count)
            loss = tf.reduce_sum(weighted) / tf.maximum(global_count, 1.0)
            scaled_loss = optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, variables)
        optimizer.apply_gradients(zip(gradients, variables))
        confusion = tf.math.confusion_matrix(labels, tf.argmax(logits, -1), self.num_classes, dtype=tf.float32)
        return tf.reduce_sum(weighted), local_count, confusion

    def train_epoch(self, dataset: tf.data.Dataset, epoch: int, stage: int | None = None) -> dict:
        """Trains one epoch; returns examples seen (over all workers), loss, accuracy, balanced accuracy.

        `stage` defaults to fine-tuning's stage of the epoch; the loop passes CRT_STAGE in cRT.
        """
        self.model.set_dropout_seed(input_pipeline.epoch_seed(self.config.seed, epoch, input_pipeline.DROPOUT_STREAM))
        loss_sum, count = 0.0, 0.0
        confusion = np.zeros((self.num_classes, self.num_classes))
        distributed = self.strategy.experimental_distribute_dataset(dataset)
        stage = fine_tune.stage(self.config, epoch) if stage is None else stage
        if stage not in self._train_steps:
            self._train_steps[stage] = self._make_train_step(stage, distributed.element_spec)
        train_step = self._train_steps[stage]
        self.class_weights.assign(epoch_class_weights(self.config, epoch, self.counts, self.base_weights,
                                                      self.num_classes))
        mix_seed = input_pipeline.epoch_seed(self.config.seed, epoch, MIX_STREAM)
        for step, (images, labels) in enumerate(distributed):
            step_loss, step_count, step_confusion = train_step(
                images, labels, tf.constant([mix_seed, step], tf.int64))
            loss_sum += float(step_loss)
            count += float(step_count)
            confusion += step_confusion.numpy()
        if self.strategy.num_replicas_in_sync > 1 and self._moving_statistics:
            # Each replica updates BatchNorm moving statistics from its own sub-batches;
            # averaging them makes every replica (and worker) evaluate the same model.
            self._average_moving_statistics()
        recall = np.diag(confusion) / np.maximum(confusion.sum(axis=1), 1)
        present = confusion.sum(axis=1) > 0
        return {"examples": int(count), "loss": loss_sum / max(count, 1.0),
                "accuracy": float(np.trace(confusion) / max(count, 1.0)),
                "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0}

    def agree(self, value: float, reduce=np.mean) -> float:
        """The same number on every worker: `reduce` over every replica's `value` (identity on one worker)."""
        if not isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return value
        per_replica = self.strategy.run(lambda: tf.constant([value], tf.float64))
        return float(reduce(self.strategy.gather(per_replica, axis=0).numpy()))

    def predict_logits(self, dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
        """(labels, logits) over an ordered evaluation dataset, on the primary replica's variables."""
        labels, logits = [], []
        for images, batch_labels in dataset:
            logits.append(self._predict(images).numpy())
            labels.append(batch_labels.numpy())
        return np.concatenate(labels), np.concatenate(logits)

    def evaluate(self, dataset: tf.data.Dataset, class_names: tuple[str, ...]) -> dict:
        """Loss, accuracy and balanced accuracy of the current weights on one split."""
        labels, logits = self.predict_logits(dataset)
        loss = float(np.mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)))
        if self.offsets is not None:
            logits = logits + self.offsets  # Post-hoc adjustment: model selection sees the adjusted decision.
        result = metrics_lib.classification_metrics(labels, logits.argmax(-1), class_names)
        return {"loss": loss, "accuracy": result["accuracy"], "balanced_accuracy": result["balanced_accuracy"]}


def epoch_sampler(config: config_lib.TrainConfig, epoch: int, crt: bool = False) -> str:
    """The sampler of 0-based `epoch`: class_balanced in cRT, none before --drs_epoch, else --sampler."""
    if crt:
        return "class_balanced"
    if config.drs_epoch and epoch < config.drs_epoch:
        return "none"
    return config.sampler


def _run_epoch(trainer: "Trainer", train: input_pipeline.SplitPipeline, evaluation: dict,
               class_names: tuple[str, ...], state: LoopState, backup_dir: str, best_weights_path: str | None,
               writers: tensorboard_logging.Writers | None, after_epoch: EpochHook | None, crt: bool) -> None:
    """Trains, evaluates, records and snapshots epoch `state.epochs_done` (of the main or the cRT stage)."""
    config = trainer.config
    split, metric = selection_split(config.selection)
    epoch = state.epochs_done
    start = time.perf_counter()
    dataset = train.epoch(config.seed, epoch, epoch_sampler(config, epoch, crt))
    if writers and epoch == 0 and config.log_images and not train.features:
        images, labels = next(iter(dataset.unbatch().batch(config.log_images)))
        writers.image("train", "sample_images", tensorboard_logging.image_grid_png(
            images.numpy(), labels.numpy(), class_names), step=0)
    stage_number = CRT_STAGE if crt else fine_tune.stage(config, epoch)
    results = {"train": trainer.train_epoch(dataset, epoch, stage_number)}
    for name, pipeline in evaluation.items():
        results[name] = trainer.evaluate(pipeline.ordered(), class_names)
    seconds = time.perf_counter() - start
    # Workers evaluate the same weights on the same data; agreeing on the value still
    # guarantees they take the same early-stopping decision.
    value = trainer.agree(results[split][metric])
    improved = record_epoch(state, value)
    if config.fine_tune_epoch and state.epochs_done == config.fine_tune_epoch:
        start_stage_two(state)  # Part of the snapshot below, so a resumed run agrees.
    if improved and best_weights_path:
        with fileio.atomic_path(best_weights_path) as temporary:
            trainer.model.save_weights(str(temporary))
    state.train_seconds += seconds
    optimizer = trainer.optimizer_for(epoch, crt)
    learning_rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    # Fine-tuning runs record each epoch's stage and learning rate, cRT runs mark the cRT
    # epochs (one-stage histories are unchanged).
    stage = ({"stage": fine_tune.stage(config, epoch), "learning_rate": learning_rate}
             if config.fine_tune_epoch else {})
    if config.crt_epochs:
        stage = {**stage, "crt": crt}
    if config.drs_epoch:
        stage = {**stage, "sampler": epoch_sampler(config, epoch, crt)}
    state.history.append({"epoch": epoch + 1, "seconds": seconds, **stage, **results})
    if writers:
        for name, values in results.items():
            writers.scalars(name, values, step=epoch + 1)
        writers.scalars("train", {"learning_rate": learning_rate}, step=epoch + 1)
    logging.info("epoch %d/%d%s  %s  %s=%.4f%s  (%.1fs)", epoch + 1, config.epochs + config.crt_epochs,
                 " (cRT)" if crt else "",
                 "  ".join(f"{name}: loss {r['loss']:.4f} acc {r['accuracy']:.4f} bacc "
                           f"{r['balanced_accuracy']:.4f}" for name, r in results.items()),
                 f"{split}_{metric}", value, " *best*" if improved else "", seconds)
    save_snapshot(backup_dir, trainer, state)
    if after_epoch:
        after_epoch(state)


def selection_split(selection: str) -> tuple[str, str]:
    """(split, metric) that model selection and early stopping maximise."""
    return ("validation", "balanced_accuracy") if selection == "validation" else ("test", "accuracy")


def run(trainer: Trainer, train: input_pipeline.SplitPipeline, evaluation: dict,
        class_names: tuple[str, ...], state: LoopState, backup_dir: str, best_weights_path: str,
        writers: tensorboard_logging.Writers | None, after_epoch: EpochHook | None = None) -> LoopState:
    """Trains from `state` until --epochs or early stopping, then --crt_epochs of cRT; snapshots every epoch.

    Args:
      trainer: the model, optimizer and steps.
      train: the training split's pipeline.
      evaluation: split name -> ordered pipeline evaluated after every epoch.
      class_names: class names in label order.
      state: loop state to continue from (fresh or restored).
      backup_dir: this task's snapshot folder.
      best_weights_path: where the best weights go (None on non-chief workers).
      writers: TensorBoard writers (None on non-chief workers).
      after_epoch: called with the state after each epoch's snapshot.

    Returns:
      The final loop state.
    """
    config = trainer.config
    while state.crt_start is None and not should_stop(state, config.epochs, config.patience, config.fine_tune_epoch):
        _run_epoch(trainer, train, evaluation, class_names, state, backup_dir, best_weights_path, writers,
                   after_epoch, crt=False)
    if config.crt_epochs:
        if state.crt_start is None:
            start_crt(trainer, state, backup_dir, best_weights_path)
        # The cRT stage runs all its epochs (Kang et al. train the classifier a fixed schedule).
        while state.epochs_done < state.crt_start + config.crt_epochs:
            _run_epoch(trainer, train, evaluation, class_names, state, backup_dir, best_weights_path, writers,
                       after_epoch, crt=True)
    return state
