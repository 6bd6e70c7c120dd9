"""Evaluation as a library: load a SavedModel, predict a split or image files, compute metrics.

Training (`augbal_tf.train`), the study and the `augbal_tf.evaluate` command all
call these functions, so their numbers agree exactly.
"""

import dataclasses
import json
import pathlib
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import tensorflow as tf

from augbal_datasets.augbal import prepare
from augbal_tf import export
from augbal_tf import fileio
from augbal_tf import metrics

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")

PredictFn = Callable[[np.ndarray], object]


@dataclasses.dataclass(frozen=True)
class Classifier:
    """A loaded SavedModel: `predict_fn(uint8 [N, H, W, 3]) -> probabilities`."""

    predict_fn: PredictFn
    class_names: tuple[str, ...]
    image_size: int
    path: pathlib.Path
    # The loaded object owns the variables; the functions fail once it is garbage collected.
    saved_model: object
    # Per-class counts of the split trained on (None for models exported without them).
    train_counts: tuple[int, ...] | None = None
    # Real training images per class (the shot groups); None for models exported without them.
    shot_counts: tuple[int, ...] | None = None


def load_saved_model(path) -> Classifier:
    """Loads a SavedModel written by `augbal_tf.export.export_saved_model`.

    Raises:
      FileNotFoundError: if `path` does not exist.
      ValueError: if `path` is not a SavedModel, or one without the
        `serving_default` and `class_names` endpoints of `augbal_tf.export`.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"saved model folder {path} does not exist")
    if not export.is_saved_model(path):
        raise ValueError(f"{path} is not a SavedModel folder (no saved_model.pb inside)")
    loaded = tf.saved_model.load(str(path))
    missing = [name for name in (export.SERVING_ENDPOINT, export.CLASS_NAMES_ENDPOINT,
                                 export.IMAGE_SIZE_ENDPOINT) if not hasattr(loaded, name)]
    if missing:
        raise ValueError(f"SavedModel {path} lacks the endpoint(s) {missing}; export it with "
                         "augbal_tf.export.export_saved_model")
    class_names = tuple(name.decode("utf-8") for name in loaded.class_names().numpy())
    image_size = int(loaded.image_size().numpy())
    train_counts = None
    if hasattr(loaded, export.TRAIN_COUNTS_ENDPOINT):
        train_counts = tuple(int(count) for count in getattr(loaded, export.TRAIN_COUNTS_ENDPOINT)().numpy())
    shot_counts = None
    if hasattr(loaded, export.SHOT_COUNTS_ENDPOINT):
        shot_counts = tuple(int(count) for count in getattr(loaded, export.SHOT_COUNTS_ENDPOINT)().numpy())
    return Classifier(predict_fn=getattr(loaded, export.SERVING_ENDPOINT),
                      class_names=class_names, image_size=image_size, path=path,
                      saved_model=loaded, train_counts=train_counts, shot_counts=shot_counts)


def predict_split(predict_fn: PredictFn, dataset: tf.data.Dataset,
                  batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Predicts every example of a split of raw images, in dataset order.

    Consecutive examples of the same image size are batched together (up to
    `batch_size`), so splits holding images of mixed sizes work; the batching
    depends only on the dataset order, so results are reproducible.

    Args:
      predict_fn: maps uint8 [N, H, W, 3] to probabilities [N, num_classes]
        (e.g. `export.serving_function(...)` or a loaded `serving_default`).
      dataset: yields dicts with `image` (uint8 HxWx3) and `label` (int).
      batch_size: largest number of images per `predict_fn` call.

    Returns:
      (y_true int64 [N], probabilities float32 [N, num_classes]).

    Raises:
      ValueError: if `batch_size` is not positive, an image is not uint8
        HxWx3, or the dataset is empty.
    """
    _check_batch_size(batch_size)
    pairs = dataset.map(lambda example: (example["image"], example["label"]))
    labels, probabilities = [], []
    for images, batch_labels in _batches_by_shape(pairs.as_numpy_iterator(), batch_size):
        probabilities.append(_predict(predict_fn, images))
        labels.extend(batch_labels)
    if not labels:
        raise ValueError("the dataset yielded no examples to evaluate")
    return np.asarray(labels, dtype=np.int64), np.concatenate(probabilities)


def evaluate_dataset(predict_fn: PredictFn, dataset: tf.data.Dataset,
                     class_names: Sequence[str], batch_size: int, train_counts=None) -> dict:
    """Predicts a split and returns its `augbal_tf.metrics` object (`shot_accuracy` with `train_counts`)."""
    y_true, probabilities = predict_split(predict_fn, dataset, batch_size)
    if probabilities.shape[1] != len(class_names):
        raise ValueError(f"the model predicts {probabilities.shape[1]} classes but the dataset "
                         f"has {len(class_names)}: {list(class_names)}")
    y_pred = probabilities.argmax(axis=1)
    return metrics.classification_metrics(y_true, y_pred, class_names, probabilities, train_counts=train_counts)


def evaluate_split(classifier: Classifier, builder, split: str, batch_size: int) -> dict:
    """Evaluates a loaded SavedModel on one split of a prepared tfds builder.

    Raises:
      ValueError: if the split is absent, or the builder's class names (in
        label order) differ from those stored in the SavedModel.
    """
    available = sorted(builder.info.splits.keys())
    if split not in available:
        raise ValueError(f"split {split!r} is not in dataset variant {builder.info.config_name!r}; "
                         f"available splits: {available}")
    dataset_classes = tuple(builder.info.features["label"].names)
    if dataset_classes != classifier.class_names:
        raise ValueError(f"the dataset's classes {list(dataset_classes)} differ from the "
                         f"SavedModel's {list(classifier.class_names)} (order matters): "
                         "pass the dataset flags the model was trained with")
    # Exactly the metrics object (nothing added), so it compares equal to metrics.json's.
    return evaluate_dataset(classifier.predict_fn, prepare.as_decoded_dataset(builder, split),
                            classifier.class_names, batch_size,
                            classifier.train_counts if classifier.shot_counts is None else classifier.shot_counts)


def find_images(folder) -> list[pathlib.Path]:
    """Image files under `folder` (recursive), sorted.

    Raises:
      FileNotFoundError: if `folder` is not a directory.
      ValueError: if it holds no file with an image extension.
    """
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist or is not a directory")
    paths = sorted(path for path in folder.rglob("*")
                   if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise ValueError(f"image folder {folder} holds no image files "
                         f"(looked for {', '.join(IMAGE_EXTENSIONS)})")
    return paths


def read_image(path) -> np.ndarray:
    """Decodes an image file to uint8 RGB HxWx3 (first frame of a GIF).

    Raises:
      ValueError: naming the file, if it cannot be read or decoded.
    """
    try:
        data = tf.io.read_file(str(path))
        image = prepare.decode_image(data)  # the same decoding as training
    except (tf.errors.OpError, OSError) as error:
        message = getattr(error, "message", str(error))
        raise ValueError(f"cannot read image file {path}: {message}") from None
    return image.numpy()


def predict_images(classifier: Classifier, folder, batch_size: int) -> dict:
    """Predicts every image file under `folder`.

    Returns:
      {"saved_model", "images", "class_names", "predictions": [{"path",
      "class", "probabilities": {class name: probability}}]}, files sorted.
    """
    _check_batch_size(batch_size)
    paths = find_images(folder)
    images = ((read_image(path), str(path)) for path in paths)
    predictions = []
    for batch, batch_paths in _batches_by_shape(images, batch_size):
        for path, row in zip(batch_paths, _predict(classifier.predict_fn, batch)):
            predictions.append({
                "path": path,
                "class": classifier.class_names[int(row.argmax())],
                "probabilities": {name: float(p) for name, p in zip(classifier.class_names, row)},
            })
    return {"saved_model": str(classifier.path), "images": str(folder),
            "class_names": list(classifier.class_names), "predictions": predictions}


def write_json(path, content: dict) -> None:
    """Writes `content` as JSON atomically."""
    fileio.write_atomic(path, json.dumps(content, indent=2) + "\n")


def _batches_by_shape(items: Iterable[tuple[np.ndarray, object]],
                      batch_size: int) -> Iterator[tuple[np.ndarray, list]]:
    """Groups consecutive (image, tag) pairs of one image shape into batches."""
    images, tags = [], []
    for image, tag in items:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"images must be uint8 HxWx3, got {image.dtype} {image.shape}")
        if images and (image.shape != images[0].shape or len(images) == batch_size):
            yield np.stack(images), tags
            images, tags = [], []
        images.append(image)
        tags.append(tag)
    if images:
        yield np.stack(images), tags


def _predict(predict_fn: PredictFn, images: np.ndarray) -> np.ndarray:
    outputs = predict_fn(tf.constant(images))
    if isinstance(outputs, dict):  # a signature returns {"output_0": ...}
        (outputs,) = outputs.values()
    return np.asarray(outputs, dtype=np.float32)


def _check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
