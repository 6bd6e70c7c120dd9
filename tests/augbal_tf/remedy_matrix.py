"""Test helper: trains every remedy of #13 in one process on one strategy, resumes each, evaluates each export.

    python tests/augbal_tf/remedy_matrix.py --distribution_strategy=mirrored --cpu_devices=2 --data_dir=D --root=R

One process for all runs (TensorFlow starts once; the study trains its cells the same way).
Each run has 2 epochs so that the deferred remedies switch. After the epochs of RESUME_AFTER
the epoch hook copies the workdir as a SIGKILL there would leave it (snapshot, best weights,
run.json; the hook fires after the snapshot is written), and each copy is resumed in this
process once the uninterrupted run has finished: resumed == uninterrupted without training
the epochs before the copy twice.
Writes R/matrix.json, {name: {"metrics": metrics.json, "evaluate": the export's test metrics,
"weights": digest of best.weights.h5, "resumed": {epoch: {"metrics", "weights", "trained": epochs}}}}.
"""

import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys

from absl import app, flags
import h5py
import numpy as np

from augbal_tf import config as config_lib
from augbal_tf import evaluation
from augbal_tf import flags as flags_lib  # noqa: F401  (defines the training flags)
from augbal_tf import input_pipeline
from augbal_tf import locks
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
    # LDAM's cosine head through export and evaluate.
    "ldam_drw": {"loss": "ldam", "drw_epoch": 1, "cb_beta": 0.99},
    # The served post-hoc offsets on top of the adjusted loss (test_remedies_training reads this run).
    "logit_adjusted_posthoc": {"loss": "logit_adjusted", "posthoc_tau": 1.0},
}
VARIANT = {"source": "sample", "classes": ("tshirt_top", "pullover"), "train_per_class": 16, "imbalance_ratio": 4,
           "test_per_class": 8, "validation_per_class": 4, "image_size": 32, "batch_size": 8, "patience": 0,
           "log_images": 0, "head_width": 16, "epochs": 2}
# Epochs after which a run is copied and resumed: 1 is the last plain epoch before DRW and DRS
# switch; combined's 3 is its first cRT epoch (past the switch to the cRT stage's snapshot).
RESUME_AFTER = {"combined": (1, 3)}
DEFAULT_RESUME_AFTER = (1,)

# --data_dir, --distribution_strategy and --cpu_devices are the training flags.
flags.DEFINE_string("root", None, "Folder of the runs' workdirs.")
flags.DEFINE_list("only", [], "Names of MATRIX to run (default: all).")


def config_of(name: str, data_dir: str, distribution_strategy: str = "auto",
              cpu_devices: int = 0) -> config_lib.TrainConfig:
    """The TrainConfig of MATRIX entry `name` (tests rebuild it to read the run's dataset variant)."""
    return config_lib.make(data_dir=data_dir, distribution_strategy=distribution_strategy, cpu_devices=cpu_devices,
                           **VARIANT, **MATRIX[name])


def weights_digest(path: pathlib.Path) -> str:
    """sha256 over every array of a .weights.h5 file, by name (the file's bytes hold more than the values)."""
    digest = hashlib.sha256()
    with h5py.File(path, "r") as weights:
        names = []
        weights.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
        for name in sorted(names):
            digest.update(name.encode() + np.ascontiguousarray(weights[name][()]).tobytes())
    return digest.hexdigest()


def start(data_dir, root, strategy: str, cpu_devices: int = 0, only=()) -> subprocess.Popen:
    """Starts this script in a subprocess on `strategy` (its output in root/matrix.log); `finish` waits."""
    root = pathlib.Path(root)
    root.mkdir(parents=True, exist_ok=True)
    # A file, not a pipe: the tests run several matrices at once and wait for one at a time.
    with open(root / "matrix.log", "w", encoding="utf-8") as log:
        return subprocess.Popen([sys.executable, __file__, f"--data_dir={data_dir}", f"--root={root}",
                                 f"--distribution_strategy={strategy}", f"--cpu_devices={cpu_devices}",
                                 *([f"--only={','.join(only)}"] if only else [])],
                                stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def finish(process: subprocess.Popen, root, timeout_s: float) -> dict:
    """Waits for a `start`ed matrix and returns its matrix.json."""
    try:
        returncode = process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
    log = (pathlib.Path(root) / "matrix.log").read_text(encoding="utf-8")
    assert returncode == 0, log[-3000:]
    return json.loads((pathlib.Path(root) / "matrix.json").read_text())


def main(argv) -> None:
    del argv
    out = {}
    root = pathlib.Path(flags.FLAGS.root)
    for name in MATRIX:
        if flags.FLAGS.only and name not in flags.FLAGS.only:
            continue
        config = config_of(name, flags.FLAGS.data_dir, flags.FLAGS.distribution_strategy, flags.FLAGS.cpu_devices)
        workdir = root / name
        resume_after = RESUME_AFTER.get(name, DEFAULT_RESUME_AFTER)

        def copy(state, name=name, workdir=workdir, resume_after=resume_after):
            if state.epochs_done in resume_after:
                shutil.copytree(workdir, root / f"{name}.after_{state.epochs_done}",
                                ignore=lambda _, names: [n for n in names if locks.is_lock_file(pathlib.Path(n))])

        metrics = train.train_and_evaluate(config, str(workdir), after_epoch=copy)
        classifier = evaluation.load_saved_model(workdir / "export")
        evaluated = evaluation.evaluate_split(classifier, input_pipeline.load_variant(config).builder, "test", 8)
        resumed = {}
        for epoch in resume_after:
            copied = root / f"{name}.after_{epoch}"
            trained = []  # The epochs the resumed call trains: none before the copy's.
            resumed_metrics = train.train_and_evaluate(config, str(copied),
                                                       after_epoch=lambda state: trained.append(state.epochs_done))
            resumed[epoch] = {"metrics": resumed_metrics, "weights": weights_digest(copied / "best.weights.h5"),
                              "trained": trained}
        out[name] = {"metrics": metrics, "evaluate": evaluated, "weights": weights_digest(workdir / "best.weights.h5"),
                     "resumed": resumed}
    (root / "matrix.json").write_text(json.dumps(out))


if __name__ == "__main__":
    app.run(main)
