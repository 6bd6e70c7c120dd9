"""The layout of a run's workdir and the rules for reruns.

A finished workdir is never silently overwritten: rerunning with the same
resolved flags reports it and returns its metrics; with different flags (by a
stored hash that ignores --overwrite and --cpu_devices; the workdir itself is
not a field) it fails naming the flags that differ; --overwrite starts fresh.
An unfinished workdir with the same flags resumes. A run that never finished an
epoch (no snapshot, no metrics) holds nothing worth keeping: any command may
start afresh there, so a failed first attempt never blocks the corrected one.
"""

import enum
import json
import os
import pathlib
import shutil

from augbal_tf import config as config_lib
from augbal_tf import fileio
from augbal_tf import locks

RUN_FILE = "run.json"            # flags hash + resolved config, written first
FLAGS_FILE = "flags.txt"         # flagfile that reproduces the run
METRICS_FILE = "metrics.json"    # written last: its presence marks a finished run
BEST_WEIGHTS_FILE = "best.weights.h5"
TENSORBOARD_DIR = "tensorboard"
BACKUP_DIR = "backup"
EXPORT_DIR = "export"
SNAPSHOT_GLOB = "epoch_*"        # `augbal_tf.resume` names each complete snapshot so


class Status(enum.Enum):
    NEW = "new"            # nothing to keep: start from scratch
    RESUME = "resume"      # same flags, snapshots to continue from
    FINISHED = "finished"  # same flags, metrics.json written
    CHANGED = "changed"    # a run with other flags that made progress
    FOREIGN = "foreign"    # files that are not an augbal run


def backup_dir(workdir: str | os.PathLike, task_index: int) -> pathlib.Path:
    """Per-task snapshot folder (each multi-worker task owns one)."""
    return pathlib.Path(workdir) / BACKUP_DIR / f"worker_{task_index}"


def _contents(workdir: pathlib.Path) -> list[pathlib.Path]:
    if not workdir.is_dir():
        return []
    return [path for path in workdir.iterdir() if not locks.is_lock_file(path)]


def _made_progress(workdir: pathlib.Path) -> bool:
    return (workdir / METRICS_FILE).exists() or any((workdir / BACKUP_DIR).glob(f"*/{SNAPSHOT_GLOB}"))


def stored_run(workdir: str | os.PathLike) -> dict | None:
    """The run.json of `workdir`, or None when absent or unreadable."""
    try:
        return json.loads((pathlib.Path(workdir) / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None


def status(workdir: str | os.PathLike, config: config_lib.TrainConfig) -> Status:
    """What `workdir` holds for a run of `config` (reads only; the one rule of reruns)."""
    workdir = pathlib.Path(workdir)
    stored = stored_run(workdir)
    if stored is None and not (workdir / RUN_FILE).exists():
        return Status.FOREIGN if _contents(workdir) else Status.NEW
    if not _made_progress(workdir):
        return Status.NEW
    if stored is None or stored.get("flags_hash") != config_lib.flags_hash(config):
        return Status.CHANGED
    return Status.FINISHED if (workdir / METRICS_FILE).exists() else Status.RESUME


def _differences(stored: dict, current: dict) -> list[str]:
    keys = sorted((set(stored) | set(current)) - set(config_lib.UNHASHED_FIELDS))
    return [f"--{key}: {stored.get(key)!r} -> {current.get(key)!r}"
            for key in keys if stored.get(key) != current.get(key)]


def clear(workdir: pathlib.Path) -> None:
    """Deletes everything in `workdir` except the lock files (held by this process)."""
    for path in _contents(workdir):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def prepare(workdir: str | os.PathLike, config: config_lib.TrainConfig, write: bool = True) -> Status:
    """Applies the rerun rules to `workdir` and records the run's flags when it starts.

    The caller owns the workdir (`locks.acquire`) before calling this.

    Args:
      workdir: the run's output folder (created when missing).
      config: the resolved configuration.
      write: False on non-chief workers, which only read.

    Returns:
      NEW, RESUME (an unfinished run with the same flags) or FINISHED.

    Raises:
      ValueError: the workdir holds a run with different flags, or files that
        are not an augbal run (unless --overwrite).
    """
    workdir = pathlib.Path(workdir)
    found = status(workdir, config)
    if not write:
        # A non-chief worker only needs to know whether the chief will skip the run;
        # the chief enforces the rules (it may still be writing run.json).
        return Status.FINISHED if found is Status.FINISHED and not config.overwrite else Status.RESUME
    if config.overwrite:
        found = Status.NEW
    if found is Status.CHANGED:
        stored = stored_run(workdir) or {}
        differences = _differences(stored.get("config", {}), config_lib.to_dict(config))
        state = "finished" if (workdir / METRICS_FILE).exists() else "unfinished"
        raise ValueError(f"workdir {workdir} holds a {state} run with different flags: "
                         f"{'; '.join(differences) or 'flags hash differs'}. Use another --workdir "
                         f"or --overwrite to start fresh")
    if found is Status.FOREIGN:
        raise ValueError(f"workdir {workdir} is not empty and holds no augbal run ({RUN_FILE} missing); "
                         f"use another --workdir or --overwrite")
    if found is not Status.NEW:
        return found
    workdir.mkdir(parents=True, exist_ok=True)
    clear(workdir)
    fileio.write_atomic(workdir / FLAGS_FILE, "\n".join(config_lib.flag_lines(config, str(workdir))) + "\n")
    fileio.write_atomic(workdir / RUN_FILE, json.dumps({"flags_hash": config_lib.flags_hash(config),
                                                        "config": config_lib.to_dict(config)}, indent=2))
    return Status.NEW


def read_metrics(workdir: str | os.PathLike) -> dict:
    return json.loads((pathlib.Path(workdir) / METRICS_FILE).read_text())
