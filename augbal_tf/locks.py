"""Ownership of a folder by one process: an OS-level lock the kernel releases when the holder dies.

A run's workdir (per multi-worker task) and a study folder (or one shard of it)
are each owned by one process at a time; a second process refuses at once, naming
the holder. A shared lock lets several processes (the shards of one study) hold a
folder together against an exclusive holder. A lock left by a killed process never
blocks a rerun: `fcntl.flock` locks die with their process.
"""

import dataclasses
import fcntl
import json
import os
import pathlib
import socket
import time

LOCK_PREFIX = ".augbal-"
LOCK_SUFFIX = ".lock"


class BusyError(ValueError):
    """The folder is owned by another live process."""


@dataclasses.dataclass
class Lock:
    """A held lock; `release()` (or process exit) frees it."""

    path: pathlib.Path
    _descriptor: int | None

    def release(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)  # Closing the descriptor drops the flock.
            self._descriptor = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.release()


def lock_path(folder: str | os.PathLike, owner: str) -> pathlib.Path:
    """The lock file of `owner` (e.g. `task0`, `study`) inside `folder`."""
    return pathlib.Path(folder) / f"{LOCK_PREFIX}{owner}{LOCK_SUFFIX}"


def is_lock_file(path: pathlib.Path) -> bool:
    """True for the files this module creates (folders' contents checks skip them)."""
    return path.name.startswith(LOCK_PREFIX) and path.name.endswith(LOCK_SUFFIX)


def acquire(folder: str | os.PathLike, owner: str, what: str, shared: bool = False) -> Lock:
    """Takes the lock of `owner` in `folder` (created if missing) without waiting.

    Args:
      folder: the folder to own.
      owner: which lock of the folder (one per multi-worker task, `study`, `shard<i>`).
      what: how error messages name the folder (e.g. "workdir", "study folder").
      shared: hold it together with other shared holders (excluding exclusive ones).

    Raises:
      BusyError: another live process holds it (the message names its pid and host).
    """
    path = lock_path(folder, owner)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_holder(descriptor)
        os.close(descriptor)
        raise BusyError(f"{what} {path.parent} is in use by another process ({holder}); wait for it "
                        f"to finish or stop it (its lock is released when it exits: {path})") from None
    os.ftruncate(descriptor, 0)  # No stale holder from an earlier exclusive run.
    if shared:
        return Lock(path, descriptor)  # Shared holders would overwrite each other's names.
    os.write(descriptor, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                     "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
    return Lock(path, descriptor)


def _read_holder(descriptor: int) -> str:
    try:
        holder = json.loads(os.pread(descriptor, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        holder = {}
    if not holder:
        return "holder unknown: shared holders, such as the shards of a study, record none"
    return f"pid {holder.get('pid')} on host {holder.get('host')}, since {holder.get('since')}"
