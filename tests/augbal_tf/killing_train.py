"""Test helper: trains like `python -m augbal_tf.train`, then SIGKILLs itself after an epoch.

    python tests/augbal_tf/killing_train.py --kill_after_epoch=N <train flags>

The kill is a hook injected into `train_and_evaluate` (the production loop has
no test code): it fires right after the snapshot of epoch N is saved, as a
crash or an evicted machine would.
"""

import os
import signal

from absl import app, flags

from augbal_tf import config as config_lib
from augbal_tf import flags as flags_lib  # noqa: F401  (defines the flags)
from augbal_tf import train

flags.DEFINE_integer("kill_after_epoch", None, "SIGKILL this process after saving this epoch's snapshot.")


def main(argv) -> None:
    del argv
    kill_after = flags.FLAGS.kill_after_epoch

    def kill_hook(state) -> None:
        if kill_after is not None and state.epochs_done == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    train.train_and_evaluate(config_lib.from_flags(flags.FLAGS), flags.FLAGS.workdir, after_epoch=kill_hook)


if __name__ == "__main__":
    app.run(main)
