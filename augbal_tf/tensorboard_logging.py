"""TensorBoard summaries of a run: per-epoch scalars, a grid of training images, the confusion matrix."""

import io
import os
import pathlib

import numpy as np
import tensorflow as tf

from augbal_tf import preprocessing


class Writers:
    """One summary writer per split under `<workdir>/tensorboard/<split>` (created lazily)."""

    def __init__(self, log_dir: str | os.PathLike):
        self._log_dir = pathlib.Path(log_dir)
        self._writers = {}

    def __call__(self, split: str) -> tf.summary.SummaryWriter:
        if split not in self._writers:
            self._writers[split] = tf.summary.create_file_writer(str(self._log_dir / split))
        return self._writers[split]

    def scalars(self, split: str, values: dict, step: int) -> None:
        with self(split).as_default():
            for name, value in values.items():
                tf.summary.scalar(name, value, step=step)
        self(split).flush()

    def image(self, split: str, name: str, png: bytes, step: int) -> None:
        with self(split).as_default():
            tf.summary.image(name, tf.image.decode_png(png, channels=4)[tf.newaxis], step=step)
        self(split).flush()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


def _figure_png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    return buffer.getvalue()


def image_grid_png(images: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...]) -> bytes:
    """A PNG grid of normalised model inputs (denormalised for display) titled with their labels."""
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use("Agg")
    from matplotlib import figure as figure_lib  # pylint: disable=g-import-not-at-top
    pixels = np.clip(images * np.array(preprocessing.IMAGENET_STD) + np.array(preprocessing.IMAGENET_MEAN), 0, 1)
    columns = int(np.ceil(np.sqrt(len(pixels))))
    rows = int(np.ceil(len(pixels) / columns))
    figure = figure_lib.Figure(figsize=(2 * columns, 2.2 * rows))
    for index, (image, label) in enumerate(zip(pixels, labels)):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.imshow(image)
        axes.set_title(class_names[int(label)], fontsize=9)
        axes.axis("off")
    return _figure_png(figure)


def confusion_matrix_png(matrix, class_names: tuple[str, ...], title: str) -> bytes:
    """A PNG heatmap of a confusion matrix (rows: true class, columns: predicted class)."""
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use("Agg")
    from matplotlib import figure as figure_lib  # pylint: disable=g-import-not-at-top
    matrix = np.asarray(matrix)
    size = 1.2 + 0.8 * len(class_names)
    figure = figure_lib.Figure(figsize=(size + 1, size))
    axes = figure.add_subplot()
    shown = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(shown, ax=axes)
    ticks = np.arange(len(class_names))
    axes.set_xticks(ticks, class_names, rotation=45, ha="right")
    axes.set_yticks(ticks, class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for row in range(matrix.shape[0]):
        for column in range(matrix.shape[1]):
            axes.text(column, row, str(matrix[row, column]), ha="center", va="center",
                      color="white" if matrix[row, column] > threshold else "black")
    return _figure_png(figure)
