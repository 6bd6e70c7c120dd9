"""Every registered model builds and gives float32 logits; bn_mode, preprocessing, export, offline errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from augbal_tf import export
from augbal_tf import model as model_lib
from augbal_tf import preprocessing
from augbal_tf.backbones import keras_apps

IMAGE_SIZE = 32


@pytest.mark.parametrize("name", sorted(model_lib.MODELS))
def test_every_registered_model_gives_float32_logits(name):
    model = model_lib.create_model(name, num_classes=3, image_size=IMAGE_SIZE, seed=0)
    images = np.random.default_rng(0).normal(size=(2, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)
    logits = model(images, training=False)
    assert logits.shape == (2, 3) and logits.dtype == tf.float32
    assert model.preprocessing == model_lib.preprocessing_for(name) in preprocessing.NORMALIZATIONS
    head = model.head_variables
    assert [tuple(v.shape) for v in head][-2:] == [(512, 3), (3,)]
    model.set_dropout_seed(5)


def test_preprocessing_by_hand():
    pixels = np.array([[[[0, 127, 255]]]], np.uint8)
    lite = preprocessing.preprocess_images(pixels, 1, "lite").numpy().ravel()
    np.testing.assert_allclose(lite, [-127 / 128, 0.0, 128 / 128])
    caffe = preprocessing.preprocess_images(pixels, 1, "caffe").numpy().ravel()
    np.testing.assert_allclose(caffe, [255 - 103.939, 127 - 116.779, 0 - 123.68], rtol=1e-6)
    np.testing.assert_array_equal(preprocessing.preprocess_images(pixels, 1, "raw").numpy().ravel(), [0, 127, 255])
    with pytest.raises(ValueError, match="normalization='bgr'.*allowed: imagenet, lite, caffe, raw"):
        preprocessing.preprocess_images(pixels, 1, "bgr")


@pytest.mark.parametrize("bn_mode", ["train", "inference"])
def test_bn_mode_decides_whether_a_frozen_backbone_updates_its_statistics(bn_mode):
    model = model_lib.create_model("efficientnet_lite0", num_classes=2, image_size=IMAGE_SIZE, bn_mode=bn_mode,
                                   dropout=0.0)
    assert model.bn_mode == bn_mode
    bn = model.backbone.bn0  # The stem's: later ones follow a BatchNorm, so their batch means are ~0.
    moving_mean, gamma = bn.moving_mean.numpy().copy(), bn.gamma.numpy().copy()
    images = np.random.default_rng(1).normal(1.0, 1.0, size=(4, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)
    optimizer = keras.optimizers.SGD(0.1)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(np.array([0, 1, 0, 1]), model(images, training=True),
                                                                           from_logits=True))
    optimizer.apply_gradients(zip(tape.gradient(loss, model.head_variables), model.head_variables))
    np.testing.assert_array_equal(bn.gamma.numpy(), gamma)
    assert np.array_equal(bn.moving_mean.numpy(), moving_mean) == (bn_mode == "inference")


def test_defaults_and_errors_of_weights_and_bn_mode():
    assert model_lib.default_bn_mode(None) == model_lib.default_bn_mode("none") == "train"
    assert model_lib.default_bn_mode("imagenet") == model_lib.default_bn_mode("/a/b.weights.h5") == "inference"
    with pytest.raises(ValueError, match="bn_mode='eval'.*allowed: train, inference"):
        model_lib.create_model("efficientnet_lite0", num_classes=2, image_size=IMAGE_SIZE, bn_mode="eval")
    with pytest.raises(ValueError, match="no package ships ResNet18/34 weights"):
        model_lib.create_model("resnet18", num_classes=2, image_size=IMAGE_SIZE, weights="imagenet")
    with pytest.raises(ValueError, match="did you mean efficientnet_lite0"):
        model_lib.create_model("efficientnet_lite", num_classes=2, image_size=IMAGE_SIZE)


def test_drop_connect_follows_set_dropout_seed():
    model = model_lib.create_model("efficientnet_lite0", num_classes=2, image_size=IMAGE_SIZE, bn_mode="inference",
                                   dropout=0.0)
    images = np.random.default_rng(2).normal(size=(8, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)
    outputs = {}
    for seed in (1, 1, 2):
        model.set_dropout_seed(seed)
        outputs.setdefault(seed, []).append(model(images, training=True).numpy())
    np.testing.assert_array_equal(outputs[1][0], outputs[1][1])
    assert not np.allclose(outputs[1][0], outputs[2][0])


def test_export_applies_the_backbones_own_preprocessing():
    model = model_lib.create_model("efficientnet_lite0", num_classes=2, image_size=IMAGE_SIZE)
    images = np.random.default_rng(3).integers(0, 256, size=(2, 40, 40, 3), dtype=np.uint8)
    served = export.serving_function(model, IMAGE_SIZE)(tf.constant(images)).numpy()
    expected = tf.nn.softmax(model(preprocessing.preprocess_images(images, IMAGE_SIZE, "lite"))).numpy()
    np.testing.assert_allclose(served, expected, atol=1e-6)
    imagenet = tf.nn.softmax(model(preprocessing.preprocess_images(images, IMAGE_SIZE, "imagenet"))).numpy()
    assert not np.allclose(served, imagenet, atol=1e-4)


def test_keras_application_imagenet_offline_names_the_file_and_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    try:
        model = keras_apps.build_application("mobilenet_v3_small", "imagenet")
    except OSError as error:
        wanted = tmp_path / "keras_home" / "models" / "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"
        assert str(wanted) in str(error) and "https://" in str(error)
    else:  # Online: Keras downloaded the file into its cache.
        assert model.output_shape == (None, 576)


def test_exported_saved_model_serves_uint8_images_like_the_model(tmp_path):
    model = model_lib.create_model("efficientnet_lite0", num_classes=3, image_size=IMAGE_SIZE, seed=2)
    path = export.export_saved_model(model, tmp_path / "export", ["a", "b", "c"], IMAGE_SIZE)
    loaded = tf.saved_model.load(str(path))
    images = np.random.default_rng(4).integers(0, 256, size=(2, 50, 70, 3), dtype=np.uint8)
    expected = tf.nn.softmax(model(preprocessing.preprocess_images(images, IMAGE_SIZE, "lite"))).numpy()
    np.testing.assert_allclose(loaded.serving_default(tf.constant(images)).numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("name", ["efficientnet_lite0", "mobilenet_v3_small"])
def test_random_init_depends_on_the_seed_only(name):
    first, again, other = (model_lib.create_model(name, num_classes=2, image_size=IMAGE_SIZE, seed=seed)
                           for seed in (0, 0, 1))
    assert all(np.array_equal(a, b) for a, b in zip(first.get_weights(), again.get_weights()))
    kernels = [(a, b) for a, b in zip(first.backbone.get_weights(), other.backbone.get_weights()) if a.ndim == 4]
    assert kernels and not any(np.array_equal(a, b) for a, b in kernels)
