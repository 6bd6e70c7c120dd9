"""Classifier-side imbalance remedies: post-hoc logit adjustment, tau-normalisation, mixup and Remix.

cRT (classifier re-training, Kang et al. 2020) is a stage of the training loop
(`augbal_tf.trainer`, --crt_epochs); tau-normalisation is applied here to the selected
model's output layer (--tau_norm).

Sources: post-hoc logit adjustment (Menon et al. 2021, google-research
logit_adjustment/), tau-normalisation (Kang et al. 2020), mixup (Zhang et al.
2018) and Remix (Chou et al. 2020).
"""

import math

import keras
import numpy as np
import tensorflow as tf

from augbal_tf import losses
from augbal_tf.config import MIX_MODES  # noqa: F401  (declared with the settings, without TensorFlow)


def posthoc_offsets(counts, tau: float) -> np.ndarray:
    """float32 [C] added to the logits at prediction time: -tau * log(prior).

    Raises:
      ValueError: on bad counts or a non-finite tau.
    """
    if not math.isfinite(tau):
        raise ValueError(f"posthoc tau must be finite, got {tau!r}")
    if counts is None:
        raise ValueError(f"posthoc tau={tau!r} needs the per-class training counts; got counts=None")
    return (-tau * losses.log_prior(counts)).astype(np.float32)


def posthoc_adjust(logits, counts, tau: float):
    """Menon et al.'s post-hoc adjustment `f - tau * log(prior)`; argmax gives the balanced decision.

    Works on numpy arrays (returns numpy) and on tensors (returns a tensor), so the
    same offsets can go into an exported model's graph.
    """
    offsets = posthoc_offsets(counts, tau)
    if isinstance(logits, np.ndarray):
        return logits.astype(np.float32) + offsets
    return tf.cast(logits, tf.float32) + offsets


class LogitOffset(keras.layers.Layer):
    """Adds fixed per-class offsets to float32 logits (post-hoc adjustment inside an exported model).

    The offsets are a config value, not a weight, so the saved model records them
    (`get_config`) and no checkpoint can change them.

    Args:
      offsets: float [C], e.g. `posthoc_offsets(counts, tau)`.
    """

    def __init__(self, offsets, **kwargs):
        super().__init__(**kwargs)
        offsets = np.asarray(offsets, dtype=np.float32)
        if offsets.ndim != 1 or not np.isfinite(offsets).all():
            raise ValueError(f"offsets must be a finite 1-D list, got {offsets.tolist()}")
        self.offsets = offsets

    def call(self, logits):
        return tf.cast(logits, tf.float32) + tf.constant(self.offsets)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "offsets": self.offsets.tolist()}


def tau_normalize(kernel, tau: float) -> np.ndarray:
    """Kang et al.'s tau-normalised classifier: each class's weight vector w_c / ||w_c||^tau.

    Args:
      kernel: a Dense kernel [features, C] (Keras layout: column c is class c).
      tau: in [0, 1] in the paper (0: unchanged, 1: unit norms); any finite tau >= 0 is accepted.

    Returns:
      float32 [features, C]. The bias is not touched: Kang et al. drop it; set it to zero
      (or keep it) at the call site.

    Raises:
      ValueError: on a kernel that is not 2-D, a zero column, or a bad tau.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2:
        raise ValueError(f"kernel must be 2-D [features, classes], got shape {kernel.shape}")
    if not (math.isfinite(tau) and tau >= 0):
        raise ValueError(f"tau must be a finite number >= 0, got {tau!r}")
    norms = np.linalg.norm(kernel, axis=0)
    if np.any(norms == 0):
        raise ValueError(f"kernel column {int(np.flatnonzero(norms == 0)[0])} is all zeros: no direction "
                         "to normalise")
    return (kernel / norms ** tau).astype(np.float32)


# Kang et al. choose tau on a validation set; the grid of --tau_norm without --tau_norm_tau.
TAU_GRID = tuple(round(0.1 * step, 1) for step in range(11))


def penultimate(model: keras.Model, features) -> tf.Tensor:
    """The head's input to its output layer, relu(head_hidden(features)), of pooled features [N, F]."""
    return keras.ops.relu(model.head_hidden(features))


def tau_normalized_logits(hidden, kernel, tau: float) -> np.ndarray:
    """float32 [N, C] logits of the tau-normalised head without bias: hidden @ tau_normalize(kernel, tau)."""
    return np.asarray(hidden, np.float32) @ tau_normalize(kernel, tau)


def choose_tau(hidden, labels, kernel, offsets=None, grid=TAU_GRID) -> tuple[float, dict]:
    """The tau of `grid` whose normalised head has the best balanced accuracy on (hidden, labels).

    Ties go to the smaller tau (the first in grid order). `offsets` (post-hoc adjustment) are
    added before the decision, as the served model adds them.

    Returns:
      (tau, {str(tau): balanced accuracy} for every tau of the grid).
    """
    labels = np.asarray(labels)
    present = np.unique(labels)
    scores = {}
    for tau in grid:
        logits = tau_normalized_logits(hidden, kernel, tau)
        if offsets is not None:
            logits = logits + np.asarray(offsets, np.float32)
        predicted = logits.argmax(axis=-1)
        scores[str(tau)] = float(np.mean([np.mean(predicted[labels == c] == c) for c in present]))
    best = max(scores.values())
    return next(tau for tau in grid if scores[str(tau)] == best), scores


def apply_tau_norm(model: keras.Model, tau: float) -> None:
    """Replaces the output layer's kernel by `tau_normalize(kernel, tau)` and its bias by 0, in place.

    Kang et al.'s tau-normalised classifier has no bias. The change is in the weights, so an
    exported model serves it without any extra layer.

    Raises:
      ValueError: when the output layer is not a Dense layer (LDAM's cosine head is unit-norm already).
    """
    layer = model.head_output
    if not isinstance(layer, keras.layers.Dense):
        raise ValueError(f"tau-normalisation needs a Dense output layer, got {type(layer).__name__}")
    layer.kernel.assign(tau_normalize(keras.ops.convert_to_numpy(layer.kernel), tau))
    if layer.bias is not None:
        layer.bias.assign(np.zeros(layer.bias.shape, np.float32))


def remix_label_lambda(lam, class_a, class_b, counts, kappa: float = 3.0, tau: float = 0.5):
    """Remix's label weight of the first image for pairs mixed as lam * x_a + (1 - lam) * x_b.

    Chou et al. 2020, eq. 4: 0 (all to b, the minority) when n_a / n_b >= kappa and
    lam < tau; 1 (all to a) when n_a / n_b <= 1 / kappa and 1 - lam < tau; else lam.

    Args:
      lam: float [B] (or scalar) image mixing weights of the first image.
      class_a, class_b: int [B] classes of the two images.
      counts: per-class training counts [C].

    Returns:
      float32 [B] label weights of class_a (class_b gets 1 minus it).
    """
    counts = tf.constant(losses.check_counts(counts), tf.float32)
    lam = tf.cast(lam, tf.float32)
    ratio = tf.gather(counts, class_a) / tf.gather(counts, class_b)
    lam = tf.broadcast_to(lam, tf.shape(ratio))
    to_b = (ratio >= kappa) & (lam < tau)
    to_a = (ratio <= 1.0 / kappa) & (1.0 - lam < tau)
    return tf.where(to_b, 0.0, tf.where(to_a, 1.0, lam))


def sample_beta(seed, alpha: float) -> tf.Tensor:
    """One draw of Beta(alpha, alpha) from a stateless seed [2], as X / (X + Y) of two gammas."""
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
    x = tf.random.stateless_gamma([], seeds[0], alpha=alpha)
    y = tf.random.stateless_gamma([], seeds[1], alpha=alpha)
    return x / tf.maximum(x + y, 1e-30)


def mix_batch(images, labels_onehot, seed, alpha: float = 1.0, mode: str = "mixup", counts=None,
              kappa: float = 3.0, tau: float = 0.5):
    """Mixes a batch with a shuffled copy of itself: mixup or Remix.

    One lam ~ Beta(alpha, alpha) per batch (Zhang et al.'s and Chou et al.'s code); the
    partner of example i is example perm[i] of a seeded permutation. Deterministic given
    `seed`, so the same (seed, epoch, step) reproduces the same batch after a resume.

    Args:
      images: float [B, H, W, C] model inputs.
      labels_onehot: float [B, C] one-hot (or soft) targets.
      seed: int [2] stateless seed (e.g. [epoch_seed, step]).
      alpha: Beta parameter, > 0.
      mode: `none` (returned as is), `mixup` or `remix`.
      counts: per-class training counts [C]; required by remix.
      kappa: Remix's count-ratio threshold (3 in the paper).
      tau: Remix's lam threshold (0.5 in the paper).

    Returns:
      (mixed images float32 [B, H, W, C], mixed targets float32 [B, C]); the targets
      go to a `losses.Loss` as soft labels.

    Raises:
      ValueError: on an unknown mode, alpha <= 0, or remix without counts.
    """
    if mode not in MIX_MODES:
        raise ValueError(f"mix mode {mode!r} is not valid; allowed: {', '.join(MIX_MODES)}")
    images = tf.cast(images, tf.float32)
    targets = tf.cast(labels_onehot, tf.float32)
    if mode == "none":
        return images, targets
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"mix alpha must be > 0, got {alpha!r}")
    if mode == "remix" and counts is None:
        raise ValueError("mix mode 'remix' needs the per-class training counts; got counts=None")
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
    lam = sample_beta(seeds[0], alpha)
    batch = tf.shape(images)[0]
    permutation = tf.argsort(tf.random.stateless_uniform([batch], seeds[1]))
    mixed_images = lam * images + (1.0 - lam) * tf.gather(images, permutation)
    partner_targets = tf.gather(targets, permutation)
    if mode == "mixup":
        label_lam = tf.fill([batch], lam)
    else:
        classes = tf.argmax(targets, axis=-1, output_type=tf.int32)
        label_lam = remix_label_lambda(lam, classes, tf.gather(classes, permutation), counts, kappa, tau)
    label_lam = label_lam[:, None]
    return mixed_images, label_lam * targets + (1.0 - label_lam) * partner_targets
