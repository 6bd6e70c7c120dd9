"""ResNet (basic blocks, random init) with the paper's sequential head, in Keras 3.

Built as torchvision builds it: bias-free convolutions with symmetric padding,
BatchNormalization with momentum 0.9 and epsilon 1e-5 (Keras' defaults, 0.99 and
1e-3, leave the moving statistics unconverged in short runs and the model
collapses to one class at evaluation), a 3x3 max pool after the stem, and the
paper's head Dense(512) -> ReLU -> Dropout(0.2) -> Dense(n_classes) returning
logits (softmax cross-entropy from logits equals the paper's NLL on LogSoftmax).
tests/augbal_tf/test_model.py checks it against the PyTorch reference
(benchmarks/torch_resnet18.py) with copied weights.

Models are found by name in `MODELS` (the `--model` flag): resnet18/resnet34 (this
file, random init) and every pretrained-capable backbone of `augbal_tf.backbones`
behind `BackboneClassifier` (EfficientNet-Lite0 and keras.applications models), each
with the input normalisation of `preprocessing_for(name)`.
"""

import difflib
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from augbal_tf import backbones
from augbal_tf import losses

# Blocks per stage of each ResNet built from basic blocks (He et al. 2016, table 1).
RESNET_SPECS = {
    "resnet18": (2, 2, 2, 2),
    "resnet34": (3, 4, 6, 3),
}
STAGE_FILTERS = (64, 128, 256, 512)
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def _conv_initializer(seed: int) -> keras.initializers.Initializer:
    # torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu").
    return keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal", seed=seed)


@keras.saving.register_keras_serializable("augbal")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """Keras' BatchNormalization whose training step is TF's fused kernel.

    Keras 3 normalises with separate mean, variance and arithmetic ops; the fused
    kernel does forward and backward in one pass each: 3.2x faster per layer on CPU,
    1.17x for a whole ResNet18 training step (benchmarks/model_layers.py). Like PyTorch (and unlike Keras), the moving
    variance is updated with the unbiased batch variance. Evaluation, masks and
    other layouts use Keras' own path.
    """

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable) or mask is not None or len(inputs.shape) != 4 \
                or self.axis not in (-1, 3) or self.renorm or not (self.scale and self.center):
            return super().call(inputs, training=training, mask=mask)
        # Keras upcasts BatchNorm's inputs to float32 under mixed precision (its sums overflow or
        # lose bits in 16 bits). The fused kernel does that inside: it takes bfloat16 or float16 x
        # (also on CPU) with float32 scale, offset, mean and variance ("U"), and accumulates
        # the statistics and gradient sums in float32. Passing x uncast skips two full-size cast
        # copies per layer (forward + backward 2.2x faster on a bfloat16 64x38x38x64 map) and
        # gives the same statistics; only y is rounded, to the compute dtype the next conv reads.
        if inputs.dtype not in (tf.float32, tf.bfloat16, tf.float16):
            inputs = tf.cast(inputs, tf.float32)
        outputs, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=tf.cast(self.gamma, tf.float32),
            offset=tf.cast(self.beta, tf.float32), mean=tf.zeros([0]), variance=tf.zeros([0]),
            epsilon=self.epsilon, is_training=True, data_format="NHWC")
        # Moving statistics are float32 variables (the mixed policies' variable dtype).
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return tf.cast(outputs, self.compute_dtype)


@keras.saving.register_keras_serializable("augbal")
class ConvBN(keras.layers.Layer):
    """The unit every ResNet stage repeats: bias-free conv -> BatchNorm -> optional ReLU."""

    def __init__(self, filters: int, kernel_size: int, strides: int = 1, relu: bool = True,
                 seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.strides = filters, kernel_size, strides
        self.relu, self.seed = relu, seed
        # PyTorch pads kernel_size // 2 on every side. At stride 1 (and for 1x1 kernels, which
        # pad nothing) that is exactly TF's "same", which the convolution does in place; an
        # explicit pad would copy every activation map (the unit is 1.07x faster without it:
        # benchmarks/model_layers.py).
        # At stride 2 "same" pads only the bottom and right of even-sized inputs, so those few
        # convolutions pad explicitly.
        explicit = strides > 1 and kernel_size > 1
        self.pad = keras.layers.ZeroPadding2D(kernel_size // 2, dtype=self.dtype_policy) if explicit else None
        self.conv = keras.layers.Conv2D(filters, kernel_size, strides=strides,
                                        padding="valid" if explicit else "same",
                                        use_bias=False, kernel_initializer=_conv_initializer(seed),
                                        dtype=self.dtype_policy)
        self.bn = FusedBatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
                                                  dtype=self.dtype_policy)

    def call(self, inputs, training=False):
        padded = self.pad(inputs) if self.pad is not None else inputs
        outputs = self.bn(self.conv(padded), training=training)
        return keras.ops.relu(outputs) if self.relu else outputs

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "relu": self.relu, "seed": self.seed}


@keras.saving.register_keras_serializable("augbal")
class BasicBlock(keras.layers.Layer):
    """Two 3x3 ConvBN units with an identity (or 1x1 projection) shortcut."""

    def __init__(self, filters: int, strides: int = 1, project: bool = False, seed: int = 0,
                 **kwargs):
        super().__init__(**kwargs)
        self.filters, self.strides, self.project, self.seed = filters, strides, project, seed
        seeds = np.random.default_rng(seed).integers(2**31, size=3)
        self.conv1 = ConvBN(filters, 3, strides, seed=int(seeds[0]), dtype=self.dtype_policy)
        self.conv2 = ConvBN(filters, 3, 1, relu=False, seed=int(seeds[1]), dtype=self.dtype_policy)
        self.shortcut = (ConvBN(filters, 1, strides, relu=False, seed=int(seeds[2]),
                                dtype=self.dtype_policy) if project else None)

    def call(self, inputs, training=False):
        residual = self.conv2(self.conv1(inputs, training=training), training=training)
        shortcut = self.shortcut(inputs, training=training) if self.shortcut else inputs
        return keras.ops.relu(residual + shortcut)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides,
                "project": self.project, "seed": self.seed}


class _PaperHead:
    """What the trainer needs of the paper's head (Dense + ReLU + Dropout + Dense), for every classifier.

    The class using it defines `head_hidden`, `head_dropout`, `head_output` and `dropout`.
    """

    @property
    def head_layers(self) -> list[keras.layers.Layer]:
        return [self.head_hidden, self.head_output]

    @property
    def head_variables(self) -> list:
        """Trainable variables of the head (what --freeze_backbone trains)."""
        return [v for layer in self.head_layers for v in layer.trainable_variables]

    @property
    def backbone_blocks(self) -> list[list[keras.layers.Layer]]:
        """The backbone's fine-tuning units, input to output (--fine_tune_layers counts them from the end)."""
        raise NotImplementedError

    def set_dropout_seed(self, seed: int) -> None:
        """Restarts the dropout random stream, so dropout masks depend on `seed` only."""
        if self.dropout > 0:  # Keras creates no seed generator for a rate of 0.
            self.head_dropout.seed_generator.state.assign(np.array([seed, 0], dtype="int64"))


@keras.saving.register_keras_serializable("augbal")
class ResNetClassifier(_PaperHead, keras.Model):
    """ResNet backbone + the paper's head; maps normalised [N, H, W, 3] images to logits.

    Args:
      num_classes: number of output logits (>= 2).
      architecture: a key of RESNET_SPECS.
      head_width: units of the head's hidden Dense layer.
      dropout: dropout rate of the head.
      seed: seed of every initializer and of the dropout layer.
      head_scale: None (a Dense output layer) or s of LDAM's cosine head `losses.NormedDense(scale=s)`.
      dtype: Keras dtype policy (e.g. "mixed_float16"); logits are always float32.
    """

    def __init__(self, num_classes: int, architecture: str = "resnet18", head_width: int = 512,
                 dropout: float = 0.2, seed: int = 0, head_scale: float | None = None, **kwargs):
        super().__init__(**kwargs)
        if architecture not in RESNET_SPECS:
            raise ValueError(f"architecture={architecture!r} is not valid; allowed: "
                             f"{', '.join(RESNET_SPECS)}")
        if num_classes < 2:
            raise ValueError(f"num_classes={num_classes!r} is not valid; must be >= 2")
        self.num_classes, self.architecture = num_classes, architecture
        self.head_width, self.dropout, self.seed, self.head_scale = head_width, dropout, seed, head_scale
        rng = np.random.default_rng(seed)

        def next_seed() -> int:
            return int(rng.integers(2**31))

        policy = self.dtype_policy
        self.stem = ConvBN(64, 7, 2, seed=next_seed(), dtype=policy)
        self.pool_pad = keras.layers.ZeroPadding2D(1, dtype=policy)  # Inputs are >= 0 after ReLU.
        self.pool = keras.layers.MaxPooling2D(3, 2, dtype=policy)
        self.blocks = []
        in_filters = 64
        for stage, (num_blocks, filters) in enumerate(zip(RESNET_SPECS[architecture], STAGE_FILTERS)):
            for index in range(num_blocks):
                strides = 2 if stage > 0 and index == 0 else 1
                self.blocks.append(BasicBlock(filters, strides, project=strides != 1 or in_filters != filters,
                                              seed=next_seed(), dtype=policy))
                in_filters = filters
        # The head runs in float32 whatever the policy (the float32 pool casts the features up):
        # the pool sums H*W positions, the logits feed the loss and the remedies' logit offsets
        # (a bfloat16 logit of 8 is rounded to a multiple of 1/16, coarser than many offsets), and
        # the head is < 0.1% of the step's FLOPs.
        self.global_pool = keras.layers.GlobalAveragePooling2D(dtype="float32")
        self.head_hidden = keras.layers.Dense(head_width, **_dense_initializers(STAGE_FILTERS[-1], next_seed()),
                                              dtype="float32")
        self.head_dropout = keras.layers.Dropout(dropout, seed=next_seed(), dtype="float32")
        self.head_output = _output_layer(num_classes, head_width, next_seed(), head_scale)

    @property
    def backbone_blocks(self) -> list[list[keras.layers.Layer]]:
        """The stem, then each BasicBlock (resnet18: 9 units)."""
        return [[self.stem]] + [[block] for block in self.blocks]

    def features(self, inputs, training=False):
        """Pooled backbone features [N, 512] of model inputs (cRT's frozen stage runs it in inference mode)."""
        features = self.pool(self.pool_pad(self.stem(inputs, training=training)))
        for block in self.blocks:
            features = block(features, training=training)
        return self.global_pool(features)

    def head(self, features, training=False):
        """Logits of pooled features."""
        hidden = keras.ops.relu(self.head_hidden(features))
        return self.head_output(self.head_dropout(hidden, training=training))

    def call(self, inputs, training=False):
        return self.head(self.features(inputs, training=training), training=training)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "architecture": self.architecture, "head_width": self.head_width,
                "dropout": self.dropout, "seed": self.seed, "head_scale": self.head_scale}


# --- normed head (LDAM, #13): kept apart from the backbone registry ---
def _output_layer(num_classes: int, fan_in: int, seed: int, head_scale: float | None) -> keras.layers.Layer:
    """The head's output layer: Dense, or with `head_scale` LDAM's cosine head `NormedDense(scale=s)`."""
    if head_scale is None:
        return keras.layers.Dense(num_classes, **_dense_initializers(fan_in, seed), dtype="float32")
    return losses.NormedDense(num_classes, seed=seed, scale=head_scale, dtype="float32")
# --- end normed head ---


def _dense_initializers(fan_in: int, seed: int) -> dict:
    # torch.nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for kernel and bias.
    seeds = np.random.default_rng(seed).integers(2**31, size=2)
    bound = 1.0 / np.sqrt(fan_in)
    return {"kernel_initializer": keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform",
                                                                     seed=int(seeds[0])),
            "bias_initializer": keras.initializers.RandomUniform(-bound, bound, seed=int(seeds[1]))}


BN_MODES = ("train", "inference")


def default_bn_mode(weights) -> str:
    """"inference" for pretrained weights (the Keras transfer-learning convention), else "train".

    "train" keeps today's paper behaviour: a random backbone, frozen or not, updates its
    BatchNorm statistics; "inference" runs every backbone BatchNorm on its moving
    statistics and freezes its scale and offset.
    """
    return "train" if backbones.check_weights(weights) is None else "inference"


def apply_bn_mode(model: keras.layers.Layer, bn_mode: str, exclude=()) -> None:
    """Sets every BatchNormalization of `model` (but those in `exclude`) to `bn_mode`.

    Raises:
      ValueError: if `bn_mode` is not one of BN_MODES.
    """
    if bn_mode not in BN_MODES:
        raise ValueError(f"bn_mode={bn_mode!r} is not valid; allowed: {', '.join(BN_MODES)}")
    for layer in model._flatten_layers():  # pylint: disable=protected-access
        if isinstance(layer, keras.layers.BatchNormalization) and layer not in exclude:
            # A non-trainable Keras BatchNormalization normalises with its moving statistics.
            layer.trainable = bn_mode == "train"


def _classifier_seeds(seed: int) -> list[int]:
    """Seeds of a `BackboneClassifier`'s backbone, hidden Dense, Dropout and output layer (in that order)."""
    return [int(value) for value in np.random.default_rng(seed).integers(2**31, size=4)]


def classifier_backbone(backbone: str, weights, seed: int, bn_mode: str, dtype=None) -> keras.Model:
    """The backbone that `BackboneClassifier(backbone=backbone, weights=weights, seed=seed, bn_mode=bn_mode)` holds."""
    model = backbones.build_backbone(backbone, weights, seed=_classifier_seeds(seed)[0], dtype=dtype)
    apply_bn_mode(model, bn_mode)
    return model


def _add_feature_head(model: keras.Model, features: int, seeds: list[int], num_classes: int, head_width: int,
                      dropout: float, head_scale: float | None) -> None:
    """The paper's head on `features` pooled features, as `model`'s head_hidden, head_dropout and head_output."""
    # The head runs in float32 as ResNetClassifier's does (why: there); every backbone pools in
    # float32 too, so the features it returns are float32 whatever the policy.
    model.head_hidden = keras.layers.Dense(head_width, **_dense_initializers(features, seeds[1]), dtype="float32")
    model.head_dropout = keras.layers.Dropout(dropout, seed=seeds[2], dtype="float32")
    model.head_output = _output_layer(num_classes, head_width, seeds[3], head_scale)


def _feature_head_logits(model: keras.Model, features, training: bool):
    hidden = keras.ops.relu(model.head_hidden(features))
    return model.head_output(model.head_dropout(hidden, training=training))


@keras.saving.register_keras_serializable("augbal")
class BackboneClassifier(_PaperHead, keras.Model):
    """A registered backbone (`augbal_tf.backbones`) + the paper's head; model input -> logits.

    Args:
      num_classes: number of output logits (>= 2).
      backbone: a key of `augbal_tf.backbones.BACKBONES`.
      weights: None (random init), "imagenet" or a path to a backbone `.weights.h5` file.
      bn_mode: "train" or "inference" for the backbone's BatchNorm (default: `default_bn_mode`).
      head_width: units of the head's hidden Dense layer.
      dropout: dropout rate of the head.
      seed: seed of the backbone's and the head's initializers and random streams.
      head_scale: None (a Dense output layer) or s of LDAM's cosine head `losses.NormedDense(scale=s)`.
      dtype: Keras dtype policy; logits are always float32.
    """

    def __init__(self, num_classes: int, backbone: str = "efficientnet_lite0", weights=None,
                 bn_mode: str | None = None, head_width: int = 512, dropout: float = 0.2, seed: int = 0,
                 head_scale: float | None = None, **kwargs):
        super().__init__(**kwargs)
        if num_classes < 2:
            raise ValueError(f"num_classes={num_classes!r} is not valid; must be >= 2")
        spec = backbones.get_spec(backbone)
        weights = backbones.check_weights(weights)
        bn_mode = bn_mode or default_bn_mode(weights)
        if bn_mode not in BN_MODES:
            raise ValueError(f"bn_mode={bn_mode!r} is not valid; allowed: {', '.join(BN_MODES)}")
        self.num_classes, self.backbone_name, self.weights_source = num_classes, backbone, weights
        self.bn_mode, self.head_width, self.dropout, self.seed = bn_mode, head_width, dropout, seed
        self.head_scale = head_scale
        self.preprocessing = spec.preprocessing
        self.backbone = classifier_backbone(backbone, weights, seed, bn_mode, dtype=self.dtype_policy.name)
        _add_feature_head(self, spec.features, _classifier_seeds(seed), num_classes, head_width, dropout,
                          head_scale)

    @property
    def backbone_blocks(self) -> list[list[keras.layers.Layer]]:
        """`augbal_tf.backbones.backbone_blocks` of the backbone."""
        return backbones.backbone_blocks(self.backbone)

    def features(self, inputs, training=False):
        """Pooled backbone features [N, features] of model inputs."""
        return self.backbone(inputs, training=training)

    def head(self, features, training=False):
        """Logits of pooled features (what a cached-feature fast path trains)."""
        return _feature_head_logits(self, features, training)

    def call(self, inputs, training=False):
        return self.head(self.features(inputs, training=training), training=training)

    def set_dropout_seed(self, seed: int) -> None:
        """Restarts the dropout (and drop-connect) streams, so their masks depend on `seed` only."""
        super().set_dropout_seed(seed)
        for index, generator in enumerate(getattr(self.backbone, "seed_generators", ())):
            generator.state.assign(np.array([seed, index + 1], dtype="int64"))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "backbone": self.backbone_name,
                "weights": self.weights_source, "bn_mode": self.bn_mode, "head_width": self.head_width,
                "dropout": self.dropout, "seed": self.seed, "head_scale": self.head_scale}


@keras.saving.register_keras_serializable("augbal")
class HeadClassifier(_PaperHead, keras.Model):
    """The head of a `BackboneClassifier` alone: pooled features -> logits, no backbone built.

    What the cached-feature fast path (#12) trains: the same layers, initial values and
    dropout stream as `BackboneClassifier(backbone=backbone, seed=seed, ...)`'s head, without
    building (and tracing) the backbone that the cached features make unnecessary.
    `copy_head` moves its weights into the full classifier (export).

    Args:
      num_classes, backbone, head_width, dropout, seed, head_scale: as in `BackboneClassifier`.
      dtype: Keras dtype policy.
    """

    def __init__(self, num_classes: int, backbone: str = "efficientnet_lite0", head_width: int = 512,
                 dropout: float = 0.2, seed: int = 0, head_scale: float | None = None, **kwargs):
        super().__init__(**kwargs)
        if num_classes < 2:
            raise ValueError(f"num_classes={num_classes!r} is not valid; must be >= 2")
        spec = backbones.get_spec(backbone)
        self.num_classes, self.backbone_name, self.features_width = num_classes, backbone, spec.features
        self.head_width, self.dropout, self.seed, self.head_scale = head_width, dropout, seed, head_scale
        _add_feature_head(self, spec.features, _classifier_seeds(seed), num_classes, head_width, dropout, head_scale)

    def head(self, features, training=False):
        """Logits of pooled features (`call`; the name the trainer uses for every classifier's head)."""
        return _feature_head_logits(self, features, training)

    def call(self, inputs, training=False):
        return self.head(inputs, training=training)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "backbone": self.backbone_name,
                "head_width": self.head_width, "dropout": self.dropout, "seed": self.seed,
                "head_scale": self.head_scale}


def create_head_model(name: str, num_classes: int, **kwargs) -> HeadClassifier:
    """The `HeadClassifier` of backbone model `name`, its variables created.

    Keyword arguments as `create_model`'s (head_width, dropout, seed, head_scale, dtype).

    Raises:
      ValueError: if `name` is not a registered backbone.
    """
    model = HeadClassifier(num_classes, backbone=name, **kwargs)
    model(np.zeros((1, model.features_width), np.float32), training=False)  # Creates the variables.
    return model


def copy_head(source: keras.Model, target: keras.Model) -> None:
    """Copies the head weights of `source` (a `HeadClassifier` or classifier) into classifier `target`."""
    for from_layer, to_layer in zip(source.head_layers, target.head_layers, strict=True):
        to_layer.set_weights(from_layer.get_weights())


MODELS: dict[str, Callable[..., keras.Model]] = {}
PREPROCESSING: dict[str, str] = {}


def register_model(name: str, factory: Callable[..., keras.Model], preprocessing: str = "imagenet") -> None:
    """Adds a model factory under `name` with its input normalisation; raises ValueError on a duplicate."""
    if name in MODELS:
        raise ValueError(f"model name {name!r} is already registered")
    MODELS[name], PREPROCESSING[name] = factory, preprocessing


def _check_name(name: str) -> None:
    if name not in MODELS:
        close = difflib.get_close_matches(name, MODELS, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ValueError(f"--model={name!r} is not registered{hint}; allowed: {', '.join(sorted(MODELS))}")


def preprocessing_for(name: str) -> str:
    """The `augbal_tf.preprocessing` normalisation that model `name` takes (for the input pipeline)."""
    _check_name(name)
    return PREPROCESSING[name]


def create_model(name: str, num_classes: int, image_size: int, **kwargs) -> keras.Model:
    """Builds the registered model `name` with its variables created for `image_size` inputs.

    Keyword arguments go to the model (e.g. weights, bn_mode, head_width, dropout, seed,
    dtype). The model's `preprocessing` attribute names its input normalisation.

    Raises:
      ValueError: if `name` is not registered (the message lists close matches).
    """
    _check_name(name)
    model = MODELS[name](num_classes=num_classes, **kwargs)
    model.preprocessing = PREPROCESSING[name]
    model(np.zeros((1, image_size, image_size, 3), np.float32), training=False)  # Creates the variables.
    return model


def backbone_block_count(name: str, image_size: int) -> int:
    """len(`backbone_blocks`) of model `name`: declared for resnet and efficientnet_lite0, else counted on a build.

    Raises:
      ValueError: if `name` is not registered.
    """
    _check_name(name)
    if name in RESNET_SPECS:
        return 1 + sum(RESNET_SPECS[name])
    spec = backbones.BACKBONES.get(name)
    if spec is not None and spec.blocks is not None:
        return spec.blocks
    return len(create_model(name, 2, image_size, head_width=8, dropout=0.0).backbone_blocks)


def _resnet_factory(architecture: str) -> Callable[..., keras.Model]:
    def factory(weights=None, bn_mode: str = "train", **kwargs) -> keras.Model:
        if backbones.check_weights(weights) is not None:
            raise ValueError(f"--weights={weights!r} is not available for --model={architecture}: no "
                             "package ships ResNet18/34 weights; allowed: none")
        model = ResNetClassifier(architecture=architecture, **kwargs)
        if bn_mode != "train":
            apply_bn_mode(model, bn_mode)
        return model
    return factory


for _architecture in RESNET_SPECS:
    register_model(_architecture, _resnet_factory(_architecture))

for _backbone, _spec in backbones.BACKBONES.items():
    register_model(_backbone, lambda backbone=_backbone, **kwargs: BackboneClassifier(backbone=backbone, **kwargs),
                   preprocessing=_spec.preprocessing)
