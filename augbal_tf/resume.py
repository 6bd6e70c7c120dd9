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


@dataclasses.dataclass
class LoopState:
    """The training loop's bookkeeping after `epochs_done` completed epochs."""

    epochs_done: int = 0
    best_value: float | None = None
    best_epoch: int | None = None
    epochs_without_improvement: int = 0
    history: list = dataclasses.field(default_factory=list)
    train_seconds: float = 0.0


def _snapshots(backup_dir: pathlib.Path) -> list[pathlib.Path]:
    return sorted(backup_dir.glob(SNAPSHOT_GLOB))


def save(backup_dir: str | os.PathLike, checkpoint: tf.train.Checkpoint, state: LoopState) -> None:
    """Writes the snapshot of `state` atomically and deletes older snapshots."""
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
    for older in _snapshots(backup_dir):
        if older != final:
            shutil.rmtree(older, ignore_errors=True)


def restore(backup_dir: str | os.PathLike, checkpoint: tf.train.Checkpoint) -> LoopState | None:
    """Restores the latest complete snapshot into `checkpoint`; None when there is none."""
    snapshots = _snapshots(pathlib.Path(backup_dir))
    if not snapshots:
        return None
    latest = snapshots[-1]
    checkpoint.read(str(latest / CHECKPOINT_PREFIX)).assert_existing_objects_matched()
    return LoopState(**json.loads((latest / STATE_FILE).read_text()))
