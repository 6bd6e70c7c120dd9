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
cell that kills its process (out of memory) costs only that cell.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing

from augbal_tf import config as config_lib


def _train(config: config_lib.TrainConfig, workdir: str) -> dict:
    from augbal_tf import train  # pylint: disable=import-outside-toplevel  (in the child)

    return train.train_and_evaluate(config, workdir)


class CellRunner:
    """`runner(config, workdir) -> metrics`, in a recycled child process."""

    def __init__(self, cells_per_process: int):
        if cells_per_process < 1:
            raise ValueError(f"--cells_per_process={cells_per_process} is not valid; must be >= 1 "
                             "(0 trains in the study's own process)")
        self.cells_per_process = cells_per_process
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._calls = 0  # Calls run by the current child.

    def __call__(self, config: config_lib.TrainConfig, workdir: str) -> dict:
        return self.call(_train, config, workdir, what=workdir)

    def call(self, fn, *args, what: str = ""):
        """`fn(*args)` (a module-level function, picklable arguments) in the child; counts as a cell."""
        if self._pool is None:
            # spawn: a fresh interpreter, no TensorFlow state inherited from this process.
            # Not max_tasks_per_child: its replacement child can start while the old one is still
            # exiting (the next submit races the join), and both held memory at once (3.1 vs 2.0 GB).
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        try:
            return self._pool.submit(fn, *args).result()
        except concurrent.futures.process.BrokenProcessPool:
            self.close()  # The child died (killed, out of memory): the next cell gets a new one.
            raise RuntimeError(f"the process running {what or fn.__name__} died (killed or out of memory)") from None
        finally:
            self._calls += 1
            if self._calls >= self.cells_per_process:
                self.close()  # Joins the child: its memory is returned before the next one starts.

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._calls = 0
