"""Pooled-feature backbones: a Keras model [N, H, W, 3] model input -> [N, features].

Each backbone declares its feature width, the pixel normalisation its weights
expect (a name of `augbal_tf.preprocessing.NORMALIZATIONS`) and how it finds
weights: None (random init), "imagenet" or a path to a Keras `.weights.h5` file
(as written by `backbone.save_weights`). `augbal_tf.model` wraps a backbone with
the paper's head.
"""

import dataclasses
import difflib
import os
from typing import Callable

import keras
import numpy as np


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone.

    Attributes:
      build: (weights: None | "imagenet", seed, dtype) -> keras.Model with variables created.
      features: width of the pooled features.
      preprocessing: the normalisation of `augbal_tf.preprocessing` the weights expect.
      blocks: len(`backbone_blocks`) where it is fixed (checks need not build the model); None: count them.
    """
    build: Callable[..., keras.Model]
    features: int
    preprocessing: str
    blocks: int | None = None


def _build_lite0(weights, seed, dtype) -> keras.Model:
    from augbal_tf.backbones import efficientnet_lite, weights as weights_lib  # pylint: disable=import-outside-toplevel
    backbone = efficientnet_lite.EfficientNetLite0(seed=seed, dtype=dtype)
    backbone(np.zeros((1, 32, 32, 3), np.float32))
    if weights == "imagenet":
        # Layer by layer: conv and BatchNorm values only, the drop-connect seeds stay `seed`'s.
        for target, values in zip(efficientnet_lite.keras_layers(backbone),
                                  weights_lib.lite0_imagenet_layer_weights(), strict=True):
            target.set_weights(values)
    return backbone


def _application_builder(name: str) -> Callable[..., keras.Model]:
    def build(weights, seed, dtype):
        from augbal_tf.backbones import keras_apps  # pylint: disable=import-outside-toplevel
        return keras_apps.build_application(name, weights, dtype=dtype, seed=seed)
    return build


BACKBONES: dict[str, BackboneSpec] = {
    "efficientnet_lite0": BackboneSpec(_build_lite0, 1280, "lite", blocks=18),  # Stem, 16 MBConv, head conv.
    "resnet50": BackboneSpec(_application_builder("resnet50"), 2048, "caffe"),
    "mobilenet_v3_small": BackboneSpec(_application_builder("mobilenet_v3_small"), 576, "raw"),
    "efficientnet_b0": BackboneSpec(_application_builder("efficientnet_b0"), 1280, "raw"),
}


def check_weights(weights) -> str | None:
    """Canonical `weights`: None ("none" and "" too), "imagenet" or a path string.

    Raises:
      ValueError: if `weights` is not None, a string or a path.
    """
    if weights is None or (isinstance(weights, str) and weights.lower() in ("", "none")):
        return None
    if isinstance(weights, str) and weights.lower() == "imagenet":
        return "imagenet"
    if isinstance(weights, (str, os.PathLike)):
        return os.fspath(weights)
    raise ValueError(f"weights={weights!r} is not valid; allowed: None, 'imagenet' or a path to a "
                     ".weights.h5 file")


def get_spec(name: str) -> BackboneSpec:
    """The spec of backbone `name`; raises ValueError listing close matches."""
    if name not in BACKBONES:
        close = difflib.get_close_matches(name, BACKBONES, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ValueError(f"backbone={name!r} is not registered{hint}; allowed: {', '.join(sorted(BACKBONES))}")
    return BACKBONES[name]


def build_backbone(name: str, weights=None, seed: int = 0, dtype=None) -> keras.Model:
    """Builds backbone `name` with `weights` (None, "imagenet" or a Keras weights file path).

    Raises:
      ValueError: unknown name or weights, or a weights file of another architecture.
      FileNotFoundError: a weights path that does not exist.
      ImportError: "imagenet" for efficientnet_lite0 without the `pretrained` extra.
      OSError: "imagenet" for a keras.applications model offline without Keras' cached file.
    """
    from augbal_tf.backbones import weights as weights_lib  # pylint: disable=import-outside-toplevel
    spec = get_spec(name)
    weights = check_weights(weights)
    if weights not in (None, "imagenet"):
        if not os.path.isfile(os.path.expanduser(weights)):
            # Before building: a typo in a path should not cost a model construction.
            raise FileNotFoundError(f"--weights={weights!r}: weights file does not exist")
        backbone = spec.build(None, seed, dtype)
        weights_lib.load_keras_weights(backbone, weights, name)
        return backbone
    return spec.build(weights, seed, dtype)


def backbone_blocks(backbone: keras.Model) -> list[list[keras.layers.Layer]]:
    """The fine-tuning units of a built backbone, input to output.

    A backbone that defines `fine_tune_blocks` (EfficientNet-Lite0: the stem, each of
    the 16 MBConv blocks, the 1x1 head convolution: 18 units) gives its own; a
    keras.applications model's units are its layers that hold weights (convolutions,
    BatchNorms, ...), as in the Keras guide's `base_model.layers[-N:]` but without the
    weightless layers.
    """
    if hasattr(backbone, "fine_tune_blocks"):
        return backbone.fine_tune_blocks
    return [[layer] for layer in backbone.layers if layer.weights]
