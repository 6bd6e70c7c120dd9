"""Test helper: trains every remedy of #13 in one process on one strategy, and evaluates each export.

    python tests/augbal_tf/remedy_matrix.py --distribution_strategy=mirrored --cpu_devices=2 --data_dir=D --root=R

One process for all runs (TensorFlow starts once; the study trains its cells the same way).
Each run has 2 epochs so that the deferred remedies switch; with --interrupt, every run is
first stopped after epoch 1 by an exception in the epoch hook, then resumed in the process.
Writes R/matrix.json, {name: {"metrics": metrics.json, "evaluate": the export's test metrics, "resumed": bool}}.
"""

import json
import pathlib

from absl import app, flags

from augbal_tf import config as config_lib
from augbal_tf import evaluation
from augbal_tf import flags as flags_lib  # noqa: F401  (defines the training flags)
from augbal_tf import input_pipeline
from augbal_tf import train

# Every remedy at least once, combined where the flags allow (one --loss per run). `combined` holds
# every stateful or pipeline remedy (mixing seeds, deferred re-sampling, cRT's stage and
# optimizer, tau-normalisation of the served weights); the loss formulas are strategy-independent
# (test_losses checks each under MirroredStrategy), so the other runs vary the loss.
MATRIX = {
    "combined": {"loss": "focal", "focal_gamma": 1.0, "mix": "mixup", "drs_epoch": 1, "sampler": "class_balanced",
                 "posthoc_tau": 1.0, "crt_epochs": 2, "tau_norm": True},
    # Random oversampling: the shot groups count the 4 real minority images, not the 16 copies.
    "class_balanced_square_root": {"loss": "class_balanced", "cb_beta": 0.99, "cb_gamma": 1.0,
                                   "sampler": "square_root", "tau_norm": True, "tau_norm_tau": 0.5,
                                   "strategy": "oversample_random"},
    "balanced_softmax_drw_remix": {"loss": "balanced_softmax", "drw_epoch": 1, "cb_beta": 0.99, "mix": "remix"},
    # LDAM's cosine head through export and evaluate (logit_adjusted: test_remedies_training's posthoc_run).
    "ldam_drw": {"loss": "ldam", "drw_epoch": 1, "cb_beta": 0.99},
}
VARIANT = {"source": "sample", "classes": ("tshirt_top", "pullover"), "train_per_class": 16, "imbalance_ratio": 4,
           "test_per_class": 8, "validation_per_class": 4, "image_size": 32, "batch_size": 8, "patience": 0,
           "log_images": 0, "head_width": 16, "epochs": 2}

# --data_dir, --distribution_strategy and --cpu_devices are the training flags.
flags.DEFINE_string("root", None, "Folder of the runs' workdirs.")
flags.DEFINE_list("only", [], "Names of MATRIX to run (default: all).")
flags.DEFINE_bool("interrupt", False, "Stop every run after epoch 1 and resume it in the process.")


class Stop(Exception):
    pass


def main(argv) -> None:
    del argv
    out = {}
    for name, fields in MATRIX.items():
        if flags.FLAGS.only and name not in flags.FLAGS.only:
            continue
        config = config_lib.make(data_dir=flags.FLAGS.data_dir, distribution_strategy=flags.FLAGS.distribution_strategy,
                                 cpu_devices=flags.FLAGS.cpu_devices, **VARIANT, **fields)
        workdir = pathlib.Path(flags.FLAGS.root, name)
        resumed = False
        if flags.FLAGS.interrupt:
            def stop(state):
                if state.epochs_done == 1:
                    raise Stop()
            try:
                train.train_and_evaluate(config, str(workdir), after_epoch=stop)
            except Stop:
                resumed = True
        metrics = train.train_and_evaluate(config, str(workdir))
        classifier = evaluation.load_saved_model(workdir / "export")
        evaluated = evaluation.evaluate_split(classifier, input_pipeline.load_variant(config).builder, "test", 8)
        out[name] = {"metrics": metrics, "evaluate": evaluated, "resumed": resumed}
    pathlib.Path(flags.FLAGS.root, "matrix.json").write_text(json.dumps(out))


if __name__ == "__main__":
    app.run(main)
