"""The same small transfer study with and without the cached-feature fast path (#12), side by side.

    python benchmarks/feature_cache.py [--seeds 0 1] [--baselines balanced unbalanced oversample_random]
        [--ratios 8] [--image_size 224]

launch/intel_scene/transfer_mini.flags (the real intel_scene_mini photos in
../shared/data/intel_scene_mini, buildings vs sea at 8:1 and 20:1, ImageNet
EfficientNet-Lite0 frozen, 6 epochs) cut to 16 cells (3 baselines and HorizontalFlip,
seeds 0 and 1), stored and trained at 224 px, the ImageNet weights' input side and what a
user runs (`--image_size 0`: the flagfile's 96 px), run as `python -m augbal_tf.study` once
with --feature_cache=off and once with auto, each in a fresh $AUGBAL_WORKSPACE (its own tfds
variants, an empty feature cache; the converted ImageNet weights shared).
Prints each study's wall time, the sum of its cells' `wall_time_s` (variant build
included), the sum of their epochs' seconds (the training loop alone), the ratios, the feature
cache's files and disk size, and each study's peak resident memory (process tree, sampled
every 0.2 s).

Measured idle (benchmarks/results/feature_cache.md, run 7d; 2 cores, load 1-2; 17 min for both
studies): 224 px, study 10.15x faster with the cache (928 vs 91 s; sum of cells 11.4x), peak RSS
equal (1905 / 1907 MiB); at 96 px 5.46x (391 vs 72 s, run 7e). Identical
results.csv; 5.1 KiB of cache per image.
"""

import argparse
import json
import os
import pathlib
import sys
import tempfile

import pandas as pd

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from study_memory import peak_rss_mib  # pylint: disable=wrong-import-position

REPO = pathlib.Path(__file__).resolve().parents[1]
FLAGFILE = "launch/intel_scene/transfer_mini.flags"
# results.csv columns that count predictions (selected epoch, accuracies, recall, F1): equal, not close.
EXACT_COLUMNS = ("selected_epoch", "epochs_run", "validation_accuracy", "validation_balanced_accuracy",
                 "test_accuracy", "test_balanced_accuracy", "test_minority_recall", "test_minority_f1",
                 "test_macro_f1")


def run_study(mode: str, root: pathlib.Path, shared_weights: pathlib.Path, args) -> dict:
    """One study with --feature_cache=`mode` in the workspace `root/mode`."""
    workspace = root / mode
    workspace.mkdir()
    (workspace / "weights").symlink_to(shared_weights, target_is_directory=True)
    study_dir = workspace / "study"
    command = [sys.executable, "-m", "augbal_tf.study", f"--flagfile={FLAGFILE}", f"--feature_cache={mode}",
               f"--study_dir={study_dir}", f"--baselines={','.join(args.baselines)}",
               f"--augmentations={','.join(args.augmentations)}", f"--seeds={','.join(args.seeds)}",
               f"--data_dir={workspace / 'tfds'}"]
    if args.ratios:
        command.append(f"--ratios={','.join(args.ratios)}")
    if args.image_size:
        command += [f"--image_size={args.image_size}", f"--store_size={args.image_size}"]
    env = {**os.environ, "AUGBAL_WORKSPACE": str(workspace), "TF_CPP_MIN_LOG_LEVEL": "2"}
    peak, seconds = peak_rss_mib(command, env, str(study_dir / "results.csv"))
    results = pd.read_csv(study_dir / "results.csv")
    metrics = [json.loads((pathlib.Path(workdir) / "metrics.json").read_text()) for workdir in results["workdir"]]
    records = [cell["feature_cache"] for cell in metrics]
    features = list((workspace / "features").rglob("*.npy"))
    return {"mode": mode, "cells": len(results), "wall_s": seconds, "cells_s": float(results["wall_time_s"].sum()),
            "epochs_s": sum(entry["seconds"] for cell in metrics for entry in cell["history"]),
            "peak_mib": peak, "used": sum(record["used"] for record in records),
            "head_only": sum(record.get("backbone_built") is False for record in records),
            "computed": sum(record["computed"] for record in records),
            "read": sum(record["read"] for record in records), "files": len(features),
            "disk_mib": sum(path.stat().st_size for path in features) / 2**20,
            "results": results.sort_values(["ratio", "cell", "seed"]).reset_index(drop=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", default=["0", "1"])
    parser.add_argument("--baselines", nargs="+", default=["balanced", "unbalanced", "oversample_random"])
    parser.add_argument("--augmentations", nargs="+", default=["HorizontalFlip"])
    parser.add_argument("--ratios", nargs="+", default=None, help="instead of the flagfile's 8 and 20")
    parser.add_argument("--image_size", type=int, default=224,
                        help="store and train at this side (224: the ImageNet weights'; 0: the flagfile's 96 px)")
    args = parser.parse_args()
    os.chdir(REPO)  # The flagfile's nested --flagfile and --manual_dir are relative to the repository.
    from augbal_tf.backbones import weights as weights_lib  # pylint: disable=import-outside-toplevel
    shared_weights = weights_lib.weights_cache_dir()
    weights_lib.lite0_imagenet_weights(shared_weights)  # Converted once, outside both timings.
    with tempfile.TemporaryDirectory() as root:
        rows = []
        for mode in ("off", "auto"):
            load = os.getloadavg()
            rows.append(run_study(mode, pathlib.Path(root), shared_weights, args))
            row = rows[-1]
            print(f"--feature_cache={mode:<4}  {row['cells']} cells  study {row['wall_s']:6.0f} s  cells "
                  f"{row['cells_s']:6.0f} s  peak {row['peak_mib']:6.0f} MiB  load average before / after: "
                  f"{load[0]:.1f} / {os.getloadavg()[0]:.1f}", flush=True)
    off, auto = rows
    print("\n| --feature_cache | cells | cells using the cache (head alone) | study wall (s) "
          "| sum of cell wall_time_s (s) | sum of epoch seconds (s) | features computed / read | cache files "
          "| cache disk (MiB) | peak RSS (MiB) |\n|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['mode']} | {row['cells']} | {row['used']} ({row['head_only']}) | {row['wall_s']:.0f} | "
              f"{row['cells_s']:.0f} | {row['epochs_s']:.1f} | {row['computed']} / {row['read']} | {row['files']} | "
              f"{row['disk_mib']:.1f} | {row['peak_mib']:.0f} |")
    print(f"\nstudy wall: off / auto = {off['wall_s'] / auto['wall_s']:.2f}x; sum of cells: "
          f"{off['cells_s'] / auto['cells_s']:.2f}x; epochs alone: {off['epochs_s'] / auto['epochs_s']:.1f}x")
    if auto["files"]:
        print(f"cache: {auto['disk_mib'] * 2**20 / auto['files'] / 1024:.1f} KiB per image on disk")
    different = [column for column in EXACT_COLUMNS if not off["results"][column].equals(auto["results"][column])]
    print(f"results.csv identical in both studies ({', '.join(EXACT_COLUMNS)}): {not different}"
          + (f"; differ: {different}" if different else ""))
    ece = (off["results"]["test_ece"] - auto["results"]["test_ece"]).abs().max()
    print(f"test_ece: largest difference {ece:.2g} (features from other batches: float rounding)")


if __name__ == "__main__":
    main()
