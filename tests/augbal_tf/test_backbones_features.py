"""The cached-feature helper: cached == recomputed, one key scheme (encoded bytes), and refusals."""

import numpy as np
import pytest
import tensorflow as tf

from augbal_tf import model as model_lib
from augbal_tf import preprocessing
from augbal_tf.backbones import features as features_lib

IMAGE_SIZE = 32


@pytest.fixture(scope="module")
def frozen():
    return model_lib.create_model("efficientnet_lite0", num_classes=2, image_size=IMAGE_SIZE, bn_mode="inference",
                                  seed=1)


def test_cached_features_equal_recomputed_ones_and_are_reused(frozen, tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 40, 40, 3), dtype=np.uint8)
    first = features_lib.cached_features(frozen, images, IMAGE_SIZE, tmp_path, batch_size=2)
    inputs = preprocessing.preprocess_images(images, IMAGE_SIZE, "lite")
    recomputed = frozen.features(inputs, training=False).numpy()
    assert first.shape == (5, 1280) and first.dtype == np.float32
    np.testing.assert_allclose(first, recomputed, rtol=1e-5, atol=1e-6)  # Batches of 2 vs 5.
    files = sorted(tmp_path.rglob("*.npy"))
    assert len(files) == 5 and not list(tmp_path.rglob(".*"))
    stamps = [path.stat().st_mtime_ns for path in files]
    # A repeated image and a new one: four hits and one computation, in the caller's order.
    more = np.concatenate([images[3:4], rng.integers(0, 256, size=(1, 40, 40, 3), dtype=np.uint8), images[:3]])
    second = features_lib.cached_features(frozen, more, IMAGE_SIZE, tmp_path)
    np.testing.assert_array_equal(second[[0, 2, 3, 4]], first[[3, 0, 1, 2]])
    np.testing.assert_allclose(second[1], frozen.features(preprocessing.preprocess_images(
        more[1:2], IMAGE_SIZE, "lite"), training=False).numpy()[0], rtol=1e-5, atol=1e-6)
    assert len(list(tmp_path.rglob("*.npy"))) == 6
    assert [path.stat().st_mtime_ns for path in files] == stamps
    # One key scheme per folder: the pixel path's files are those of the encoded path for its PNG bytes.
    counts = {}
    again = features_lib.encoded_features(frozen, [_png(image) for image in images], IMAGE_SIZE, tmp_path,
                                          lambda data: pytest.fail("a cached image was decoded"), counts=counts)
    np.testing.assert_array_equal(again, first)
    assert counts == {"computed": 0, "read": 5}


def test_weights_identity_hashes_a_local_file(tmp_path):
    path = tmp_path / "w.weights.h5"
    path.write_bytes(b"abc")
    assert features_lib.weights_identity(str(path), 0) == \
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # sha256("abc")
    assert features_lib.weights_identity(None, 3) != features_lib.weights_identity(None, 4)


def test_refuses_a_backbone_whose_statistics_move(tmp_path):
    model = model_lib.create_model("efficientnet_lite0", num_classes=2, image_size=IMAGE_SIZE)
    with pytest.raises(ValueError, match="bn_mode='inference'.*got bn_mode='train'"):
        features_lib.cached_features(model, np.zeros((1, 8, 8, 3), np.uint8), IMAGE_SIZE, tmp_path)


def _png(image: np.ndarray) -> bytes:
    return tf.io.encode_png(image).numpy()


def test_encoded_features_decode_only_missing_images_and_equal_recomputed_ones(frozen, tmp_path):
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, size=(3, 40, 40, 3), dtype=np.uint8)
    encoded = [_png(image) for image in images]
    decoded = []

    def decode(data):
        decoded.append(data)
        return tf.io.decode_png(data, channels=3).numpy()

    counts = {}
    first = features_lib.encoded_features(frozen, encoded + encoded[:1], IMAGE_SIZE, tmp_path, decode, counts=counts)
    recomputed = frozen.features(preprocessing.preprocess_images(images, IMAGE_SIZE, "lite"), training=False).numpy()
    np.testing.assert_allclose(first[:3], recomputed, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(first[3], first[0])
    assert counts == {"computed": 3, "read": 0} and len(decoded) == 3
    decoded.clear()
    again = features_lib.encoded_features(frozen, encoded, IMAGE_SIZE, tmp_path, decode, counts=counts)
    np.testing.assert_array_equal(again, first[:3])
    assert not decoded and counts == {"computed": 3, "read": 3}  # Every feature read, no image decoded.


def test_encoded_key_changes_with_a_byte_and_the_cache_version(monkeypatch):
    data = bytearray(_png(np.zeros((4, 4, 3), np.uint8)))
    base = ("efficientnet_lite0", "imagenet", 224, "lite")
    key = features_lib.encoded_feature_key(*base, bytes(data))
    changed = bytearray(data)
    changed[-20] ^= 1
    assert features_lib.encoded_feature_key(*base, bytes(changed)) != key
    for index, value in enumerate(("resnet50", "random:seed=0", 160, "imagenet")):
        arguments = list(base)
        arguments[index] = value
        assert features_lib.encoded_feature_key(*arguments, bytes(data)) != key, value
    # Files of another cache version (version 1 keyed decoded pixels) sit under other keys: never read.
    monkeypatch.setattr(features_lib, "CACHE_VERSION", features_lib.CACHE_VERSION - 1)
    assert features_lib.encoded_feature_key(*base, bytes(data)) != key
