"""Test helper: trains like `python -m augbal_tf.train`, once per precision, in one process.

    python tests/augbal_tf/precision_runs.py --precisions=float32,bfloat16 [--kill_after_epoch=N] <train flags>

Run p trains in <--workdir>/<p> with --precision=p: TensorFlow starts once for every
precision, as in a study's process. --kill_after_epoch SIGKILLs the process right after
the first run saves that epoch's snapshot (a hook injected into `train_and_evaluate`, as
in killing_train.py).
"""

import os
import pathlib
import signal

from absl import app, flags

from augbal_tf import config as config_lib
from augbal_tf import flags as flags_lib  # noqa: F401  (defines the flags)
from augbal_tf import train

flags.DEFINE_list("precisions", ["float32", "bfloat16"], "The --precision of each run, in order.")
flags.DEFINE_integer("kill_after_epoch", None, "SIGKILL this process after the first run saves this epoch.")


def main(argv) -> None:
    del argv
    kill_after = flags.FLAGS.kill_after_epoch

    def kill_hook(state) -> None:
        if kill_after is not None and state.epochs_done == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    config = config_lib.from_flags(flags.FLAGS)
    for precision in flags.FLAGS.precisions:
        train.train_and_evaluate(config_lib.replace(config, precision=precision),
                                 str(pathlib.Path(flags.FLAGS.workdir, precision)), after_epoch=kill_hook)


if __name__ == "__main__":
    app.run(main)
