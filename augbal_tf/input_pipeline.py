"""tf.data input pipeline over a prepared variant of the `augbal` tfds builder.

Per example: parallel image decoding (uint8 RGB), optional in-memory cache of
the decoded images, a shuffle whose order is a function of (seed, epoch) only
(so a resumed run sees the same order), then `preprocessing.preprocess_images`
(resize to the model input + ImageNet normalisation), batch and prefetch.
"""

import dataclasses
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from augbal_datasets.augbal import prepare  # light: registers the builder only when preparing
from augbal_tf import config as config_lib
from augbal_tf import preprocessing

SPLITS = ("train", "validation", "test")
# Independent random streams derived from (seed, epoch).
SHUFFLE_STREAM, DROPOUT_STREAM = 0, 1


def epoch_seed(seed: int, epoch: int, stream: int) -> int:
    """A 31-bit seed that depends only on (seed, epoch, stream)."""
    return int(np.random.SeedSequence([seed, epoch, stream]).generate_state(1)[0] >> 1)


@dataclasses.dataclass(frozen=True)
class Variant:
    """A prepared dataset variant: the builder, its class names and the splits it has."""

    builder: Any
    class_names: tuple[str, ...]
    split_sizes: dict[str, int]

    def encoded(self, split: str) -> tf.data.Dataset:
        """(encoded image bytes, label) pairs of `split`, in the builder's fixed order."""
        dataset = self.builder.as_dataset(split=split, shuffle_files=False,
                                          decoders={"image": tfds.decode.SkipDecoding()})
        return dataset.map(lambda example: (example["image"], example["label"]))

    def labels(self, split: str) -> np.ndarray:
        """All labels of `split` (reads no pixels)."""
        labels = self.encoded(split).map(lambda image, label: label).batch(4096)
        return np.concatenate([batch.numpy() for batch in labels] or [np.zeros(0, np.int64)])


def load_variant(config: config_lib.TrainConfig) -> Variant:
    """Prepares (or reuses) the builder variant of `config` and describes it."""
    builder = prepare.prepare_variant(config.data, config.data_dir, config.manual_dir)
    split_sizes = {name: builder.info.splits[name].num_examples
                   for name in SPLITS if name in builder.info.splits}
    if not split_sizes.get("train"):
        raise ValueError(f"dataset variant {builder.builder_config.name!r} has an empty train split")
    return Variant(builder, tuple(builder.info.features["label"].names), split_sizes)


def _decode(image_bytes, label):
    # The builder's decoder: accurate JPEG DCT, the pixels the builder augmented.
    return prepare.decode_image(image_bytes), label


def _with_options(dataset: tf.data.Dataset, deterministic: bool) -> tf.data.Dataset:
    options = tf.data.Options()
    options.deterministic = deterministic
    # Small tfds splits are one file: FILE sharding could not split them across workers.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


class SplitPipeline:
    """Batches of (normalised float32 images, int64 labels) from one split."""

    def __init__(self, encoded: tf.data.Dataset, num_examples: int, image_size: int, batch_size: int,
                 cache: bool, deterministic: bool = True, replicas: int = 1, normalization: str = "imagenet"):
        self.num_examples, self.image_size, self.batch_size = num_examples, image_size, batch_size
        self.normalization = normalization  # The backbone's own (`model.preprocessing_for`).
        self.deterministic, self.replicas = deterministic, replicas
        decoded = encoded.map(_decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        # Caching the decoded uint8 images (not the float model inputs) keeps memory 12x smaller.
        self._decoded = decoded.cache() if cache else decoded

    def _finish(self, dataset: tf.data.Dataset) -> tf.data.Dataset:
        dataset = dataset.map(lambda image, label: (preprocessing.preprocess_images(image, self.image_size,
                                                                                    self.normalization),
                                                    label),
                              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        dataset = dataset.batch(self.batch_size).prefetch(tf.data.AUTOTUNE)
        return _with_options(dataset, self.deterministic)

    def epoch(self, seed: int, epoch: int) -> tf.data.Dataset:
        """The shuffled training batches of `epoch`; the order depends on (seed, epoch) only."""
        shuffled = self._decoded.shuffle(max(self.num_examples, 1), seed=epoch_seed(seed, epoch, SHUFFLE_STREAM),
                                         reshuffle_each_iteration=False)
        remainder = self.num_examples % self.batch_size
        if 0 < remainder < self.replicas:
            # A last batch smaller than the replica count would leave a replica an empty
            # batch, and BatchNorm statistics of an empty batch are NaN.
            shuffled = shuffled.take(self.num_examples - remainder)
        return self._finish(shuffled)

    def ordered(self) -> tf.data.Dataset:
        """The split's batches in the builder's fixed order (for evaluation)."""
        return self._finish(self._decoded)


def class_weights(labels: np.ndarray, num_classes: int, mode: str) -> np.ndarray | None:
    """Per-class loss weights: None for `none`, n / (k * n_c) for `balanced` (scikit-learn's rule).

    Raises:
      ValueError: on an unknown mode or a class absent from the training labels.
    """
    if mode == "none":
        return None
    if mode != "balanced":
        raise ValueError(f"--class_weight={mode!r} is not valid; allowed: none, balanced")
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    if np.any(counts == 0):
        raise ValueError(f"--class_weight=balanced needs every class in the train split; counts: "
                         f"{counts.astype(int).tolist()}")
    return (len(labels) / (num_classes * counts)).astype(np.float32)
