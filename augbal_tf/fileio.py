"""Atomic file writes: the one helper every writer of augbal_tf uses.

A reader (a rerun, the study, another shard) must never see a half-written
file: each write goes to a temporary file in the same folder, then one rename.
"""

import contextlib
import os
import pathlib
import uuid
from collections.abc import Iterator


def _temporary(path: pathlib.Path) -> pathlib.Path:
    # Same folder (rename is atomic only within a filesystem), same suffixes (writers such
    # as savefig and save_weights choose the format by them), unique per call: shards on
    # several machines (same pids) write into one shared folder.
    return path.with_name(f".tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}-{path.name}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, exclusive: bool = False) -> Iterator[pathlib.Path]:
    """Yields a temporary path to write; renames it to `path` on success, deletes it on failure.

    Args:
      path: the file to write.
      exclusive: never replace an existing `path` (the first of racing writers wins).

    Raises:
      FileExistsError: `exclusive` and `path` exists (nothing is written).
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary(path)
    try:
        yield temporary
        if exclusive:
            os.link(temporary, path)  # Atomic like a rename, but fails when `path` exists.
        else:
            os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def write_atomic(path: str | os.PathLike, content: str | bytes, exclusive: bool = False) -> None:
    """Writes text or bytes to `path` atomically (`exclusive`: see `atomic_path`)."""
    with atomic_path(path, exclusive) as temporary:
        if isinstance(content, bytes):
            temporary.write_bytes(content)
        else:
            temporary.write_text(content, encoding="utf-8")
