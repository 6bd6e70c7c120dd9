"""Test helper: one tiny real study trained twice at once, shared by test_study_runner and test_study_shards.

Two shards of it run as `python -m augbal_tf.study` processes on one folder, each training its cells
in child processes (shard 0 one cell per child, so its second cell gets a new child; shard 1 both
cells in one child), while the test process trains the same study in itself on another folder;
then `--report_only` merges the shards. One set of runs answers both files' questions (do shards
merge to the one-process study; do child processes reproduce in-process training) at the cost of
one: 8 one-epoch cells at 32 px, 3 child processes.
"""

import copy
import os
import pathlib
import subprocess
import sys

from absl import flags

TIMEOUT_S = 900  # Generous for a loaded machine: the shards need ~60 CPU-s, ~40 s on 2 idle cores.
CELLS_PER_PROCESS = (1, 2)  # Shard 0, shard 1.


def study_flags(root: pathlib.Path, name: str) -> list[str]:
    values = {"source": "sample", "classes": "tshirt_top,shirt", "minority": "shirt", "train_per_class": 20,
              "validation_per_class": 8, "test_per_class": 8, "image_size": 32, "epochs": 1, "batch_size": 16,
              "log_images": 0, "data_dir": root / name / "tfds", "study_dir": root / name / "study",
              "ratios": 4, "baselines": "unbalanced", "augmentations": "HorizontalFlip", "seeds": "0,1"}
    return [f"--{key}={value}" for key, value in values.items()]


def start(log_path: pathlib.Path, flag_list: list[str], *extra: str,
          python_options: tuple[str, ...] = ()) -> subprocess.Popen:
    # Output to files, not pipes: a full pipe would stall a shard until the test reads it.
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    with open(log_path.with_suffix(".out"), "w") as out, open(log_path.with_suffix(".err"), "w") as err:
        return subprocess.Popen([sys.executable, *python_options, "-m", "augbal_tf.study", *flag_list, *extra],
                                stdout=out, stderr=err, text=True, env=environment)


def wait(processes: list[subprocess.Popen], log_paths: list[pathlib.Path]) -> list[tuple[int, str, str]]:
    """(exit code, stdout, stderr) of each process; every one is killed if any runs too long."""
    try:
        for process in processes:
            process.wait(timeout=TIMEOUT_S)
    finally:
        for process in processes:
            process.kill()  # A no-op once it exited; never leaves a process behind.
            process.wait()
    return [(process.returncode, path.with_suffix(".out").read_text(), path.with_suffix(".err").read_text())
            for process, path in zip(processes, log_paths)]


def _in_process(flag_list: list[str]):
    """The study of `flag_list` trained in this process (--cells_per_process=0)."""
    from augbal_tf import flags as _  # noqa: F401  pylint: disable=import-outside-toplevel (defines the flags)
    from augbal_tf import study, train  # pylint: disable=import-outside-toplevel

    values = copy.deepcopy(flags.FLAGS)
    values(["study", *flag_list, "--cells_per_process=0"])
    return study.run_study(study.study_from_flags(values), train.train_and_evaluate, log=lambda _: None)


def run(root: pathlib.Path) -> dict:
    """Runs the shards and the in-process study side by side, then the merge; returns what the tests read."""
    sharded, single = study_flags(root, "sharded"), study_flags(root, "single")
    logs = [root / f"shard{index}" for index in range(2)]
    shards = [start(logs[index], sharded, "--num_shards=2", f"--shard_index={index}",
                    f"--cells_per_process={CELLS_PER_PROCESS[index]}") for index in range(2)]
    try:
        _in_process(single)
    except BaseException:
        for process in shards:  # A failure here should not wait for the shards to finish.
            process.kill()
            process.wait()
        raise
    outcomes = wait(shards, logs)
    study_dir = root / "sharded" / "study"
    shared_files = sorted(path.name for path in study_dir.iterdir() if path.is_file())  # Before the merge.
    # The merge reads metrics only: -X importtime lists every import, to show TensorFlow is not one.
    report_log = root / "report"
    report = (None, "", "")  # Not run after a failed shard (the tests report the shard's error).
    if all(code == 0 for code, _, _ in outcomes):
        [report] = wait([start(report_log, sharded, "--report_only", python_options=("-X", "importtime"))],
                        [report_log])
    return {"shards": outcomes, "report": report, "sharded": study_dir, "files_before_merge": shared_files,
            "single": root / "single" / "study"}
