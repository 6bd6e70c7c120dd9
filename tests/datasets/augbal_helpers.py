"""Shared helpers of the augbal builder tests: run `tfds build`, read decoded content."""

import json
import os
import pathlib
import subprocess
import sys

import tensorflow_datasets as tfds

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
TFDS = pathlib.Path(sys.executable).with_name("tfds")


def tfds_build_command(config: dict, data_dir, manual_dir=None, extra=()) -> list[str]:
    """The documented command, run from the repository root."""
    command = [str(TFDS), "build", "datasets/augbal", f"--config={json.dumps(config)}",
               f"--data_dir={data_dir}"]
    if manual_dir is not None:
        command.append(f"--manual_dir={manual_dir}")
    return command + list(extra)


def run_tfds_build(config: dict, data_dir, manual_dir=None, extra=(), timeout=300):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(tfds_build_command(config, data_dir, manual_dir, extra), cwd=REPO_ROOT,
                            env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"tfds build failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


def variant_dir(data_dir, name) -> pathlib.Path:
    return pathlib.Path(data_dir) / "augbal" / name / "1.0.0"


def examples(builder, split):
    return list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))


def content(builder) -> dict:
    """Every split's decoded examples, sorted (keys are not stored; provenance identifies them)."""
    out = {}
    for split in sorted(builder.info.splits):
        rows = [(ex["source_id"].decode(), ex["augmentation"].decode(),
                 ex["augmentation_params"].decode(), int(ex["label"]), bool(ex["generated"]),
                 ex["image"].shape, ex["image"].tobytes()) for ex in examples(builder, split)]
        out[split] = sorted(rows)
    return out
