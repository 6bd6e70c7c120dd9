"""Imbalance-aware classification losses on logits, as per-example float32 vectors.

Every loss here is one formula: the logits `f` (cast to float32 first, so a
bfloat16/float16 model still does float32 math) become
`z = scale * (f - margin_y * onehot_y) + offset`, and the loss of label `y` is
`w_y * (1 - p_y)^gamma * (-log p_y)` with `p = softmax(z)`:

| name               | offset          | margin                 | scale | gamma | weights   |
|--------------------|-----------------|------------------------|-------|-------|-----------|
| `cross_entropy`    | 0               | 0                      | 1     | 0     | none      |
| `focal`            | 0               | 0                      | 1     | gamma | none      |
| `class_balanced`   | 0               | 0                      | 1     | 0 or gamma | CB(beta) |
| `logit_adjusted`   | tau log(prior)  | 0                      | 1     | 0     | none      |
| `balanced_softmax` | log(n)          | 0                      | 1     | 0     | none      |
| `ldam`             | 0               | C / n_y^(1/4), max = m | s     | 0     | none (DRW) |

Sources: focal (Lin et al. 2017; the softmax form of kaidic/LDAM-DRW's
`FocalLoss`), class-balanced (Cui et al. 2019), logit adjustment (Menon et al.
2021), balanced softmax (Ren et al. 2020), LDAM (Cao et al. 2019,
kaidic/LDAM-DRW `losses.py`). Keras has none of the sparse forms (keras#23442,
keras#16735).

Losses return one value per example, unaveraged: under `tf.distribute` the
trainer sums them and divides by the global batch size (Keras' `class_weight`
convention, and Cui et al.'s TensorFlow code, which divides by the batch size).
PyTorch's weighted `cross_entropy`, which kaidic/LDAM-DRW's CE and LDAM losses
use in the DRW phase, divides by the batch's summed weights instead; its
FocalLoss takes the plain batch mean. With CB weights summing to C (beta 0.9999)
the mean weight of an example of CIFAR-10-LT IF 100 is 0.171, so a per-batch-size
DRW phase would train with a ~5.8x smaller loss and gradient than the reference
(`test_losses.py` computes both). Decision: `drw_weights` rescales the CB
weights so that the mean weight of a training example is 1 (`w_c * N / sum_k n_k
w_k`). The loss then keeps its scale at the switch, as the reference's weighted
mean does, and equals it exactly on a batch with the split's class mix; we keep
dividing by the global batch rather than by all-reduce(sum of w_y) because that
makes an example's gradient independent of which other examples share its batch
(and of the replica split), and SGD's effective learning rate does not jump with
each batch's composition. `class_balanced` keeps Cui et al.'s weights (sum C). The focal form puts the weight outside
(1 - p)^gamma as Cui et al. do; LDAM-DRW's FocalLoss computes p from the weighted
cross-entropy. Labels are int class
indices [B] or soft targets [B, C] (mixup/Remix): a soft target `t` gives
`sum_c t_c * loss(label c)`, the usual mixed loss `lam * L(y_a) + (1 - lam) * L(y_b)`.
"""

import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf

from augbal_tf.config import LOSSES  # noqa: F401  (declared with the settings, without TensorFlow)

# Parameters each loss accepts, with their defaults (the papers' values).
LOSS_PARAMS = {
    "cross_entropy": {},
    "focal": {"gamma": 2.0},
    "class_balanced": {"beta": 0.9999, "gamma": 0.0},
    "logit_adjusted": {"tau": 1.0},
    "balanced_softmax": {},
    "ldam": {"max_margin": 0.5, "scale": 30.0, "scaled_logits": False},
}


def check_counts(counts, name: str = "counts") -> np.ndarray:
    """Per-class training counts as float64 [C]; every class needs at least one example.

    Raises:
      ValueError: when `counts` is not 1-D with >= 2 entries, or holds a value < 1 or not finite.
    """
    array = np.asarray(counts, dtype=np.float64)
    if array.ndim != 1 or array.size < 2:
        raise ValueError(f"{name} must be a 1-D list of per-class counts for at least two classes, "
                         f"got shape {array.shape}")
    bad = ~np.isfinite(array) | (array < 1)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} must be >= 1 for every class (a class absent from the training split "
                         f"has no prior); got {name}[{index}]={array[index]:g} in {array.tolist()}")
    return array


def _check_gamma(gamma: float) -> float:
    if not math.isfinite(gamma) or gamma < 0:
        raise ValueError(f"gamma must be a finite number >= 0 (0 gives cross-entropy), got {gamma!r}")
    return float(gamma)


def class_balanced_weights(counts, beta: float) -> np.ndarray:
    """Cui et al. 2019's effective-number weights, rescaled to sum to the class count.

    `w_c = (1 - beta) / (1 - beta^n_c)`; beta 0 gives equal weights, beta -> 1
    approaches inverse frequency.

    Args:
      counts: per-class training counts [C], each >= 1.
      beta: in [0, 1).

    Returns:
      float32 [C] weights summing to C.

    Raises:
      ValueError: on bad counts or beta outside [0, 1).
    """
    counts = check_counts(counts)
    if not (0.0 <= beta < 1.0):
        raise ValueError(f"beta must be in [0, 1), got {beta!r}")
    # -expm1(n log beta) = 1 - beta^n without cancellation for beta close to 1.
    effective = -np.expm1(counts * np.log(beta)) if beta > 0 else np.ones_like(counts)
    weights = (1.0 - beta) / effective
    return (weights / weights.sum() * counts.size).astype(np.float32)


def log_prior(counts) -> np.ndarray:
    """log(n_c / sum(n)) as float32 [C]."""
    counts = check_counts(counts)
    return np.log(counts / counts.sum()).astype(np.float32)


def ldam_margins(counts, max_margin: float = 0.5) -> np.ndarray:
    """LDAM margins proportional to n_c^(-1/4), scaled so the largest (rarest class) equals `max_margin`."""
    counts = check_counts(counts)
    if not (math.isfinite(max_margin) and max_margin > 0):
        raise ValueError(f"max_margin must be > 0, got {max_margin!r}")
    margins = counts ** -0.25
    return (margins * (max_margin / margins.max())).astype(np.float32)


def _margin_nll(z, shift) -> tf.Tensor:
    """[B, C]: -log softmax(z - shift_c e_c)_c for every class c, without building C logit copies.

    -log p'_c = softplus(LSE_{j != c} z_j - z_c + shift_c). The log-sum-exp over the other
    classes is LSE(z) + log(1 - p_c), exact for every class but the argmax (p_c <= 1/2
    there); the argmax's is a second log-sum-exp with that entry masked out. Differencing
    the full partition instead loses ~1e-4 to float32 cancellation when p_c ~ 1.
    """
    num_classes = tf.shape(z)[-1]
    top = tf.one_hot(tf.argmax(z, axis=-1), num_classes, on_value=True, off_value=False)
    lse = tf.reduce_logsumexp(z, axis=-1, keepdims=True)
    # p = 0 at the argmax keeps log1p finite there (a NaN would leak through tf.where's gradient).
    p_rest = tf.where(top, 0.0, tf.exp(z - lse))
    lse_rest = lse + tf.math.log1p(-p_rest)
    lse_top_rest = tf.reduce_logsumexp(tf.where(top, -np.inf, z), axis=-1, keepdims=True)
    lse_rest = tf.where(top, lse_top_rest, lse_rest)
    return tf.nn.softplus(lse_rest - z + shift)


@dataclasses.dataclass(frozen=True, eq=False)
class Loss:
    """A per-example loss `loss(labels, logits, class_weights=None) -> float32 [B]`.

    Attributes:
      name: the loss name (one of `LOSSES`).
      offset: float32 [C] added to the scaled logits, or None.
      margin: float32 [C] subtracted from the true class's logit before scaling, or None.
      scale: multiplies the (margin-adjusted) logits.
      gamma: focal exponent (0: cross-entropy).
      class_weights: float32 [C] per-class weights built into the loss (class_balanced), or None.
      params: the parameters it was made with (JSON-able, for metrics.json).
    """

    name: str
    offset: np.ndarray | None = None
    margin: np.ndarray | None = None
    scale: float = 1.0
    gamma: float = 0.0
    class_weights: np.ndarray | None = None
    params: dict = dataclasses.field(default_factory=dict)

    def per_label(self, logits) -> tf.Tensor:
        """float32 [B, C]: entry (b, c) is example b's unweighted loss if its label were c."""
        logits = tf.cast(logits, tf.float32)
        classes = next((array.size for array in (self.offset, self.margin, self.class_weights)
                        if array is not None), None)
        if classes is not None and logits.shape[-1] is not None and logits.shape[-1] != classes:
            raise ValueError(f"loss {self.name!r} was made for {classes} classes (counts), but the logits "
                             f"have {logits.shape[-1]}")
        z = logits * self.scale if self.scale != 1.0 else logits
        if self.offset is not None:
            z = z + tf.constant(self.offset, tf.float32)
        if self.margin is None:
            nll = -tf.nn.log_softmax(z, axis=-1)
        else:
            nll = _margin_nll(z, self.scale * tf.constant(self.margin, tf.float32))
        if self.gamma:
            # 1 - p via expm1 for precision; the floor keeps the gradient finite for gamma < 1.
            one_minus_p = tf.maximum(-tf.math.expm1(-nll), 1e-30)
            nll = tf.pow(one_minus_p, self.gamma) * nll
        return nll

    def __call__(self, labels, logits, class_weights=None) -> tf.Tensor:
        """Per-example losses.

        Args:
          labels: int [B] class indices, or float [B, C] soft targets (rows summing to 1).
          logits: [B, C] logits, any float dtype.
          class_weights: optional float [C] per-class weights (class_weight=balanced, DRW),
            multiplied with the loss's own weights.

        Returns:
          float32 [B].
        """
        per_label = self.per_label(logits)
        weights = None
        if self.class_weights is not None:
            weights = tf.constant(self.class_weights, tf.float32)
        if class_weights is not None:
            extra = tf.cast(class_weights, tf.float32)
            weights = extra if weights is None else weights * extra
        labels = tf.convert_to_tensor(labels)
        if labels.dtype.is_integer:
            losses = tf.gather(per_label, tf.cast(labels, tf.int32), axis=1, batch_dims=1)
            return losses if weights is None else losses * tf.gather(weights, labels)
        targets = tf.cast(labels, tf.float32)
        if weights is not None:
            targets = targets * weights
        return tf.reduce_sum(targets * per_label, axis=-1)


def cross_entropy() -> Loss:
    """Softmax cross-entropy (the trainer's loss today)."""
    return Loss("cross_entropy")


def focal(gamma: float = 2.0) -> Loss:
    """Softmax focal loss -(1 - p_y)^gamma log p_y (no alpha term); gamma 0 is cross-entropy."""
    gamma = _check_gamma(gamma)
    return Loss("focal", gamma=gamma, params={"gamma": gamma})


def class_balanced(counts, beta: float = 0.9999, gamma: float = 0.0) -> Loss:
    """Cross-entropy (gamma 0) or focal loss weighted by `class_balanced_weights(counts, beta)`."""
    gamma = _check_gamma(gamma)
    weights = class_balanced_weights(counts, beta)
    return Loss("class_balanced", gamma=gamma, class_weights=weights,
                params={"beta": float(beta), "gamma": gamma})


def logit_adjusted(counts, tau: float = 1.0) -> Loss:
    """Menon et al.'s logit-adjusted loss: cross-entropy on f + tau * log(prior)."""
    if not math.isfinite(tau):
        raise ValueError(f"tau must be finite, got {tau!r}")
    return Loss("logit_adjusted", offset=(tau * log_prior(counts)).astype(np.float32),
                params={"tau": float(tau)})


def balanced_softmax(counts) -> Loss:
    """Ren et al.'s balanced softmax: cross-entropy on f + log(n).

    Equal to `logit_adjusted(counts, tau=1)`: log n and log prior differ by a
    constant, which softmax ignores.
    """
    return Loss("balanced_softmax", offset=np.log(check_counts(counts)).astype(np.float32))


def ldam(counts, max_margin: float = 0.5, scale: float = 30.0, scaled_logits: bool = False) -> Loss:
    """Cao et al.'s LDAM loss: cross-entropy on scale * (cos - Delta_y at the label).

    Meant for the cosine logits of a `NormedDense` head (in [-1, 1]), hence the scale.

    Args:
      counts: per-class training counts [C].
      max_margin: the largest margin (the rarest class's).
      scale: s.
      scaled_logits: True when the head already outputs s * cos (`NormedDense(scale=s)`):
        the loss then subtracts s * Delta_y and does not scale again. Prefer it: the
        model's logits are then the ones trained on, so softmax probabilities (ECE),
        post-hoc adjustment and the exported model need no extra factor (softmax of the
        bare cosines is nearly uniform: ECE 0.46 against 0.15 on a toy problem).
    """
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be > 0, got {scale!r}")
    margins = ldam_margins(counts, max_margin)
    params = {"max_margin": float(max_margin), "scale": float(scale), "scaled_logits": bool(scaled_logits)}
    if scaled_logits:
        return Loss("ldam", margin=(scale * margins).astype(np.float32), params=params)
    return Loss("ldam", margin=margins, scale=float(scale), params=params)


def make_loss(name: str, counts=None, **params) -> Loss:
    """The loss named `name` (as --loss spells it), validated.

    Args:
      name: one of `LOSSES`.
      counts: per-class training counts [C] (the split trained on); required by
        every loss but `cross_entropy` and `focal`.
      **params: that loss's parameters (see `LOSS_PARAMS`): focal `gamma`;
        class_balanced `beta`, `gamma`; logit_adjusted `tau`; ldam `max_margin`, `scale`,
        `scaled_logits`.

    Raises:
      ValueError: on an unknown name or parameter, a bad value, or missing counts.
    """
    if name not in LOSS_PARAMS:
        raise ValueError(f"loss {name!r} is not valid; allowed: {', '.join(LOSSES)}")
    unknown = sorted(set(params) - set(LOSS_PARAMS[name]))
    if unknown:
        raise ValueError(f"loss {name!r} takes no parameter {unknown[0]!r}; allowed: "
                         f"{', '.join(LOSS_PARAMS[name]) or 'none'}")
    values = {**LOSS_PARAMS[name], **params}
    if name in ("cross_entropy", "focal"):
        return cross_entropy() if name == "cross_entropy" else focal(values["gamma"])
    if counts is None:
        needed = ", ".join(f"{key}={value!r}" for key, value in values.items()) or "it"
        raise ValueError(f"loss {name!r} ({needed}) needs the per-class training counts; got counts=None")
    builders = {"class_balanced": class_balanced, "logit_adjusted": logit_adjusted,
                "balanced_softmax": balanced_softmax, "ldam": ldam}
    return builders[name](counts, **values)


def drw_weights(epoch: int, start_epoch: int, counts, beta: float = 0.9999) -> np.ndarray | None:
    """Deferred re-weighting (Cao et al. 2019): None before `start_epoch`, CB weights from it on.

    Epochs are 0-based, as in kaidic/LDAM-DRW (`epoch // 160` selects beta 0.9999
    from the 161st epoch on, of 200): `start_epoch` is the first re-weighted epoch.
    The weights are `class_balanced_weights` rescaled so that a training example's mean
    weight, sum_c n_c w_c / N, is 1 (the module docstring says why).

    Raises:
      ValueError: on a negative epoch or start_epoch, bad counts or beta.
    """
    if epoch < 0 or start_epoch < 0:
        raise ValueError(f"epoch and start_epoch must be >= 0, got epoch={epoch}, start_epoch={start_epoch}")
    weights = class_balanced_weights(counts, beta)  # Validated on every epoch, not only after the switch.
    if epoch < start_epoch:
        return None
    counts = np.asarray(counts, np.float64)
    return (weights * (counts.sum() / np.dot(counts, weights))).astype(np.float32)


class NormedDense(keras.layers.Layer):
    """Cosine logits: L2-normalised inputs times L2-normalised kernel columns (LDAM's NormedLinear).

    No bias. Output `scale * cos` in [-scale, scale], float32 whatever the dtype policy.
    With scale 1 (NormedLinear) the loss scales (`ldam(...)`); with scale s the logits
    are the trained ones (`ldam(..., scale=s, scaled_logits=True)`).

    Args:
      units: output classes.
      seed: initializer seed (uniform in [-1, 1], as NormedLinear; only the direction matters).
      scale: fixed factor on the cosines (not trained).
    """

    def __init__(self, units: int, seed: int | None = None, scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if units < 1:
            raise ValueError(f"units must be >= 1, got {units}")
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be > 0, got {scale!r}")
        self.units, self.seed, self.scale = int(units), seed, float(scale)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(int(input_shape[-1]), self.units),
            initializer=keras.initializers.RandomUniform(-1.0, 1.0, seed=self.seed))

    def call(self, inputs):
        inputs = tf.math.l2_normalize(tf.cast(inputs, tf.float32), axis=-1, epsilon=1e-12)
        kernel = tf.math.l2_normalize(tf.cast(self.kernel, tf.float32), axis=0, epsilon=1e-12)
        cosines = tf.matmul(inputs, kernel)
        return cosines * self.scale if self.scale != 1.0 else cosines

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "seed": self.seed, "scale": self.scale}
