"""Cached pooled features of a frozen, inference-mode backbone (issue #12's fast path).

A frozen backbone whose BatchNorm runs on moving statistics maps each image to the
same features in every epoch and every study cell, so they are computed once and
stored as one `.npy` per image under `cache_dir/<key[:2]>/<key>.npy`. The key is a
sha256 over the cache version, the decoder, the backbone name, the identity of its
weights, the model input size, the preprocessing and the image's encoded bytes
(`encoded_feature_key`), so the real images that recur in every variant of a study
share their features, and a cached image is never decoded. Training uses it through
`augbal_tf.feature_cache` (`--feature_cache=auto`).
"""

import hashlib
import json
import pathlib

import numpy as np
import tensorflow as tf

from augbal_tf import fileio, preprocessing

_CHUNK = 1 << 20
# Version 2: training keys a stored image by its encoded bytes (`encoded_feature_key`), so a
# cached cell decodes no image; version-1 files (keyed by decoded pixels) are never read.
# Version 3: training computes the features in graph mode (`feature_cache.Extractor`), whose
# float rounding differs from the eager version 2 ones: the two are never mixed in one study.
CACHE_VERSION = 3
# What turns a stored image's bytes into pixels (`augbal_datasets.augbal.prepare.decode_image`):
# part of the encoded key, since another decoder could give other pixels from the same bytes.
DECODER = "prepare.decode_image:jpeg=INTEGER_ACCURATE"


def weights_identity(weights, seed: int) -> str:
    """What fixes a backbone's weights: "imagenet", "sha256:<file digest>" or the seed of a random init."""
    if weights is None:
        return f"random:seed={seed}"
    if weights == "imagenet":
        return "imagenet"
    digest = hashlib.sha256()
    with open(weights, "rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK), b""):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def model_weights_identity(model) -> str:
    """`weights_identity` of a classifier's backbone (its own seed where it has one, else the classifier's).

    A model may state it as `weights_id` (`augbal_tf.feature_cache.Extractor`, which builds
    no backbone for it).
    """
    if hasattr(model, "weights_id"):
        return model.weights_id
    return weights_identity(model.weights_source, model.backbone.seed if hasattr(model.backbone, "seed")
                            else model.seed)


def encoded_feature_key(backbone: str, weights_id: str, image_size: int, normalization: str,
                        encoded: bytes) -> str:
    """sha256 hex digest over (cache version, decoder, backbone, weights identity, size, preprocessing, image bytes).

    Keys a stored (PNG or JPEG) image without decoding it: the same bytes give the same pixels.
    """
    header = json.dumps({"version": CACHE_VERSION, "decoder": DECODER, "backbone": backbone, "weights": weights_id,
                         "image_size": image_size, "preprocessing": normalization}, sort_keys=True)
    digest = hashlib.sha256(header.encode())
    digest.update(b"\0")
    digest.update(encoded)
    return digest.hexdigest()


def _atomic_save(path: pathlib.Path, array: np.ndarray) -> None:
    with fileio.atomic_path(path) as temporary:  # Its name ends in .npy, so np.save adds none.
        np.save(temporary, array)


def cached_features(model, images: np.ndarray, image_size: int, cache_dir, batch_size: int = 32,
                    counts: dict | None = None) -> np.ndarray:
    """`encoded_features` of uint8 images held in memory: each is keyed by its PNG encoding.

    PNG is lossless, so the bytes decode to the same pixels under any decoder and the
    files share the encoded-byte keys of training (one key scheme per cache folder);
    an image stored by a dataset variant has other bytes (another PNG encoder, or a
    JPEG), so it gets its own file.

    Args:
      model: a `augbal_tf.model.BackboneClassifier` with bn_mode "inference" (or what it needs of one:
        `augbal_tf.feature_cache.Extractor`).
      images: uint8 [N, H, W, 3] RGB images.
      image_size: model input side length (the images are preprocessed as in training).
      cache_dir: folder of the feature cache (created if missing).
      batch_size, counts: as in `encoded_features`.

    Returns:
      float32 [N, features], row i for images[i].

    Raises:
      ValueError: if the model's backbone is not in inference mode or `images` is not uint8 [N, H, W, 3].
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 [N, H, W, 3], got {images.dtype} {images.shape}")
    _check_inference(model)
    encoded = [tf.io.encode_png(image).numpy() for image in images]
    return encoded_features(model, encoded, image_size, cache_dir,
                            lambda data: tf.io.decode_png(data, channels=3).numpy(), batch_size, counts)


def _check_inference(model) -> None:
    if getattr(model, "bn_mode", None) != "inference":
        raise ValueError(f"cached features need a backbone in bn_mode='inference' (its features do not change "
                         f"during training), got bn_mode={getattr(model, 'bn_mode', None)!r}")


def encoded_features(model, encoded, image_size: int, cache_dir, decode, batch_size: int = 32,
                     counts: dict | None = None) -> np.ndarray:
    """Pooled backbone features [N, features] of stored images given as their encoded bytes, through the cache.

    Keyed by `encoded_feature_key`. Only the images missing from the cache are decoded
    (`decode(bytes) -> uint8 [H, W, 3]`) and run through the backbone, so a split whose
    every feature is cached costs one hash and one file read per image.

    Args:
      model: a `augbal_tf.model.BackboneClassifier` with bn_mode "inference" (or what it needs of one:
        `augbal_tf.feature_cache.Extractor`).
      encoded: the images' encoded (PNG or JPEG) bytes.
      image_size: model input side length (the images are preprocessed as in training).
      cache_dir: folder of the feature cache (created if missing).
      decode: bytes -> uint8 [H, W, 3], the pixels training sees (`DECODER`'s).
      batch_size: images per backbone call for the missing ones.
      counts: optional dict whose "computed" and "read" entries grow by the number of distinct
        images computed (and stored) and the number of rows read from cache files.

    Returns:
      float32 [N, features], row i for encoded[i].

    Raises:
      ValueError: if the model's backbone is not in inference mode.
    """
    _check_inference(model)
    cache_dir = pathlib.Path(cache_dir)
    weights_id = model_weights_identity(model)
    keys = [encoded_feature_key(model.backbone_name, weights_id, image_size, model.preprocessing, bytes(value))
            for value in encoded]
    paths = [cache_dir / key[:2] / f"{key}.npy" for key in keys]
    found: dict[str, np.ndarray] = {}
    read = 0
    for key, path in zip(keys, paths):
        if key not in found and path.is_file():
            found[key] = np.load(path)
        read += key in found
    missing = {key: index for index, key in reversed(list(enumerate(keys))) if key not in found}
    by_shape: dict[tuple, list] = {}  # One backbone batch holds images of one size.
    for key, index in missing.items():
        image = np.asarray(decode(encoded[index]), np.uint8)
        by_shape.setdefault(image.shape, []).append((key, index, image))
    for group in by_shape.values():
        for start in range(0, len(group), batch_size):
            batch = group[start:start + batch_size]
            inputs = preprocessing.preprocess_images(tf.constant(np.stack([item[2] for item in batch])), image_size,
                                                     model.preprocessing)
            computed = np.asarray(model.features(inputs, training=False), np.float32)
            for (key, index, _), row in zip(batch, computed):
                _atomic_save(paths[index], row)
                found[key] = row
    if counts is not None:
        counts["computed"] = counts.get("computed", 0) + len(missing)
        counts["read"] = counts.get("read", 0) + read
    width = next(iter(found.values())).shape[0] if found else 0
    return np.stack([found[key] for key in keys]).astype(np.float32) if keys else np.zeros((0, width), np.float32)
