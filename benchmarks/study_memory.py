"""Peak memory of a study against its number of cells (issue #15's target: flat).

    python benchmarks/study_memory.py [--cells 5 40] [--cells_per_process 10 0]

Runs the same tiny study (embedded sample, 32 px, 1 epoch) with N cells, as
`python -m augbal_tf.study`, and samples the resident memory of the study
process and all its children every 0.2 s; prints the peak per (N, cells per
process) side by side, and the ratio of the largest to the smallest N.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import psutil


def peak_rss_mib(command: list[str], env: dict) -> tuple[float, float]:
    """(peak MiB of the process tree, seconds) of one command."""
    start = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.2)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed with exit code {process.returncode}")
    return peak / 2**20, time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, nargs="+", default=[5, 40])
    parser.add_argument("--cells_per_process", type=int, nargs="+", default=[10, 0])
    args = parser.parse_args()
    rows = []
    for per_process in args.cells_per_process:
        for cells in args.cells:
            with tempfile.TemporaryDirectory() as workspace:
                # One baseline cell per seed: N seeds = N cells of the same size.
                command = [sys.executable, "-m", "augbal_tf.study", "--source=sample",
                           "--classes=tshirt_top,shirt", "--minority=shirt", "--train_per_class=60",
                           "--validation_per_class=10", "--test_per_class=20", "--image_size=32",
                           "--epochs=1", "--batch_size=32", "--log_images=0", "--ratios=4",
                           "--baselines=unbalanced", f"--seeds={','.join(map(str, range(cells)))}",
                           f"--study_dir={workspace}/study", f"--cells_per_process={per_process}"]
                env = {**os.environ, "AUGBAL_WORKSPACE": workspace, "TF_CPP_MIN_LOG_LEVEL": "2"}
                peak, seconds = peak_rss_mib(command, env)
            rows.append((per_process, cells, peak, seconds))
            print(f"cells_per_process={per_process:>3}  cells={cells:>3}  peak {peak:7.0f} MiB  {seconds:6.0f} s",
                  flush=True)
    print("\n| cells per process | cells | peak RSS (MiB) | wall (s) |\n|---|---|---|---|")
    for per_process, cells, peak, seconds in rows:
        print(f"| {per_process or 'all in the study process'} | {cells} | {peak:.0f} | {seconds:.0f} |")
    for per_process in args.cells_per_process:
        peaks = {cells: peak for p, cells, peak, _ in rows if p == per_process}
        print(f"cells_per_process={per_process}: peak at {max(peaks)} cells / at {min(peaks)} cells = "
              f"{peaks[max(peaks)] / peaks[min(peaks)]:.2f}x")


if __name__ == "__main__":
    main()
