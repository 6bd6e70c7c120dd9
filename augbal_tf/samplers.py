"""Online re-sampling: per-epoch index streams over the training split, and a tf.data view of them.

Class-balanced and square-root sampling (Kang et al. 2020; Mahajan et al. 2018)
draw each epoch's len(labels) indices with replacement, example i with
probability proportional to q_{y_i} / n_{y_i}: q_c = 1 gives every class the
same expected count, q_c = sqrt(n_c) counts proportional to sqrt(n_c). The
draws depend on (seed, epoch) only, so a resumed run sees the same order, and
the dataset indexes the split instead of holding duplicated copies.

Deferred re-sampling (DRS, Cao et al. 2019, `--drs_epoch`) is plain shuffling
before epoch K and `--sampler`'s draws from K on (`trainer.epoch_sampler`).
"""

import numpy as np
import tensorflow as tf

from augbal_tf.config import SAMPLERS  # noqa: F401  (declared with the settings, without TensorFlow)

# A random stream of its own, apart from input_pipeline's shuffle (0) and dropout (1) streams.
SAMPLER_STREAM = 2


def _labels(labels) -> np.ndarray:
    array = np.asarray(labels)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer) or array.min() < 0:
        raise ValueError(f"labels must be int class indices >= 0, got dtype {array.dtype}, "
                         f"min {array.min()}")
    return array.astype(np.int64)


def class_sampling_weights(counts, mode: str) -> np.ndarray:
    """Per-class weight q_c / n_c of one example of class c (float64 [C]), for `mode` in SAMPLERS."""
    if mode not in SAMPLERS:
        raise ValueError(f"sampler {mode!r} is not valid; allowed: {', '.join(SAMPLERS)}")
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    weights = np.zeros_like(counts)
    if mode == "none":
        weights[present] = 1.0
    elif mode == "class_balanced":
        weights[present] = 1.0 / counts[present]
    else:
        weights[present] = 1.0 / np.sqrt(counts[present])
    return weights


def sampler_weights(labels, mode: str) -> np.ndarray:
    """Per-example sampling probabilities (float64 [N], summing to 1).

    Args:
      labels: int [N] training labels.
      mode: `none` (uniform), `class_balanced` (each class 1/C of the draws in
        expectation, over the classes present) or `square_root` (class c's share
        proportional to sqrt(n_c)).

    Raises:
      ValueError: on bad labels or an unknown mode.
    """
    labels = _labels(labels)
    weights = class_sampling_weights(np.bincount(labels), mode)[labels]
    return weights / weights.sum()


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """The sampler's generator for (seed, epoch): independent of every other epoch and stream."""
    return np.random.default_rng(np.random.SeedSequence([seed, epoch, SAMPLER_STREAM]))


def epoch_indices(labels, mode: str, seed: int, epoch: int) -> np.ndarray:
    """The training indices of one epoch: int64 [len(labels)], a function of (seed, epoch) only.

    `none` is a permutation (each example once); the other modes
    draw with replacement from `sampler_weights`.

    Raises:
      ValueError: as `sampler_weights`, or on a negative epoch.
    """
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    labels = _labels(labels)
    rng = epoch_rng(seed, epoch)
    if mode == "none":
        return rng.permutation(labels.size).astype(np.int64)
    probabilities = sampler_weights(labels, mode)
    return rng.choice(labels.size, size=labels.size, replace=True, p=probabilities).astype(np.int64)


def elements(dataset: tf.data.Dataset) -> tuple[tf.Tensor, ...]:
    """Every element of a finite dataset, stacked into tensors (one pass; e.g. encoded JPEG bytes + labels)."""
    batches = list(dataset.batch(4096).as_numpy_iterator())
    if not batches:
        raise ValueError("the dataset is empty")
    return tuple(tf.constant(np.concatenate(parts)) for parts in zip(*batches))


def indexed_dataset(tensors: tuple, indices, chunk: int = 256) -> tf.data.Dataset:
    """Elements `tensors[k][i]` for i in `indices`, in that order, gathered lazily.

    No copy is made per draw: elements are `tf.gather`s into `tensors`, held once
    (keep them small: the encoded images, decoded after this). Gathering `chunk`
    indices at a time, then unbatching, was 11x faster than one gather per element
    (0.038 s against 0.42 s for 14,886 28x28x3 uint8 images, 2 CPUs).

    Args:
      tensors: tensors (or arrays) sharing their first dimension, e.g. `elements(encoded)`.
      indices: int [M] indices into that dimension, e.g. `epoch_indices(...)`.
      chunk: indices gathered per step.
    """
    tensors = tuple(tf.convert_to_tensor(tensor) for tensor in tensors)
    size = int(tensors[0].shape[0])
    indices = np.asarray(indices, dtype=np.int64)
    if indices.ndim != 1 or (indices.size and (indices.min() < 0 or indices.max() >= size)):
        raise ValueError(f"indices must be 1-D in [0, {size}), got shape {indices.shape}")

    def gather(chunk_indices):
        return tuple(tf.gather(tensor, chunk_indices) for tensor in tensors)

    return tf.data.Dataset.from_tensor_slices(indices).batch(chunk).map(
        gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).unbatch()


def resampled_epoch(tensors: tuple, labels, mode: str, seed: int, epoch: int) -> tf.data.Dataset:
    """`indexed_dataset` over `epoch_indices(labels, mode, seed, epoch)`."""
    return indexed_dataset(tensors, epoch_indices(labels, mode, seed, epoch))
