"""The layout of a run's workdir and the rules for reruns.

A finished workdir is never silently overwritten: rerunning with the same
resolved flags reports it and returns its metrics; with different flags (by a
stored hash that ignores --overwrite and --cpu_devices; the workdir itself is
not a field) it fails naming the flags that differ; --overwrite starts fresh.
An unfinished workdir with the same flags resumes.
"""

import enum
import json
import os
import pathlib
import shutil

from augbal_tf import config as config_lib

RUN_FILE = "run.json"            # flags hash + resolved config, written first
FLAGS_FILE = "flags.txt"         # flagfile that reproduces the run
METRICS_FILE = "metrics.json"    # written last: its presence marks a finished run
BEST_WEIGHTS_FILE = "best.weights.h5"
TENSORBOARD_DIR = "tensorboard"
BACKUP_DIR = "backup"
EXPORT_DIR = "export"


class Status(enum.Enum):
    NEW = "new"
    RESUME = "resume"
    FINISHED = "finished"


def backup_dir(workdir: str | os.PathLike, task_index: int) -> pathlib.Path:
    """Per-task snapshot folder (each multi-worker task owns one)."""
    return pathlib.Path(workdir) / BACKUP_DIR / f"worker_{task_index}"


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Writes `text` to `path` through a temporary file and a rename."""
    path = pathlib.Path(path)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _differences(stored: dict, current: dict) -> list[str]:
    keys = sorted((set(stored) | set(current)) - set(config_lib.UNHASHED_FIELDS))
    return [f"--{key}: {stored.get(key)!r} -> {current.get(key)!r}"
            for key in keys if stored.get(key) != current.get(key)]


def prepare(workdir: str | os.PathLike, config: config_lib.TrainConfig, write: bool = True) -> Status:
    """Applies the rerun rules to `workdir` and records the run's flags when it starts.

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
    run_file = workdir / RUN_FILE
    if not write:
        # A non-chief worker only needs to know whether the chief will skip the run;
        # the chief enforces the rules (it may still be writing run.json).
        finished = (run_file.exists() and (workdir / METRICS_FILE).exists() and not config.overwrite and
                    json.loads(run_file.read_text())["flags_hash"] == config_lib.flags_hash(config))
        return Status.FINISHED if finished else Status.RESUME
    if config.overwrite and workdir.exists():
        shutil.rmtree(workdir)
    if run_file.exists():
        stored = json.loads(run_file.read_text())
        if stored["flags_hash"] != config_lib.flags_hash(config):
            differences = _differences(stored["config"], config_lib.to_dict(config))
            state = "finished" if (workdir / METRICS_FILE).exists() else "unfinished"
            raise ValueError(f"workdir {workdir} holds a {state} run with different flags: "
                             f"{'; '.join(differences) or 'flags hash differs'}. Use another --workdir "
                             f"or --overwrite to start fresh")
        return Status.FINISHED if (workdir / METRICS_FILE).exists() else Status.RESUME
    if workdir.exists() and any(workdir.iterdir()) and not config.overwrite:
        raise ValueError(f"workdir {workdir} is not empty and holds no augbal run ({RUN_FILE} missing); "
                         f"use another --workdir or --overwrite")
    workdir.mkdir(parents=True, exist_ok=True)
    write_atomic(workdir / FLAGS_FILE, "\n".join(config_lib.flag_lines(config, str(workdir))) + "\n")
    write_atomic(run_file, json.dumps({"flags_hash": config_lib.flags_hash(config),
                                       "config": config_lib.to_dict(config)}, indent=2))
    return Status.NEW


def read_metrics(workdir: str | os.PathLike) -> dict:
    return json.loads((pathlib.Path(workdir) / METRICS_FILE).read_text())
