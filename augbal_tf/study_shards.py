"""One study as N shards (N machines) writing into one shared study folder.

Shard i of N trains the cells whose index in the expanded grid is i modulo N: every
shard computes the same partition from the same flags, the shards are disjoint and
together they cover the grid. Each cell is owned by its run's workdir lock and
written atomically in its own workdir, so the shards share no file but the layout
record; `--report_only` then merges the finished cells into the study's report.

The layout record (`shards.json`, written once by the first shard) holds
num_shards and a fingerprint of the grid: a shard started with another
`--num_shards`, or with flags that give another grid (a partition that would overlap
the others), is refused. Locks: a one-process study holds the study lock alone;
shards hold it shared (with each other, never with a one-process study) and each
holds its own shard lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pathlib
from collections.abc import Iterator, Sequence

from augbal_tf import config as config_lib
from augbal_tf import fileio, locks

LAYOUT_FILE = "shards.json"
STUDY_LOCK = "study"


def check(num_shards: int, shard_index: int) -> None:
    """Raises ValueError naming the flag unless 0 <= shard_index < num_shards."""
    if isinstance(num_shards, bool) or not isinstance(num_shards, int) or num_shards < 1:
        raise ValueError(f"--num_shards={num_shards} is not valid; must be an integer >= 1 "
                         "(1: the whole study in this process)")
    if isinstance(shard_index, bool) or not isinstance(shard_index, int) or not 0 <= shard_index < num_shards:
        raise ValueError(f"--shard_index={shard_index} is not valid with --num_shards={num_shards}; "
                         f"must be an integer in [0, {num_shards - 1}]")


def select(cells: Sequence, num_shards: int, shard_index: int) -> list:
    """The cells of shard `shard_index`: every `num_shards`-th from the grid's own order."""
    check(num_shards, shard_index)
    return list(cells[shard_index::num_shards])


def fingerprint(cells: Sequence, study_dir: str) -> str:
    """A hash of the grid: each cell's workdir (relative, so mount points may differ) and flags hash."""
    entries = [(os.path.relpath(cell.workdir, study_dir), config_lib.flags_hash(cell.config)) for cell in cells]
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()[:16]


def layout_path(study_dir: str) -> pathlib.Path:
    return pathlib.Path(study_dir) / LAYOUT_FILE


def read_layout(study_dir: str) -> dict | None:
    """The recorded layout of a sharded study folder, or None (never sharded).

    Raises:
      ValueError: the record exists but is not readable JSON.
    """
    path = layout_path(study_dir)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"the shard layout {path} is unreadable ({error}); delete it once no shard runs") from None


def check_layout(study_dir: str, cells: Sequence, num_shards: int | None) -> None:
    """Refuses flags that disagree with the recorded layout (num_shards None: check the grid only).

    Raises:
      ValueError: another --num_shards or another grid than the record, naming both.
    """
    layout = read_layout(study_dir)
    if layout is None:
        return
    path = layout_path(study_dir)
    escape = f"If the study's flags changed on purpose, delete {path} once no shard of it runs."
    if num_shards is not None and layout.get("num_shards") != num_shards:
        raise ValueError(f"--num_shards={num_shards}, but the study folder {study_dir} is sharded with "
                         f"--num_shards={layout.get('num_shards')} (recorded in {path} by its first shard): "
                         "start every shard with that --num_shards (and merge with --report_only). " + escape)
    if layout.get("grid") != fingerprint(cells, study_dir):
        raise ValueError(f"these flags give a grid of {len(cells)} cells (fingerprint "
                         f"{fingerprint(cells, study_dir)}) that differs from the one the shards of {study_dir} "
                         f"run ({layout.get('cells')} cells, fingerprint {layout.get('grid')}, recorded in {path}): "
                         "every shard and --report_only need the same grid, training and dataset flags "
                         "(advise: also the same folder and --budget_minutes). " + escape)


@contextlib.contextmanager
def claim(study_dir: str, cells: Sequence, num_shards: int, shard_index: int) -> Iterator[None]:
    """Owns the study folder (num_shards 1) or one shard of it while the block runs.

    The layout is checked before anything is written; the first shard records it.

    Raises:
      ValueError: a layout mismatch (`check_layout`).
      locks.BusyError: the folder (or this shard) is in use, naming the holder.
    """
    check(num_shards, shard_index)
    check_layout(study_dir, cells, num_shards)
    if num_shards == 1:
        with locks.acquire(study_dir, STUDY_LOCK, "study folder"):
            yield
        return
    with locks.acquire(study_dir, STUDY_LOCK, "study folder", shared=True), \
            locks.acquire(study_dir, f"shard{shard_index}", f"shard {shard_index} of the study folder"):
        record = {"num_shards": num_shards, "grid": fingerprint(cells, study_dir), "cells": len(cells)}
        try:
            fileio.write_atomic(layout_path(study_dir), json.dumps(record, indent=1) + "\n", exclusive=True)
        except FileExistsError:
            check_layout(study_dir, cells, num_shards)  # Another shard recorded it first.
        yield
