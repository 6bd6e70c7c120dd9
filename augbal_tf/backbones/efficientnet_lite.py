"""EfficientNet-Lite0 in Keras 3, built exactly as the PyPI reference `efficientnet-lite-pytorch` 0.1.0.

Lite differs from EfficientNet-B0 by having no squeeze-and-excitation, ReLU6
instead of swish, and a stem (32) and head (1280) that are never rescaled.
Convolutions pad as TensorFlow's "same" (the reference's Conv2dStaticSamePadding
computes exactly that padding for its 224 input), BatchNorm uses momentum 0.99 and
epsilon 1e-3 (the reference's PyTorch momentum 0.01), and stochastic depth
("drop connect", rate 0.2 scaled by block index) acts in training mode only.
tests/augbal_tf/test_backbones_efficientnet_lite.py checks the ImageNet logits
against the reference with the same weights.
"""

import keras
import numpy as np

from augbal_tf import model as model_lib

# (repeats, kernel, stride, expand ratio, input filters, output filters), the reference's
# 'r1_k3_s11_e1_i32_o16', ... table for lite0 (width and depth coefficients 1.0).
LITE0_BLOCKS = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM_FILTERS = 32
FEATURES = 1280
BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3
DROP_CONNECT_RATE = 0.2
IMAGENET_CLASSES = 1000


def _batchnorm(policy) -> keras.layers.BatchNormalization:
    return model_lib.FusedBatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, dtype=policy)


def _conv(filters: int, kernel_size: int, strides: int, seed: int, policy) -> keras.layers.Conv2D:
    return keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False,
                               kernel_initializer=keras.initializers.VarianceScaling(
                                   2.0, "fan_out", "untruncated_normal", seed=seed), dtype=policy)


@keras.saving.register_keras_serializable("augbal")
class MBConv(keras.layers.Layer):
    """Mobile inverted bottleneck: [1x1 expand -> BN -> ReLU6] -> depthwise -> BN -> ReLU6 -> 1x1 -> BN."""

    def __init__(self, input_filters: int, output_filters: int, kernel_size: int, strides: int,
                 expand_ratio: int, drop_connect_rate: float = 0.0, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.input_filters, self.output_filters = input_filters, output_filters
        self.kernel_size, self.strides, self.expand_ratio = kernel_size, strides, expand_ratio
        self.drop_connect_rate, self.seed = drop_connect_rate, seed
        seeds = [int(value) for value in np.random.default_rng(seed).integers(2**31, size=4)]
        policy = self.dtype_policy
        expanded = input_filters * expand_ratio
        self.expand_conv = _conv(expanded, 1, 1, seeds[0], policy) if expand_ratio != 1 else None
        self.bn0 = _batchnorm(policy) if expand_ratio != 1 else None
        self.depthwise_conv = keras.layers.DepthwiseConv2D(
            kernel_size, strides=strides, padding="same", use_bias=False,
            depthwise_initializer=keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal",
                                                                     seed=seeds[1]), dtype=policy)
        self.bn1 = _batchnorm(policy)
        self.project_conv = _conv(output_filters, 1, 1, seeds[2], policy)
        self.bn2 = _batchnorm(policy)
        self.residual = strides == 1 and input_filters == output_filters
        self.seed_generator = (keras.random.SeedGenerator(seeds[3])
                               if self.residual and drop_connect_rate > 0 else None)

    def call(self, inputs, training=False):
        x = inputs
        if self.expand_conv is not None:
            x = keras.ops.relu6(self.bn0(self.expand_conv(x), training=training))
        x = keras.ops.relu6(self.bn1(self.depthwise_conv(x), training=training))
        x = self.bn2(self.project_conv(x), training=training)
        if not self.residual:
            return x
        if training and self.seed_generator is not None:
            # The reference's drop_connect: keep each example's branch with probability 1 - rate.
            keep = 1.0 - self.drop_connect_rate
            noise = keras.random.uniform((keras.ops.shape(x)[0], 1, 1, 1), seed=self.seed_generator,
                                         dtype=x.dtype)
            x = x / keep * keras.ops.floor(keep + noise)
        return x + inputs

    def get_config(self):
        return {**super().get_config(), "input_filters": self.input_filters,
                "output_filters": self.output_filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "expand_ratio": self.expand_ratio,
                "drop_connect_rate": self.drop_connect_rate, "seed": self.seed}


@keras.saving.register_keras_serializable("augbal")
class EfficientNetLite0(keras.Model):
    """EfficientNet-Lite0 backbone: model input [N, H, W, 3] -> pooled features [N, 1280].

    Args:
      drop_connect_rate: stochastic depth rate of the last block (the reference: 0.2).
      seed: seed of every initializer and drop-connect stream.
    """

    def __init__(self, drop_connect_rate: float = DROP_CONNECT_RATE, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.drop_connect_rate, self.seed = drop_connect_rate, seed
        rng = np.random.default_rng(seed)
        policy = self.dtype_policy
        self.conv_stem = _conv(STEM_FILTERS, 3, 2, int(rng.integers(2**31)), policy)
        self.bn0 = _batchnorm(policy)
        specs = [(kernel, stride if index == 0 else 1, expand, inputs if index == 0 else outputs, outputs)
                 for repeats, kernel, stride, expand, inputs, outputs in LITE0_BLOCKS
                 for index in range(repeats)]
        self.blocks = [MBConv(inputs, outputs, kernel, stride, expand,
                              drop_connect_rate=drop_connect_rate * index / len(specs),
                              seed=int(rng.integers(2**31)), dtype=policy)
                       for index, (kernel, stride, expand, inputs, outputs) in enumerate(specs)]
        self.conv_head = _conv(FEATURES, 1, 1, int(rng.integers(2**31)), policy)
        self.bn1 = _batchnorm(policy)
        # Pooled in float32 whatever the policy: the mean sums H*W positions, and the features feed
        # the classifier's float32 head.
        self.pool = keras.layers.GlobalAveragePooling2D(dtype="float32")

    def call(self, inputs, training=False):
        x = keras.ops.relu6(self.bn0(self.conv_stem(inputs), training=training))
        for block in self.blocks:
            x = block(x, training=training)
        x = keras.ops.relu6(self.bn1(self.conv_head(x), training=training))
        return self.pool(x)

    @property
    def fine_tune_blocks(self) -> list[list[keras.layers.Layer]]:
        """The stem (conv + BN), each MBConv block, the head (1x1 conv + BN): 18 units."""
        return ([[self.conv_stem, self.bn0]] + [[block] for block in self.blocks]
                + [[self.conv_head, self.bn1]])

    @property
    def seed_generators(self) -> list:
        return [block.seed_generator for block in self.blocks if block.seed_generator is not None]

    def get_config(self):
        return {**super().get_config(), "drop_connect_rate": self.drop_connect_rate, "seed": self.seed}


@keras.saving.register_keras_serializable("augbal")
class EfficientNetLite0ImageNet(keras.Model):
    """The backbone plus the reference's 1000-class ImageNet classifier (dropout 0.2, then `fc`).

    The converted weights are cached as this model's weights file; the classifier
    itself serves the golden test against the reference.
    """

    def __init__(self, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.backbone = EfficientNetLite0(seed=seed, dtype=self.dtype_policy)
        self.fc = keras.layers.Dense(IMAGENET_CLASSES, dtype="float32")

    def call(self, inputs, training=False):
        return self.fc(self.backbone(inputs, training=training))  # Dropout is the identity at inference.

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def _bn_weights(state_dict: dict, prefix: str) -> list:
    return [state_dict[f"{prefix}.{name}"] for name in ("weight", "bias", "running_mean", "running_var")]


def keras_weights_from_state_dict(state_dict: dict) -> list[tuple[str, list[np.ndarray]]]:
    """Maps the reference's state_dict to (PyTorch prefix, Keras layer weights) in backbone order.

    The order is the order of `keras_layers(backbone)`; conv kernels go from
    [out, in, h, w] to Keras' [h, w, in, out] (depthwise: [h, w, channels, 1]).
    Raises KeyError naming a missing tensor.
    """
    def conv(name):
        return [state_dict[f"{name}.weight"].transpose(2, 3, 1, 0)]

    def depthwise(name):
        return [state_dict[f"{name}.weight"].transpose(2, 3, 0, 1)]

    entries = [("_conv_stem", conv("_conv_stem")), ("_bn0", _bn_weights(state_dict, "_bn0"))]
    index = 0
    for repeats, _, _, expand, _, _ in LITE0_BLOCKS:
        for _ in range(repeats):
            prefix = f"_blocks.{index}"
            if expand != 1:
                entries += [(f"{prefix}._expand_conv", conv(f"{prefix}._expand_conv")),
                            (f"{prefix}._bn0", _bn_weights(state_dict, f"{prefix}._bn0"))]
            entries += [(f"{prefix}._depthwise_conv", depthwise(f"{prefix}._depthwise_conv")),
                        (f"{prefix}._bn1", _bn_weights(state_dict, f"{prefix}._bn1")),
                        (f"{prefix}._project_conv", conv(f"{prefix}._project_conv")),
                        (f"{prefix}._bn2", _bn_weights(state_dict, f"{prefix}._bn2"))]
            index += 1
    entries += [("_conv_head", conv("_conv_head")), ("_bn1", _bn_weights(state_dict, "_bn1"))]
    return entries


def keras_layers(backbone: EfficientNetLite0) -> list[keras.layers.Layer]:
    """The backbone's weighted layers in the order of `keras_weights_from_state_dict`."""
    layers = [backbone.conv_stem, backbone.bn0]
    for block in backbone.blocks:
        if block.expand_conv is not None:
            layers += [block.expand_conv, block.bn0]
        layers += [block.depthwise_conv, block.bn1, block.project_conv, block.bn2]
    return layers + [backbone.conv_head, backbone.bn1]
