"""The builder through the real `tfds build` command: real data, interruption, determinism."""

import collections
import os
import signal
import subprocess
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

import augbal_helpers
from augbal_datasets.augbal import config as config_lib
from augbal_datasets.augbal import prepare

REAL = dict(source="manual", classes=["buildings", "sea"], minority="sea", imbalance_ratio=8,
            train_per_class=80, test_per_class=20, validation_per_class=10,
            strategy="oversample_augment", augmentation="HorizontalFlip")


def _accurate(example):
    """The pixels the builder augmented (tfds' own decode uses the fast, inexact JPEG DCT)."""
    return prepare.decode_image(example["image"]).numpy()


@pytest.mark.slow
def test_real_intel_scene_oversample_augment_via_tfds_command(intel_scene_mini, tmp_path):
    augbal_helpers.run_tfds_build(REAL, tmp_path, intel_scene_mini)
    builder = tfds.builder_from_directory(augbal_helpers.variant_dir(tmp_path, config_lib.VariantConfig.from_dict(REAL).name))
    assert builder.info.features["label"].names == ["buildings", "sea"]
    metadata = builder.info.metadata
    assert metadata["config"]["augmentation"] == "HorizontalFlip"
    assert metadata["counts_before"] == {"buildings": {"train": 1000, "test": 300},
                                         "sea": {"train": 1000, "test": 300}}
    assert (metadata["majority_count"], metadata["minority_count"], metadata["generated"]) == (80, 10, 70)

    train = list(tfds.as_numpy(builder.as_dataset(
        split="train", decoders={"image": tfds.decode.SkipDecoding()})))
    counts = collections.Counter((int(ex["label"]), bool(ex["generated"])) for ex in train)
    assert counts == {(0, False): 80, (1, False): 10, (1, True): 70}
    originals = {ex["source_id"].decode(): ex for ex in train if not ex["generated"]}
    for ex in train:
        source_id = ex["source_id"].decode()
        label = ("buildings", "sea")[int(ex["label"])]
        assert source_id.startswith(f"seg_train/seg_train/{label}/")
        assert (intel_scene_mini / source_id).is_file()
        if ex["generated"]:
            assert source_id in originals and ex["augmentation"] == b"HorizontalFlip"
            np.testing.assert_array_equal(_accurate(ex), _accurate(originals[source_id])[:, ::-1])
        else:
            # Originals keep their file's bytes.
            assert ex["augmentation"] == b""
            assert ex["image"] == (intel_scene_mini / source_id).read_bytes()
    ids = {split: {ex["source_id"].decode() for ex in augbal_helpers.examples(builder, split)}
           for split in ("train", "validation", "test")}
    assert len(ids["validation"]) == 20 and len(ids["test"]) == 40
    assert all(i.startswith("seg_test/seg_test/") for i in ids["test"])
    assert not ids["validation"] & ids["train"] and not ids["test"] & ids["train"]


@pytest.mark.slow
def test_killed_build_then_same_command_gives_the_uninterrupted_dataset(tmp_path):
    config = dict(source="sample", minority="shirt", imbalance_ratio=8, strategy="oversample_augment",
                  augmentation=["GaussNoise", "HorizontalFlip"], compound=True)
    data_dir = tmp_path / "cli"
    variant = augbal_helpers.variant_dir(data_dir, config_lib.VariantConfig.from_dict(config).name)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.Popen(augbal_helpers.tfds_build_command(config, data_dir),
                               cwd=augbal_helpers.REPO_ROOT, env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(variant.parent.glob("incomplete.*")) and time.monotonic() < deadline:
            assert process.poll() is None, "the build ended before it could be interrupted"
            time.sleep(0.05)
        assert list(variant.parent.glob("incomplete.*")), "the build never started writing"
        os.killpg(process.pid, signal.SIGKILL)  # mid-build: the temporary folder exists
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert not (variant / "dataset_info.json").exists()

    augbal_helpers.run_tfds_build(config, data_dir)
    interrupted = tfds.builder_from_directory(variant)
    clean = prepare.prepare_variant(config, tmp_path / "python")
    assert augbal_helpers.content(interrupted) == augbal_helpers.content(clean)
    assert interrupted.info.metadata["counts_after"] == clean.info.metadata["counts_after"]
