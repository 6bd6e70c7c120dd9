"""Evaluates an exported SavedModel on a dataset split, or predicts image files.

    python -m augbal_tf.evaluate --saved_model=WORKDIR/export \\
        --flagfile=WORKDIR/flags.txt --split=test --output=test.json
    python -m augbal_tf.evaluate --saved_model=WORKDIR/export \\
        --images=FOLDER --output=predictions.json

The SavedModel is loaded with `tf.saved_model.load` (no model code needed).
With the run's own flags (same dataset variant, same `--batch_size`) the
numbers equal the `test` object of the run's `metrics.json`, which training
computes with the same `predict_split` and `augbal_tf.metrics`.
"""

import os
import sys
from collections.abc import Sequence

from absl import app, flags, logging

from augbal_datasets.augbal import prepare
from augbal_tf import config as config_lib
from augbal_tf import evaluation
from augbal_tf import flags as augbal_flags  # noqa: F401  (defines the flags)

FLAGS = flags.FLAGS


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    for name in ("saved_model", "output"):
        if not FLAGS[name].value:
            raise app.UsageError(f"--{name} is required")
    try:
        _evaluate_from_flags()
    except (FileNotFoundError, ValueError) as error:
        # Bad input (paths, flags, files): one clear line instead of a traceback.
        sys.exit(f"augbal_tf.evaluate: error: {error}")


def _evaluate_from_flags() -> None:
    classifier = evaluation.load_saved_model(FLAGS.saved_model)
    logging.info("Loaded %s: classes %s, input %dpx", classifier.path,
                 list(classifier.class_names), classifier.image_size)
    if FLAGS["image_size"].present and FLAGS.image_size != classifier.image_size:
        logging.warning("--image_size=%d ignored: the SavedModel resizes to %dpx itself",
                        FLAGS.image_size, classifier.image_size)
    if FLAGS.images:
        result = evaluation.predict_images(classifier, FLAGS.images, FLAGS.batch_size)
        summary = f"{len(result['predictions'])} images predicted"
    else:
        # Only the dataset flags matter here: --selection and the other training flags are
        # choices of a training run, not of evaluating its model.
        manual_dir = os.path.expanduser(FLAGS.manual_dir) if FLAGS.manual_dir else None
        builder = prepare.prepare_variant(config_lib.variant_from_flags(FLAGS),
                                          data_dir=config_lib.data_dir_from_flags(FLAGS), manual_dir=manual_dir)
        result = evaluation.evaluate_split(classifier, builder, FLAGS.split, FLAGS.batch_size)
        summary = (f"{builder.info.config_name} {FLAGS.split}: accuracy {result['accuracy']:.4f}, balanced accuracy "
                   f"{result['balanced_accuracy']:.4f} on {result['num_examples']} images")
    evaluation.write_json(FLAGS.output, result)
    logging.info("%s; wrote %s", summary, FLAGS.output)
    print(f"{summary}; wrote {FLAGS.output}")


def run() -> None:
    """Console-script entry point (`augbal-evaluate`)."""
    app.run(main)


if __name__ == "__main__":
    run()
