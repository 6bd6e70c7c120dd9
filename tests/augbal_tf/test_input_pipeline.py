"""Tests of augbal_tf.input_pipeline and augbal_tf.preprocessing on tiny in-memory PNG splits."""

import numpy as np
import pytest
import tensorflow as tf

from augbal_tf import input_pipeline
from augbal_tf import preprocessing


def _encoded_split(count: int, size: int = 12) -> tuple[tf.data.Dataset, np.ndarray]:
    """`count` distinct PNG images; image i is filled with value i, label i % 3."""
    images = np.stack([np.full((size, size, 3), index, np.uint8) for index in range(count)])
    labels = (np.arange(count) % 3).astype(np.int64)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).map(
        lambda image, label: (tf.io.encode_png(image), label))
    return dataset, labels


def _identities(dataset: tf.data.Dataset) -> list[int]:
    """Recovers each example's index from its normalised pixels."""
    std, mean = np.array(preprocessing.IMAGENET_STD), np.array(preprocessing.IMAGENET_MEAN)
    ids = []
    for images, _ in dataset:
        pixels = (images.numpy()[:, 0, 0, :] * std + mean) * 255.0
        ids.extend(np.rint(pixels[:, 0]).astype(int).tolist())
    return ids


def test_preprocess_images_resizes_and_normalises_like_numpy():
    images = np.random.default_rng(0).integers(0, 256, size=(2, 8, 8, 3), dtype=np.uint8)
    same_size = preprocessing.preprocess_images(images, 8).numpy()
    expected = (images / 255.0 - np.array(preprocessing.IMAGENET_MEAN)) / np.array(preprocessing.IMAGENET_STD)
    np.testing.assert_allclose(same_size, expected, atol=1e-5)
    resized = preprocessing.preprocess_images(images[0], 16)
    assert resized.shape == (16, 16, 3) and resized.dtype == tf.float32
    with pytest.raises(ValueError, match="image_size"):
        preprocessing.preprocess_images(images, 0)


def test_shuffle_order_is_a_function_of_seed_and_epoch_only():
    encoded, _ = _encoded_split(20)

    def order(seed, epoch, cache=True):
        pipeline = input_pipeline.SplitPipeline(encoded, 20, image_size=12, batch_size=6, cache=cache)
        return _identities(pipeline.epoch(seed, epoch))

    first = order(seed=3, epoch=1)
    assert sorted(first) == list(range(20))
    assert order(seed=3, epoch=1, cache=False) == first  # A fresh pipeline (as after a resume).
    assert order(seed=3, epoch=2) != first
    assert order(seed=4, epoch=1) != first


def test_ordered_batches_keep_the_split_order_and_sizes():
    encoded, labels = _encoded_split(10)
    pipeline = input_pipeline.SplitPipeline(encoded, 10, image_size=24, batch_size=4, cache=True)
    batches = list(pipeline.ordered())
    assert [int(images.shape[0]) for images, _ in batches] == [4, 4, 2]
    assert batches[0][0].shape[1:] == (24, 24, 3)
    assert _identities(pipeline.ordered()) == list(range(10))
    np.testing.assert_array_equal(np.concatenate([batch_labels for _, batch_labels in batches]), labels)


def test_last_batch_smaller_than_replica_count_is_dropped():
    encoded, _ = _encoded_split(9)
    pipeline = input_pipeline.SplitPipeline(encoded, 9, image_size=12, batch_size=4, cache=False, replicas=2)
    assert [int(images.shape[0]) for images, _ in pipeline.epoch(0, 0)] == [4, 4]


def test_balanced_class_weights_follow_the_inverse_frequency_rule():
    labels = np.array([0] * 6 + [1] * 2)
    np.testing.assert_allclose(input_pipeline.class_weights(labels, 2, "balanced"), [8 / 12, 8 / 4])
    assert input_pipeline.class_weights(labels, 2, "none") is None
    with pytest.raises(ValueError, match="class_weight"):
        input_pipeline.class_weights(labels, 3, "balanced")
    with pytest.raises(ValueError, match="class_weight='inverse'"):
        input_pipeline.class_weights(labels, 2, "inverse")


def test_epoch_seeds_differ_by_stream_and_epoch():
    seeds = {input_pipeline.epoch_seed(0, epoch, stream) for epoch in range(5) for stream in range(2)}
    assert len(seeds) == 10
    assert input_pipeline.epoch_seed(7, 2, 1) == input_pipeline.epoch_seed(7, 2, 1)


def test_training_decodes_jpeg_exactly_like_the_builder(intel_scene_mini):
    """Originals must reach the model with the pixels the builder augmented (OpenCV's accurate DCT)."""
    import cv2

    path = sorted((intel_scene_mini / "seg_train" / "seg_train" / "sea").glob("*.jpg"))[0]
    encoded = path.read_bytes()
    expected = cv2.cvtColor(cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    decoded, label = input_pipeline._decode(tf.constant(encoded), tf.constant(1, tf.int64))
    np.testing.assert_array_equal(decoded.numpy(), expected)
    # TensorFlow's default (fast) JPEG decoding does not match: the reason for the builder's decoder.
    assert not np.array_equal(tf.io.decode_jpeg(encoded, channels=3).numpy(), expected)
