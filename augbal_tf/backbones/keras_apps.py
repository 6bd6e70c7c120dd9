"""`keras.applications` classifiers as pooled-feature backbones.

`weights="imagenet"` goes through Keras' own download cache
(`keras.utils.get_file`: `$KERAS_HOME/models/`, default `~/.keras/models/`).
Offline, a missing file fails with an error naming the file Keras wanted, the URL
and where to put it.
"""

import os
import re

import keras
import numpy as np

# name -> (constructor, preprocessing name of augbal_tf.preprocessing). MobileNetV3 and
# EfficientNet normalise inside the model (they take [0, 255] pixels); ResNet50 expects
# Caffe-style BGR mean subtraction.
APPLICATIONS = {
    "resnet50": (lambda **kwargs: keras.applications.ResNet50(**kwargs), "caffe"),
    "mobilenet_v3_small": (lambda **kwargs: keras.applications.MobileNetV3Small(
        include_preprocessing=True, **kwargs), "raw"),
    "efficientnet_b0": (lambda **kwargs: keras.applications.EfficientNetB0(**kwargs), "raw"),
}

_FETCH_FAILURE = re.compile(r"URL fetch failure on (\S+):\s")


def keras_models_dir() -> str:
    """Where keras.utils.get_file caches application weights."""
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(base, "models")


# Variable attribute -> the layer attributes that may hold its initializer (Keras 3's
# DepthwiseConv2D keeps its `kernel` under `depthwise_initializer`).
_INITIALIZED = (("kernel", ("kernel_initializer", "depthwise_initializer")),
                ("bias", ("bias_initializer",)))


def reseed(model: keras.Model, seed: int) -> None:
    """Re-draws every kernel and bias of a random-init `model` from its own initializers, seeded by `seed`.

    keras.applications draw their initial weights from Keras' global seed; this makes a
    random-init backbone depend on `seed` only, as the rest of augbal does.
    """
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers():  # pylint: disable=protected-access
        for variable_name, initializer_names in _INITIALIZED:
            variable = getattr(layer, variable_name, None)
            initializer = next((getattr(layer, name) for name in initializer_names
                                if getattr(layer, name, None) is not None), None)
            if variable is None or initializer is None:
                continue
            config = keras.initializers.serialize(initializer)
            if "seed" not in config["config"]:
                continue  # Zeros, Ones: nothing random to re-draw.
            config["config"]["seed"] = int(rng.integers(2**31))
            variable.assign(keras.initializers.deserialize(config)(variable.shape, variable.dtype))


def build_application(name: str, weights: str | None, dtype=None, seed: int = 0) -> keras.Model:
    """The `keras.applications` model `name` without its top, average-pooled to [N, features].

    Args:
      name: a key of APPLICATIONS.
      weights: None (random init) or "imagenet" (Keras' cache, downloaded if online).
      dtype: Keras dtype policy.
      seed: seed of the random initial weights (weights=None).

    Raises:
      ValueError: if `name` or `weights` is not valid.
      OSError: if the ImageNet weights are not cached and cannot be downloaded (names the
        file and the folder to put it in).
    """
    if name not in APPLICATIONS:
        raise ValueError(f"application {name!r} is not valid; allowed: {', '.join(APPLICATIONS)}")
    if weights not in (None, "imagenet"):
        raise ValueError(f"weights={weights!r} is not valid here; allowed: None, 'imagenet'")
    constructor, _ = APPLICATIONS[name]
    previous = keras.config.dtype_policy()
    try:
        # Not every application takes a dtype argument; all follow the global policy.
        keras.config.set_dtype_policy(dtype or previous)
        model = constructor(include_top=False, weights=weights, input_shape=(None, None, 3))
    except Exception as error:  # Keras raises a bare Exception for a failed download.
        match = _FETCH_FAILURE.search(str(error))
        if weights != "imagenet" or match is None:
            raise
        url = match.group(1)
        path = os.path.join(keras_models_dir(), url.rsplit("/", 1)[-1])
        raise OSError(f"--model={name} --weights=imagenet: Keras could not download its weights file "
                      f"{path} (from {url}); on an offline machine, download that URL elsewhere and put "
                      f"the file at {path}") from error
    finally:
        keras.config.set_dtype_policy(previous)
    # Keras' own pooling="avg" layer (same name, so weights files keep their layout), but in float32
    # whatever the policy: the mean sums H*W positions and feeds the classifier's float32 head.
    pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool", dtype="float32")(model.output)
    model = keras.Model(model.input, pooled, name=model.name)
    if weights is None:
        reseed(model, seed)
    return model
