"""Trains a study's cells in a child process that is replaced every few cells.

A process that trains cell after cell grows by some 200-300 MB per cell (traced
functions, tf.data and allocator state that `keras.backend.clear_session` does
not return), so a long study would run out of memory. Releasing more in the
process does not help: with `clear_session`, `gc.collect()` and glibc's
`malloc_trim(0)` after every cell a process still kept 156 MB per tiny cell
(164 MB without the trim; benchmarks/results/study_memory.md). So cells run in
one child process (TensorFlow imported once per child), replaced after
`cells_per_process` cells (default 2): peak memory is flat in the number of
cells, at most one child's `cells_per_process` cells above a fresh one, and a
cell that kills its process (out of memory) costs only that cell. A child dies
with the study process: a killed study leaves no cell training on its own.

A cell that trained the head alone on cached features (#12) keeps far less, so it
counts as 1 / `HEAD_ONLY_CELLS` of a cell: a child trains that many more of them
before it is replaced, and the ~5 CPU-seconds of a child's start (importing
TensorFlow) are shared by more cells. So does a cached cell that computed missing
features: the frozen backbone it built is the one `feature_cache` keeps for the
child's next cells (one per child, not one per cell).
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import gc
import multiprocessing
import os
import signal
import sys

from augbal_tf import config as config_lib

# A head-only cell of benchmarks/feature_cache.py keeps ~24 MiB in its process (RSS 857 -> 1025 MiB over
# 7 cells; benchmarks/results/feature_cache.md, run 6), a tiny ResNet18 cell 164 MiB (study_memory.md).
HEAD_ONLY_CELLS = 6


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent(parent_pid: int) -> None:
    """In the child: be killed when the study process dies (Linux), so no orphan keeps writing a cell."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # The parent died before the request took effect.
        os._exit(1)  # pylint: disable=protected-access


def _train(config: config_lib.TrainConfig, workdir: str) -> dict:
    from augbal_tf import train  # pylint: disable=import-outside-toplevel  (in the child)

    if not gc.get_freeze_count():
        # The imported modules (TensorFlow's, Keras') live as long as the child: out of the
        # collector's sight, the full collection of every cell's `clear_session` does not walk them.
        gc.freeze()
    return train.train_and_evaluate(config, workdir)


def cell_share(metrics) -> int:
    """What a trained cell uses of its child, in 1 / HEAD_ONLY_CELLS of a cell: 1 for a cell on cached features."""
    record = metrics.get("feature_cache") if isinstance(metrics, dict) else None
    return 1 if record and record.get("used") else HEAD_ONLY_CELLS


class CellRunner:
    """`runner(config, workdir) -> metrics`, in a recycled child process."""

    def __init__(self, cells_per_process: int):
        if cells_per_process < 1:
            raise ValueError(f"--cells_per_process={cells_per_process} is not valid; must be >= 1 "
                             "(0 trains in the study's own process)")
        self.cells_per_process = cells_per_process
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._shares = 0  # What the current child trained, in `cell_share` units.

    def __call__(self, config: config_lib.TrainConfig, workdir: str) -> dict:
        return self.call(_train, config, workdir, what=workdir, share=cell_share)

    def call(self, fn, *args, what: str = "", share=lambda result: HEAD_ONLY_CELLS):
        """`fn(*args)` (a module-level function, picklable arguments) in the child.

        It counts as `share(result)` / HEAD_ONLY_CELLS cells (default, and when it raises: one).
        """
        if self._pool is None:
            # spawn: a fresh interpreter, no TensorFlow state inherited from this process.
            # Not max_tasks_per_child: its replacement child can start while the old one is still
            # exiting (the next submit races the join), and both held memory at once (3.1 vs 2.0 GB).
            # The child is killed with this process (`_die_with_parent`); prctl's signal follows the
            # creating thread, and the pool starts its child from the caller's (the study's) thread.
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=_die_with_parent, initargs=(os.getpid(),))
        used = HEAD_ONLY_CELLS
        try:
            result = self._pool.submit(fn, *args).result()
            used = share(result)
            return result
        except concurrent.futures.process.BrokenProcessPool:
            self.close()  # The child died (killed, out of memory): the next cell gets a new one.
            raise RuntimeError(f"the process running {what or fn.__name__} died (killed or out of memory)") from None
        finally:
            self._shares += used
            if self._shares >= self.cells_per_process * HEAD_ONLY_CELLS:
                self.close()  # Joins the child: its memory is returned before the next one starts.

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._shares = 0
