"""Exports a trained classifier as a SavedModel that serves raw uint8 images.

`model.export` would serve the float model input and return logits; the
exported endpoint here takes uint8 RGB images of any size, resizes and
normalises them with `augbal_tf.preprocessing.preprocess_images` (the exact
training preprocessing, with the backbone's own normalisation) and returns class
probabilities.

The SavedModel, loaded with `tf.saved_model.load(path)`, has:
  * `serving_default(images)`: uint8 [N, H, W, 3] -> float32 probabilities
    [N, num_classes] (one H, W per call); also the TF-Serving signature.
  * `class_names()`: string [num_classes], class names in label order.
  * `image_size()`: int32 scalar, the model input side length.
  * `train_counts()`: int64 [num_classes], the per-class counts of the split trained on
    (exported by runs that know them; `augbal_tf.evaluate` reads them for `shot_accuracy`).
  * `shot_counts()`: int64 [num_classes], the real (distinct, not copied or generated) training
    images per class, which define the many/medium/few-shot groups (runs that know them).
  * `tau_norm()`: {"applied": bool, "tau": float32}, the tau-normalisation (Kang et al. 2020)
    already applied to the exported output kernel (tau 0 and False when off).
  * `posthoc()`: {"tau": float32 scalar, "offsets": float32 [num_classes]}, the post-hoc
    logit adjustment added before the softmax (tau 0 and zeros when off).
"""

import os
import pathlib
import shutil
import uuid
from collections.abc import Sequence

import keras
import tensorflow as tf

from augbal_tf import preprocessing

SERVING_ENDPOINT = "serving_default"
CLASS_NAMES_ENDPOINT = "class_names"
IMAGE_SIZE_ENDPOINT = "image_size"
TRAIN_COUNTS_ENDPOINT = "train_counts"
POSTHOC_ENDPOINT = "posthoc"
SHOT_COUNTS_ENDPOINT = "shot_counts"
TAU_NORM_ENDPOINT = "tau_norm"
IMAGES_SPEC = tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")


def serving_function(model: keras.Model, image_size: int, normalization: str | None = None,
                     offsets=None) -> tf.types.experimental.GenericFunction:
    """Builds the serving computation: uint8 images -> class probabilities.

    Args:
      model: a Keras model mapping normalised float images
        [N, image_size, image_size, 3] to logits [N, num_classes].
      image_size: model input side length in pixels.
      normalization: the backbone's pixel normalisation (a name of
        `preprocessing.NORMALIZATIONS`); default: the model's own `preprocessing`
        attribute (set by `model.create_model`), else "imagenet".
      offsets: optional float [num_classes] added to the logits before the softmax
        (`remedies.posthoc_offsets`: post-hoc logit adjustment).

    Returns:
      A `tf.function` taking uint8 [N, H, W, 3] (any H, W; one size per call)
      and returning float32 softmax probabilities [N, num_classes].
    """
    normalization = normalization or getattr(model, "preprocessing", "imagenet")
    # Validate eagerly, not at first trace.
    preprocessing.preprocess_images(tf.zeros([1, 1, 1, 3], tf.uint8), image_size, normalization)

    @tf.function(input_signature=[IMAGES_SPEC])
    def serve(images):
        inputs = preprocessing.preprocess_images(images, image_size, normalization)
        # Under mixed precision the logits are float16; softmax in float32.
        logits = tf.cast(model(inputs, training=False), tf.float32)
        if offsets is not None:
            logits = logits + tf.constant(offsets, tf.float32)
        return tf.nn.softmax(logits, axis=-1)

    return serve


def export_saved_model(model: keras.Model, export_dir, class_names: Sequence[str],
                       image_size: int, train_counts=None, posthoc_tau: float = 0.0,
                       offsets=None, shot_counts=None, tau_norm: float | None = None) -> pathlib.Path:
    """Writes the serving SavedModel to `export_dir` atomically.

    The model is written to a temporary sibling folder and renamed into place,
    so `export_dir` is either absent or a complete SavedModel. An existing
    SavedModel at `export_dir` is replaced (the trainer decides whether a
    workdir may be rewritten); any other existing path is an error.

    Args:
      model: Keras model mapping normalised images to logits.
      export_dir: destination folder.
      class_names: class names in label order, one per model output.
      image_size: model input side length in pixels.
      train_counts: optional per-class training counts, served by `train_counts()`.
      posthoc_tau, offsets: the post-hoc adjustment (offsets added before the softmax),
        served by `posthoc()`; None offsets: no adjustment.
      shot_counts: optional real training images per class, served by `shot_counts()`.
      tau_norm: the tau of a tau-normalisation already applied to `model` (None: off), served
        by `tau_norm()`.

    Returns:
      The export folder as a `pathlib.Path`.

    Raises:
      ValueError: if `class_names` is empty, not unique, or does not match the
        model's number of outputs.
      FileExistsError: if `export_dir` exists and is not a SavedModel.
    """
    class_names = [str(name) for name in class_names]
    if not class_names or len(set(class_names)) != len(class_names):
        raise ValueError(f"class_names must be non-empty and unique, got {class_names!r}")
    serve = serving_function(model, image_size, offsets=offsets)
    num_outputs = serve.get_concrete_function().structured_outputs.shape[-1]
    if num_outputs != len(class_names):
        raise ValueError(f"class_names has {len(class_names)} names but the model has "
                         f"{num_outputs} outputs")
    export_dir = pathlib.Path(export_dir)
    if export_dir.exists() and not is_saved_model(export_dir):
        raise FileExistsError(f"export_dir {export_dir} exists and is not a SavedModel; "
                              "refusing to replace it")

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SERVING_ENDPOINT, serve)
    archive.add_endpoint(CLASS_NAMES_ENDPOINT, lambda: tf.constant(class_names, tf.string),
                         input_signature=[])
    archive.add_endpoint(IMAGE_SIZE_ENDPOINT, lambda: tf.constant(image_size, tf.int32),
                         input_signature=[])
    if train_counts is not None:
        counts = [int(count) for count in train_counts]
        archive.add_endpoint(TRAIN_COUNTS_ENDPOINT, lambda: tf.constant(counts, tf.int64), input_signature=[])
    if shot_counts is not None:
        shots = [int(count) for count in shot_counts]
        archive.add_endpoint(SHOT_COUNTS_ENDPOINT, lambda: tf.constant(shots, tf.int64), input_signature=[])
    archive.add_endpoint(TAU_NORM_ENDPOINT, lambda: {"applied": tf.constant(tau_norm is not None),
                                                     "tau": tf.constant(float(tau_norm or 0.0), tf.float32)},
                         input_signature=[])
    posthoc = [0.0] * len(class_names) if offsets is None else [float(value) for value in offsets]
    archive.add_endpoint(POSTHOC_ENDPOINT, lambda: {"tau": tf.constant(float(posthoc_tau), tf.float32),
                                                    "offsets": tf.constant(posthoc, tf.float32)},
                         input_signature=[])

    export_dir.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:8]
    temp_dir = export_dir.with_name(f".{export_dir.name}.tmp-{token}")
    old_dir = export_dir.with_name(f".{export_dir.name}.old-{token}")
    try:
        archive.write_out(str(temp_dir), verbose=False)
        if export_dir.exists():
            # Directories cannot be renamed over each other: move the old one aside first.
            os.rename(export_dir, old_dir)
        try:
            os.rename(temp_dir, export_dir)
        except OSError:
            if old_dir.exists():
                os.rename(old_dir, export_dir)
            raise
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
        shutil.rmtree(old_dir, ignore_errors=True)
    return export_dir


def is_saved_model(path) -> bool:
    """True if `path` is a folder holding a SavedModel."""
    path = pathlib.Path(path)
    return (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file()
