"""Peak memory of a study against its number of cells (issue #15's target: flat).

    python benchmarks/study_memory.py [--cells 5 40] [--cells_per_process 10 0]

Runs the same tiny study (embedded sample, 32 px, 1 epoch) with N cells, as
`python -m augbal_tf.study`, and samples the resident memory of the study
process and all its children every 0.2 s; prints the peak per (N, cells per
process) side by side, the ratio of the largest to the smallest N, the wall time
per cell (at equal N, the difference between cells per process values is the cost
of starting the extra child processes) and the 1-minute load average around each run
(the machine may be shared).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import psutil


def peak_rss_mib(command: list[str], env: dict, results_csv: str) -> tuple[float, float]:
    """(peak MiB of the process tree, seconds) of one command; the peak so far on stderr every minute."""
    start = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root = psutil.Process(process.pid)
    peak = 0
    next_note = start + 60
    while process.poll() is None:
        if time.monotonic() > next_note:  # A long run on a busy machine still says how far it got.
            next_note += 60
            done = sum(1 for _ in open(results_csv)) - 1 if os.path.exists(results_csv) else 0
            print(f"  {time.monotonic() - start:6.0f} s: {done} cells finished, peak so far {peak / 2**20:.0f} MiB",
                  file=sys.stderr, flush=True)
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
    parser.add_argument("--cells_per_process", type=int, nargs="+", default=[2, 10])
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
                load_before = os.getloadavg()[0]
                peak, seconds = peak_rss_mib(command, env, f"{workspace}/study/results.csv")
                load = f"{load_before:.1f}-{os.getloadavg()[0]:.1f}"
            rows.append((per_process, cells, peak, seconds, load))
            print(f"cells_per_process={per_process:>3}  cells={cells:>3}  peak {peak:7.0f} MiB  {seconds:6.0f} s  "
                  f"load {load}", flush=True)
    print("\n| cells per process | cells | peak RSS (MiB) | wall (s) | wall per cell (s) | load (1 min, before-after) |"
          "\n|---|---|---|---|---|---|")
    for per_process, cells, peak, seconds, load in rows:
        print(f"| {per_process or 'all in the study process'} | {cells} | {peak:.0f} | {seconds:.0f} | "
              f"{seconds / cells:.1f} | {load} |")
    for per_process in args.cells_per_process:
        peaks = {cells: peak for p, cells, peak, _, _ in rows if p == per_process}
        if len(peaks) < 2:
            continue
        print(f"cells_per_process={per_process}: peak at {max(peaks)} cells / at {min(peaks)} cells = "
              f"{peaks[max(peaks)] / peaks[min(peaks)]:.2f}x")


if __name__ == "__main__":
    main()
