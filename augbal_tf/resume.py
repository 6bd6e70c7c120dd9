"""Atomic per-epoch snapshots of everything a resumed run needs.

Keras' BackupAndRestore keeps weights and the epoch only, and writes them in
place. A snapshot here holds the model and optimizer variables (a
tf.train.Checkpoint) plus the loop state (early-stopping counter, best value
and epoch, history) as JSON; it is written to a staging folder and renamed to
`epoch_<k>` in one step, so any `epoch_*` folder is complete. Dropout and
shuffle randomness derive from (seed, epoch), so they need no saving.
"""

import dataclasses
import json
import os
import pathlib
import shutil

import tensorflow as tf

STATE_FILE = "state.json"
CHECKPOINT_PREFIX = "ckpt"
SNAPSHOT_GLOB = "epoch_*"
# Two snapshots: multi-worker tasks may be one epoch apart when killed, and resume
# from the latest epoch that every task has.
KEEP = 2


@dataclasses.dataclass
class LoopState:
    """The training loop's bookkeeping after `epochs_done` completed epochs."""

    epochs_done: int = 0
    best_value: float | None = None
    best_epoch: int | None = None
    epochs_without_improvement: int = 0
    history: list = dataclasses.field(default_factory=list)
    train_seconds: float = 0.0


def record_epoch(state: LoopState, value: float) -> bool:
    """Updates the best-model and early-stopping bookkeeping with epoch `epochs_done + 1`'s value.

    Returns:
      True when `value` strictly improves on the best so far (ties keep the earlier epoch).
    """
    improved = state.best_value is None or value > state.best_value
    if improved:
        state.best_value, state.best_epoch, state.epochs_without_improvement = value, state.epochs_done + 1, 0
    else:
        state.epochs_without_improvement += 1
    state.epochs_done += 1
    return improved


def should_stop(state: LoopState, epochs: int, patience: int) -> bool:
    """True after `epochs` epochs, or `patience` epochs without improvement (patience 0: never early)."""
    return state.epochs_done >= epochs or bool(patience and state.epochs_without_improvement >= patience)


def _snapshots(backup_dir: pathlib.Path) -> list[pathlib.Path]:
    return sorted(backup_dir.glob(SNAPSHOT_GLOB))


def _epoch(snapshot: pathlib.Path) -> int:
    return int(snapshot.name.split("_")[1])


def latest_epoch(backup_dir: str | os.PathLike) -> int:
    """Epochs done in the latest complete snapshot (0 when there is none)."""
    snapshots = _snapshots(pathlib.Path(backup_dir))
    return _epoch(snapshots[-1]) if snapshots else 0


def save(backup_dir: str | os.PathLike, checkpoint: tf.train.Checkpoint, state: LoopState,
         keep: int = KEEP) -> None:
    """Writes the snapshot of `state` atomically and deletes all but the `keep` latest."""
    backup_dir = pathlib.Path(backup_dir)
    backup_dir.mkdir(parents=True, exist_ok=True)
    staging = backup_dir / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    checkpoint.write(str(staging / CHECKPOINT_PREFIX))
    (staging / STATE_FILE).write_text(json.dumps(dataclasses.asdict(state)))
    final = backup_dir / f"epoch_{state.epochs_done:05d}"
    shutil.rmtree(final, ignore_errors=True)
    os.rename(staging, final)
    for older in _snapshots(backup_dir)[:-keep]:
        shutil.rmtree(older, ignore_errors=True)


def restore(backup_dir: str | os.PathLike, checkpoint: tf.train.Checkpoint,
            epoch: int | None = None) -> LoopState | None:
    """Restores a snapshot into `checkpoint` and returns its loop state.

    Args:
      backup_dir: the task's snapshot folder.
      checkpoint: receives the variables.
      epoch: which snapshot (epochs done); None for the latest. 0 means start fresh.

    Returns:
      The restored LoopState, or None when there is no snapshot (or epoch is 0).

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
    return LoopState(**json.loads((snapshot / STATE_FILE).read_text()))
