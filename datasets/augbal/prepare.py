"""Preparing a variant from Python (what training calls): `prepare_variant(config, data_dir)`."""

import os
from collections.abc import Mapping
from typing import Any

import tensorflow_datasets as tfds

from augbal_datasets.augbal import config as config_lib


def prepare_variant(config: config_lib.VariantConfig | Mapping[str, Any], data_dir: str | os.PathLike,
                    manual_dir: str | os.PathLike | None = None, *,
                    num_workers: int | None = None) -> tfds.core.DatasetBuilder:
    """Builds the variant unless already prepared, and returns its builder.

    Args:
      config: the variant, or its JSON fields (see README.md; missing ones take their defaults).
      data_dir: tfds data directory; the variant lands in `data_dir/augbal/<name>/<version>`.
      manual_dir: source folder, needed when `source` is 'manual'.
      num_workers: worker processes for generation (None: automatic, 1: in-process).

    Returns:
      The prepared `tfds.core.DatasetBuilder` (call `as_dataset(split=...)`).

    Raises:
      ValueError: bad config field or source (see the builder's errors).
    """
    # Imported here: importing the builder module registers the `augbal` dataset,
    # which modules that only need `config_name` should not pay for.
    from augbal_datasets.augbal import augbal_dataset_builder  # pylint: disable=import-outside-toplevel
    variant = config if isinstance(config, config_lib.VariantConfig) else config_lib.VariantConfig.from_dict(config)
    builder_config = augbal_dataset_builder.AugbalConfig(variant=variant)
    builder = augbal_dataset_builder.Builder(config=builder_config, data_dir=os.fspath(data_dir),
                                             num_workers=num_workers)
    download_config = tfds.download.DownloadConfig(
        manual_dir=os.fspath(manual_dir) if manual_dir is not None else None)
    try:
        builder.download_and_prepare(download_config=download_config)
    except OSError:
        # Another process may have finished the same variant first (its rename won):
        # then reuse it; otherwise the error stands.
        fresh = augbal_dataset_builder.Builder(config=builder_config, data_dir=os.fspath(data_dir))
        if not fresh.is_prepared():
            raise
        return fresh
    return builder


def decode_image(encoded):
    """Decodes a stored `image` exactly as the builder saw it (use with `SkipDecoding`).

    tfds decodes JPEG with TensorFlow's default INTEGER_FAST DCT, which differs from
    OpenCV's accurate DCT by up to ~12 levels; the builder augmented the accurately
    decoded pixels. This decoder uses the accurate DCT for JPEG (PNG is lossless), so
    originals and their augmented copies agree pixel for pixel:
    `builder.as_dataset(split, decoders={"image": tfds.decode.SkipDecoding()})` then
    `.map(lambda ex: {**ex, "image": decode_image(ex["image"])})`.

    Args:
      encoded: a scalar string tensor (JPEG or PNG bytes).

    Returns:
      An HxWx3 uint8 tensor.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    image = tf.cond(
        tf.io.is_jpeg(encoded),
        lambda: tf.io.decode_jpeg(encoded, channels=3, dct_method="INTEGER_ACCURATE"),
        # PNG as stored by the builder; BMP and GIF for user image folders.
        lambda: tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False))
    image.set_shape([None, None, 3])
    return image


def as_decoded_dataset(builder: tfds.core.DatasetBuilder, split: str):
    """`split` of a prepared variant in its fixed order, images decoded by `decode_image`.

    Use this rather than `builder.as_dataset(split)`, whose fast JPEG decoding
    differs from the pixels the builder augmented.
    """
    dataset = builder.as_dataset(split=split, shuffle_files=False,
                                 decoders={"image": tfds.decode.SkipDecoding()})
    return dataset.map(lambda example: {**example, "image": decode_image(example["image"])})
