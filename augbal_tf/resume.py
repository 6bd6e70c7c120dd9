"""Atomic per-epoch snapshots of everything a resumed run needs.

Keras' BackupAndRestore keeps weights and the epoch only, and writes them in
place. A snapshot here holds the model and optimizer variables (a
tf.train.Checkpoint) plus the training loop's state as JSON (whatever the loop
keeps: `augbal_tf.trainer.LoopState`); it is written to a staging folder and
renamed to `epoch_<k>` in one step, so any `epoch_*` folder is complete.
Dropout and shuffle randomness derive from (seed, epoch), so they need no saving.
"""

import json
import os
import pathlib
import shutil

import tensorflow as tf

from augbal_tf.workdir import SNAPSHOT_GLOB

STATE_FILE = "state.json"
CHECKPOINT_PREFIX = "ckpt"
# Two snapshots: multi-worker tasks may be one epoch apart when killed, and resume
# from the latest epoch that every task has.
KEEP = 2


def _snapshots(backup_dir: pathlib.Path) -> list[pathlib.Path]:
    return sorted(backup_dir.glob(SNAPSHOT_GLOB))


def _epoch(snapshot: pathlib.Path) -> int:
    return int(snapshot.name.split("_")[1])


def latest_epoch(backup_dir: str | os.PathLike) -> int:
    """Epochs done in the latest complete snapshot (0 when there is none)."""
    snapshots = _snapshots(pathlib.Path(backup_dir))
    return _epoch(snapshots[-1]) if snapshots else 0


def save(backup_dir: str | os.PathLike, checkpoint: tf.train.Checkpoint, epochs_done: int, state: dict,
         keep: int = KEEP) -> None:
    """Writes the snapshot after `epochs_done` epochs atomically and deletes all but the `keep` latest.

    Args:
      backup_dir: the task's snapshot folder.
      checkpoint: the variables to save.
      epochs_done: completed epochs (the snapshot's name).
      state: the loop's JSON-able state.
      keep: how many snapshots to keep.
    """
    backup_dir = pathlib.Path(backup_dir)
    backup_dir.mkdir(parents=True, exist_ok=True)
    staging = backup_dir / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    checkpoint.write(str(staging / CHECKPOINT_PREFIX))
    (staging / STATE_FILE).write_text(json.dumps(state))
    final = backup_dir / f"epoch_{epochs_done:05d}"
    shutil.rmtree(final, ignore_errors=True)
    os.rename(staging, final)
    for older in _snapshots(backup_dir)[:-keep]:
        shutil.rmtree(older, ignore_errors=True)


def restore(backup_dir: str | os.PathLike, checkpoint: tf.train.Checkpoint,
            epoch: int | None = None) -> dict | None:
    """Restores a snapshot into `checkpoint` and returns the loop state saved with it.

    Args:
      backup_dir: the task's snapshot folder.
      checkpoint: receives the variables.
      epoch: which snapshot (epochs done); None for the latest. 0 means start fresh.

    Returns:
      The saved state dict, or None when there is no snapshot (or epoch is 0).

    Raises:
      ValueError: if the snapshot of `epoch` is not there.
    """
    if epoch is None:
        epoch = latest_epoch(backup_dir)
    if epoch == 0:
        return None
    snapshot = pathlib.Path(backup_dir) / f"epoch_{epoch:05d}"
    if not snapshot.is_dir():
        raise ValueError(f"no snapshot after epoch {epoch} in {backup_dir}")
    checkpoint.read(str(snapshot / CHECKPOINT_PREFIX)).assert_existing_objects_matched()
    return json.loads((snapshot / STATE_FILE).read_text())
