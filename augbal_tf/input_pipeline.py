"""tf.data input pipeline over a prepared variant of the `augbal` tfds builder.

Per example: parallel image decoding (uint8 RGB), optional in-memory cache of
the decoded images, a shuffle whose order is a function of (seed, epoch) only
(so a resumed run sees the same order), then `preprocessing.preprocess_images`
(resize to the model input + ImageNet normalisation), batch and prefetch.

Online (#14, #13): with `sampler` the epoch draws `samplers.epoch_indices` into
the encoded split (held once; no copies per draw) instead of shuffling; with
`online` each decoded uint8 training image is augmented every epoch by an
augstatic transform (tf.numpy_function), before resizing. The example's key is
its index in the builder's fixed order; its Generator is seeded by (seed, epoch,
ONLINE_STREAM, key, draw) with draw 0 without re-sampling and the draw position
with it (so duplicates of one image get different augmentations), so a rerun,
a resumed run and a mirrored run see the same pixels.
"""

import dataclasses
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from augbal_datasets.augbal import prepare  # light: registers the builder only when preparing
from augbal_tf import config as config_lib
from augbal_tf import preprocessing
from augbal_tf import samplers

SPLITS = ("train", "validation", "test")
# Independent random streams derived from (seed, epoch).
SHUFFLE_STREAM, DROPOUT_STREAM = 0, 1
# samplers.SAMPLER_STREAM is 2; the trainer's mix stream is 3.
ONLINE_STREAM = 4


def epoch_seed(seed: int, epoch: int, stream: int) -> int:
    """A 31-bit seed that depends only on (seed, epoch, stream)."""
    return int(np.random.SeedSequence([seed, epoch, stream]).generate_state(1)[0] >> 1)


@dataclasses.dataclass(frozen=True)
class Variant:
    """A prepared dataset variant: the builder, its class names and the splits it has."""

    builder: Any
    class_names: tuple[str, ...]
    split_sizes: dict[str, int]
    # Split -> (labels, source ids), read once (a run needs the train labels for checks, weights and
    # counts, and their source ids for the shot groups).
    _columns: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def encoded(self, split: str) -> tf.data.Dataset:
        """(encoded image bytes, label) pairs of `split`, in the builder's fixed order."""
        dataset = self.builder.as_dataset(split=split, shuffle_files=False,
                                          decoders={"image": tfds.decode.SkipDecoding()})
        return dataset.map(lambda example: (example["image"], example["label"]))

    def labels(self, split: str) -> np.ndarray:
        """All labels of `split` (reads no pixels; read-only, read once per variant)."""
        return self._read(split)[0]

    def source_ids(self, split: str) -> tuple[bytes, ...]:
        """The source id of every example of `split` (read with the labels)."""
        return self._read(split)[1]

    def _read(self, split: str) -> tuple[np.ndarray, tuple[bytes, ...]]:
        if split not in self._columns:
            columns = self.builder.as_dataset(split=split, shuffle_files=False,
                                              decoders={"image": tfds.decode.SkipDecoding()}).map(
                lambda example: (example["label"], example["source_id"])).batch(4096)
            labels, source_ids = [np.zeros(0, np.int64)], []
            for batch_labels, batch_ids in columns.as_numpy_iterator():
                labels.append(batch_labels)
                source_ids.extend(batch_ids)
            labels = np.concatenate(labels).astype(np.int64)
            labels.flags.writeable = False
            self._columns[split] = labels, tuple(source_ids)
        return self._columns[split]


def real_counts(variant: Variant) -> np.ndarray:
    """Real training images per class: distinct source images, not the copies or generated ones.

    The many/medium/few-shot groups are about how many images a class really has; after
    oversampling every class has the majority's count (#13).
    """
    seen = set(zip(variant.labels("train").tolist(), variant.source_ids("train")))
    counts = np.zeros(len(variant.class_names), np.int64)
    for label, _ in seen:
        counts[label] += 1
    return counts


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


@dataclasses.dataclass(frozen=True)
class OnlineAugmentation:
    """An augstatic transform applied to training images every epoch.

    Attributes:
      transform: an augstatic transform (`config.online_transform`).
      classes: the class indices it applies to (None: all classes).
      seed: the run's --seed.
    """

    transform: Any
    classes: tuple[int, ...] | None
    seed: int

    def generator(self, epoch: int, key: int, draw: int) -> np.random.Generator:
        """The Generator of example `key` at draw position `draw` (0 without re-sampling) of `epoch`."""
        return np.random.default_rng(np.random.SeedSequence([self.seed, epoch, ONLINE_STREAM, key, draw]))

    def apply(self, image: np.ndarray, label: int, epoch: int, key: int, draw: int) -> np.ndarray:
        """`image` augmented (a new array), or `image` itself when its class is not augmented."""
        if self.classes is not None and int(label) not in self.classes:
            return image
        out = self.transform(image, rng=self.generator(epoch, int(key), int(draw)))
        return np.ascontiguousarray(out, dtype=np.uint8)


def resolve_online_classes(config: config_lib.TrainConfig, class_names, counts) -> tuple[int, ...] | None:
    """The class indices --online_classes names (None: all).

    `minority` is the variant's --minority classes; without them, every class whose
    count equals the smallest (train.py passes the real counts, `real_counts`).
    """
    if config.online_classes == "all":
        return None
    if config.data.minority:
        return tuple(sorted(class_names.index(name) for name in config.data.minority))
    counts = np.asarray(counts)
    return tuple(int(index) for index in np.flatnonzero(counts == counts.min()))


def online_augmentation(config: config_lib.TrainConfig, class_names, counts) -> OnlineAugmentation | None:
    """The OnlineAugmentation of `config` (None when --online_augmentation is empty)."""
    transform = config_lib.online_transform(config)
    if transform is None:
        return None
    return OnlineAugmentation(transform, resolve_online_classes(config, class_names, counts), config.seed)


def online_record(config: config_lib.TrainConfig, online: OnlineAugmentation | None, class_names) -> dict:
    """What metrics.json records of the online augmentation and the sampler."""
    classes = None if online is None else (list(class_names) if online.classes is None else
                                           [class_names[index] for index in online.classes])
    return {"online_augmentation": config.online_augmentation or None,
            "online_augmentation_params": config_lib.online_params(config),
            "online_transform": None if online is None else repr(online.transform),
            "online_classes": config.online_classes, "online_classes_resolved": classes,
            "sampler": config.sampler}


class SplitPipeline:
    """Batches of (normalised float32 images, int64 labels) from one split.

    With `features`, `encoded` holds (pooled features, label) pairs instead of encoded
    images (`augbal_tf.feature_cache`): the same keys, order, shuffle, re-sampling and
    batching, without decoding or preprocessing.
    """

    def __init__(self, encoded: tf.data.Dataset, num_examples: int, image_size: int, batch_size: int,
                 cache: bool, deterministic: bool = True, replicas: int = 1, normalization: str = "imagenet",
                 online: OnlineAugmentation | None = None, sampler: str = "none",
                 online_parallel_calls: int | None = None, features: bool = False, resample: bool = False):
        if features and online is not None:
            raise ValueError("online augmentation needs images, not cached features")
        self.num_examples, self.image_size, self.batch_size = num_examples, image_size, batch_size
        # The cached-feature path (#12): elements are (pooled features, label), already model inputs.
        self.features = features
        self._decode = (lambda value, label: (value, label)) if features else _decode
        self.normalization = normalization  # The backbone's own (`model.preprocessing_for`).
        self.deterministic, self.replicas = deterministic, replicas
        if sampler not in samplers.SAMPLERS:
            raise ValueError(f"--sampler={sampler!r} is not valid; allowed: {', '.join(samplers.SAMPLERS)}")
        self.online, self.sampler = online, sampler
        self.online_parallel_calls = online_parallel_calls or tf.data.AUTOTUNE
        # The key of an example is its index in the builder's fixed order.
        keyed = encoded.enumerate()
        decoded = keyed.map(lambda key, pair: (key, *self._decode(*pair)), num_parallel_calls=tf.data.AUTOTUNE,
                            deterministic=True)
        # Caching the decoded uint8 images (not the float model inputs) keeps memory 12x smaller.
        self._decoded = decoded.cache() if cache and not features else decoded
        # (image, label): what evaluation and epochs without online augmentation need, built (and its
        # map traced) once rather than every epoch; a shuffle's order does not depend on the elements.
        self._unkeyed = self._decoded.map(lambda key, image, label: (image, label))
        self._ordered = None  # Built on first use, iterated every epoch.
        self._encoded = None
        # `resample`: some epochs re-sample though `sampler` is none (deferred re-sampling, cRT's
        # stage), so `epoch(..., sampler=...)` may ask for a sampler per epoch.
        if sampler != "none" or resample:
            # (keys, encoded bytes, labels) held once; each epoch gathers its draws from them.
            self._encoded = samplers.elements(keyed.map(lambda key, pair: (key, *pair)))
            self.labels = self._encoded[2].numpy()

    def _augment(self, dataset: tf.data.Dataset, epoch: int, positions: bool) -> tf.data.Dataset:
        """(key, uint8 image, label) -> (image, label), augmented by `self.online` when set."""
        if self.online is None:
            return dataset.map(lambda key, image, label: (image, label))
        online = self.online

        def augment(draw, element):
            key, image, label = element
            out = tf.numpy_function(lambda i, l, k, d: online.apply(i, l, epoch, k, d),
                                    [image, label, key, draw if positions else tf.constant(0, tf.int64)],
                                    tf.uint8, stateful=False)
            out.set_shape([None, None, 3])
            return out, label

        return dataset.enumerate().map(augment, num_parallel_calls=self.online_parallel_calls, deterministic=True)

    def _finish(self, dataset: tf.data.Dataset) -> tf.data.Dataset:
        if not self.features:
            dataset = dataset.map(lambda image, label: (
                preprocessing.preprocess_images(image, self.image_size, self.normalization), label),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        dataset = dataset.batch(self.batch_size).prefetch(tf.data.AUTOTUNE)
        return _with_options(dataset, self.deterministic)

    def epoch(self, seed: int, epoch: int, sampler: str | None = None) -> tf.data.Dataset:
        """The shuffled (or re-sampled) training batches of `epoch`; a function of (seed, epoch, sampler) only.

        `sampler` overrides the pipeline's for this epoch (needs `resample=True` unless it is
        none); a `none` epoch is shuffled exactly as in a pipeline without a sampler.
        """
        sampler = self.sampler if sampler is None else sampler
        if sampler not in samplers.SAMPLERS:
            raise ValueError(f"sampler {sampler!r} is not valid; allowed: {', '.join(samplers.SAMPLERS)}")
        if sampler != "none" and self._encoded is None:
            raise ValueError(f"sampler {sampler!r} for epoch {epoch} needs a pipeline made with resample=True")
        if sampler == "none":
            shuffled = (self._unkeyed if self.online is None else self._decoded).shuffle(
                max(self.num_examples, 1), seed=epoch_seed(seed, epoch, SHUFFLE_STREAM), reshuffle_each_iteration=False)
        else:
            indices = samplers.epoch_indices(self.labels, sampler, seed, epoch)
            shuffled = samplers.indexed_dataset(self._encoded, indices).map(
                lambda key, image, label: (key, *self._decode(image, label)),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        remainder = self.num_examples % self.batch_size
        if 0 < remainder < self.replicas:
            # A last batch smaller than the replica count would leave a replica an empty
            # batch, and BatchNorm statistics of an empty batch are NaN.
            shuffled = shuffled.take(self.num_examples - remainder)
        if sampler == "none" and self.online is None:
            return self._finish(shuffled)  # Unkeyed already.
        return self._finish(self._augment(shuffled, epoch, positions=sampler != "none"))

    def ordered(self) -> tf.data.Dataset:
        """The split's batches in the builder's fixed order (for evaluation; the same dataset every call)."""
        if self._ordered is None:
            self._ordered = self._finish(self._unkeyed)
        return self._ordered


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
