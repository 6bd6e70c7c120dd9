"""Golden and behavioural tests of augbal_tf.model (ResNet18 + the paper's head)."""

import pathlib
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from augbal_tf import config as config_lib
from augbal_tf import model as model_lib
from augbal_tf import trainer as trainer_lib

IMAGE_SIZE = 32


@pytest.fixture(scope="module")
def resnet18():
    return model_lib.create_model("resnet18", num_classes=2, image_size=IMAGE_SIZE, seed=0)


def _count(variables) -> int:
    return sum(int(np.prod(variable.shape)) for variable in variables)


def test_trainable_parameters_match_pytorch(resnet18):
    # torchvision resnet18 without fc (11,176,512) + Linear(512,512) + Linear(512,2).
    assert _count(resnet18.trainable_variables) == 11_440_194
    # Keras also counts the 9,600 BatchNorm moving statistics.
    assert resnet18.count_params() == 11_440_194 + 9_600


def test_batchnorm_settings_and_bias_free_convolutions(resnet18):
    layers = list(resnet18._flatten_layers(include_self=False, recursive=True))
    batchnorms = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]
    convolutions = [layer for layer in layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(batchnorms) == len(convolutions) == 20  # stem + 16 block convs + 3 projections
    assert {(layer.momentum, layer.epsilon) for layer in batchnorms} == {(0.9, 1e-5)}
    assert not any(layer.use_bias for layer in convolutions)


def test_output_is_float32_logits_of_each_class(resnet18):
    images = np.random.default_rng(0).normal(size=(3, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)
    logits = resnet18(images, training=False)
    assert logits.shape == (3, 2) and logits.dtype == tf.float32
    # Logits, not probabilities: rows need not sum to one.
    assert not np.allclose(np.sum(logits, axis=1), 1.0)


def test_same_seed_same_weights_other_seed_other_weights(resnet18):
    again = model_lib.create_model("resnet18", num_classes=2, image_size=IMAGE_SIZE, seed=0)
    other = model_lib.create_model("resnet18", num_classes=2, image_size=IMAGE_SIZE, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(resnet18.get_weights(), again.get_weights()))
    assert not np.array_equal(resnet18.head_hidden.kernel.numpy(), other.head_hidden.kernel.numpy())


def test_get_config_mirrors_init(resnet18):
    config = resnet18.get_config()
    assert {key: config[key] for key in ("num_classes", "architecture", "head_width", "dropout", "seed")} == {
        "num_classes": 2, "architecture": "resnet18", "head_width": 512, "dropout": 0.2, "seed": 0}
    rebuilt = model_lib.ResNetClassifier.from_config(config)
    assert rebuilt.get_config() == config


def test_mixed_precision_computes_in_float16_and_keeps_float32_variables_and_logits():
    model = model_lib.create_model("resnet18", num_classes=3, image_size=IMAGE_SIZE, dtype="mixed_float16")
    assert model.stem.conv.compute_dtype == "float16"
    assert {variable.dtype for variable in model.variables if "seed" not in variable.path} == {"float32"}
    logits = model(np.zeros((2, IMAGE_SIZE, IMAGE_SIZE, 3), np.float32))
    assert logits.dtype == tf.float32 and logits.shape == (2, 3)


def test_registry_unknown_and_duplicate_names():
    with pytest.raises(ValueError, match=r"resnet81.*did you mean resnet18"):
        model_lib.create_model("resnet81", num_classes=2, image_size=IMAGE_SIZE)
    with pytest.raises(ValueError, match="already registered"):
        model_lib.register_model("resnet18", model_lib.ResNetClassifier)


def test_freeze_backbone_freezes_variables_but_batchnorm_statistics_move():
    config = config_lib.make(source="sample", image_size=IMAGE_SIZE, batch_size=8, freeze_backbone=True,
                                    learning_rate=1e-2)
    trainer = trainer_lib.Trainer(config, tf.distribute.get_strategy(), num_classes=2, class_weights=None)
    model = trainer.model
    stem_kernel = model.stem.conv.kernel.numpy().copy()
    block_kernel = model.blocks[-1].conv2.conv.kernel.numpy().copy()
    gamma = model.stem.bn.gamma.numpy().copy()
    moving_mean = model.stem.bn.moving_mean.numpy().copy()
    head_kernel = model.head_output.kernel.numpy().copy()
    assert _count(trainer.variables) == 512 * 512 + 512 + 512 * 2 + 2
    rng = np.random.default_rng(0)
    images = rng.normal(1.0, 1.0, size=(16, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)
    labels = np.arange(16) % 2
    trainer.train_epoch(tf.data.Dataset.from_tensor_slices((images, labels)).batch(8), epoch=0)
    np.testing.assert_array_equal(model.stem.conv.kernel.numpy(), stem_kernel)
    np.testing.assert_array_equal(model.blocks[-1].conv2.conv.kernel.numpy(), block_kernel)
    np.testing.assert_array_equal(model.stem.bn.gamma.numpy(), gamma)
    assert not np.allclose(model.stem.bn.moving_mean.numpy(), moving_mean)
    assert not np.allclose(model.head_output.kernel.numpy(), head_kernel)


def _copy_weights_to_torch(model: model_lib.ResNetClassifier, reference) -> None:
    """Copies every Keras variable into the PyTorch reference, layer by layer."""
    import torch  # pylint: disable=import-outside-toplevel

    def conv_bn(unit: model_lib.ConvBN, conv, bn) -> None:
        conv.weight.data = torch.from_numpy(unit.conv.kernel.numpy().transpose(3, 2, 0, 1).copy())
        for name, variable in (("weight", unit.bn.gamma), ("bias", unit.bn.beta),
                               ("running_mean", unit.bn.moving_mean), ("running_var", unit.bn.moving_variance)):
            getattr(bn, name).data = torch.from_numpy(variable.numpy().copy())

    def dense(layer: keras.layers.Dense, linear) -> None:
        linear.weight.data = torch.from_numpy(layer.kernel.numpy().T.copy())
        linear.bias.data = torch.from_numpy(layer.bias.numpy().copy())

    conv_bn(model.stem, reference.stem[0], reference.stem[1])
    for block, torch_block in zip(model.blocks, reference.blocks, strict=True):
        conv_bn(block.conv1, torch_block.conv1, torch_block.bn1)
        conv_bn(block.conv2, torch_block.conv2, torch_block.bn2)
        assert (block.shortcut is None) == (torch_block.shortcut is None)
        if block.shortcut is not None:
            conv_bn(block.shortcut, torch_block.shortcut[0], torch_block.shortcut[1])
    dense(model.head_hidden, reference.head[0])
    dense(model.head_output, reference.head[3])


def _batchnorm_pairs(model, reference) -> list:
    """(Keras BatchNormalization, PyTorch BatchNorm2d) pairs at the same place in the network."""
    pairs = [(model.stem.bn, reference.stem[1])]
    for block, torch_block in zip(model.blocks, reference.blocks, strict=True):
        pairs += [(block.conv1.bn, torch_block.bn1), (block.conv2.bn, torch_block.bn2)]
        if block.shortcut is not None:
            pairs.append((block.shortcut.bn, torch_block.shortcut[1]))
    return pairs


@pytest.mark.parametrize("image_size", [32, 37])  # Even and odd sizes pad differently at stride 2.
def test_same_outputs_as_the_pytorch_reference_with_the_same_weights(image_size):
    """Pins torchvision's architecture: padding, pooling, strides, shortcuts, BatchNorm, head."""
    torch = pytest.importorskip("torch")
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "benchmarks"))
    import torch_resnet18  # pylint: disable=import-outside-toplevel

    # No dropout, so training mode differs from evaluation mode only in BatchNorm's statistics.
    model = model_lib.create_model("resnet18", num_classes=3, image_size=image_size, seed=4, dropout=0.0)
    # Non-trivial moving statistics, so evaluation mode exercises them too.
    rng = np.random.default_rng(image_size)
    for layer in model._flatten_layers():  # pylint: disable=protected-access
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 0.1, layer.moving_mean.shape).astype(np.float32))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, layer.moving_variance.shape).astype(np.float32))
    reference = torch_resnet18.ResNet18Classifier(num_classes=3, dropout=0.0)
    _copy_weights_to_torch(model, reference)
    images = rng.normal(size=(4, image_size, image_size, 3)).astype(np.float32)
    torch_images = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
    for training in (False, True):  # Moving statistics, then batch statistics.
        reference.train(training)
        with torch.no_grad():
            expected = reference(torch_images).numpy()
        actual = tf.nn.log_softmax(model(images, training=training)).numpy()
        np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=1e-4)
    # One training-mode pass updated the moving statistics as PyTorch does (unbiased variance).
    pairs = _batchnorm_pairs(model, reference)
    assert len(pairs) == 20
    for keras_bn, torch_bn in pairs:
        np.testing.assert_allclose(keras_bn.moving_mean.numpy(), torch_bn.running_mean.numpy(), atol=1e-5)
        np.testing.assert_allclose(keras_bn.moving_variance.numpy(), torch_bn.running_var.numpy(), rtol=1e-4)


def test_fused_batchnorm_matches_keras_batchnorm_in_outputs_and_gradients():
    images = tf.constant(np.random.default_rng(0).normal(2.0, 3.0, size=(8, 5, 5, 6)).astype(np.float32))
    layers = {"keras": keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5),
              "fused": model_lib.FusedBatchNormalization(momentum=0.9, epsilon=1e-5)}
    results = {}
    for name, layer in layers.items():
        layer.build(images.shape)
        layer.gamma.assign(np.linspace(0.5, 1.5, 6, dtype=np.float32))
        layer.beta.assign(np.linspace(-1, 1, 6, dtype=np.float32))
        with tf.GradientTape() as tape:
            tape.watch(images)
            outputs = layer(images, training=True)
            loss = tf.reduce_sum(tf.sin(outputs))
        results[name] = [outputs, *tape.gradient(loss, [images, layer.gamma, layer.beta])]
    for keras_value, fused_value in zip(results["keras"], results["fused"]):
        np.testing.assert_allclose(fused_value.numpy(), keras_value.numpy(), atol=1e-4, rtol=1e-4)
    # Moving mean as Keras; moving variance from the unbiased batch variance (as PyTorch).
    np.testing.assert_allclose(layers["fused"].moving_mean.numpy(), layers["keras"].moving_mean.numpy(), rtol=1e-5)
    count = 8 * 5 * 5
    biased = tf.math.reduce_variance(images, axis=(0, 1, 2)).numpy()
    np.testing.assert_allclose(layers["fused"].moving_variance.numpy(), 0.9 + 0.1 * biased * count / (count - 1),
                               rtol=1e-5)
    # Evaluation mode is Keras' own path.
    np.testing.assert_array_equal(layers["fused"](images, training=False).numpy(),
                                  keras.layers.BatchNormalization.call(layers["fused"], images, training=False).numpy())
