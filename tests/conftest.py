"""Shared test fixtures: the real intel_scene_mini data and quiet TensorFlow logs."""

import os
import pathlib

import pytest

# Quiet TensorFlow's C++ start-up chatter in test output; must precede any TF import.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def find_intel_scene_mini() -> pathlib.Path | None:
    """Locates ../shared/data/intel_scene_mini (or $AUGBAL_INTEL_SCENE_MINI)."""
    candidates = [os.environ.get("AUGBAL_INTEL_SCENE_MINI"),
                  REPO_ROOT.parent / "shared" / "data" / "intel_scene_mini"]
    for candidate in candidates:
        if candidate and (pathlib.Path(candidate) / "seg_train" / "seg_train").is_dir():
            return pathlib.Path(candidate)
    return None


@pytest.fixture(scope="session")
def intel_scene_mini() -> pathlib.Path:
    """Path to the real Intel Scene subset; skips the test when it is absent."""
    path = find_intel_scene_mini()
    if path is None:
        pytest.skip("intel_scene_mini not found: expected ../shared/data/intel_scene_mini "
                    "beside the repository or $AUGBAL_INTEL_SCENE_MINI (CI always has it)")
    return path


@pytest.fixture(scope="session")
def tiny_real_study(tmp_path_factory) -> dict:
    """One tiny real study as two sharded processes (cells in child processes) and in this process.

    Shared by test_study_runner and test_study_shards (tests/augbal_tf/tiny_study_runs.py).
    """
    from tests.augbal_tf import tiny_study_runs  # pylint: disable=import-outside-toplevel

    return tiny_study_runs.run(tmp_path_factory.mktemp("tiny_real_study"))


@pytest.fixture(scope="session")
def tiny_run_config(tmp_path_factory):
    """2 classes of the embedded sample, 40/10/20 images per class, 32 px, 2 epochs (`tiny_run`'s flags)."""
    from augbal_tf import config as config_lib  # pylint: disable=import-outside-toplevel

    return config_lib.make(
        data_dir=str(tmp_path_factory.mktemp("tfds")), source="sample", classes=("tshirt_top", "pullover"),
        train_per_class=40, test_per_class=20, validation_per_class=10, image_size=32, epochs=2,
        batch_size=16, patience=0, log_images=4)


@pytest.fixture(scope="session")
def tiny_run(tiny_run_config, tmp_path_factory) -> tuple[str, dict]:
    """(workdir, metrics) of one finished in-process run of `tiny_run_config`, exported.

    Shared by test_train and test_export_evaluate; tests must not change its workdir.
    """
    from augbal_tf import train  # pylint: disable=import-outside-toplevel

    workdir = str(tmp_path_factory.mktemp("tiny_run") / "workdir")
    return workdir, train.train_and_evaluate(tiny_run_config, workdir)
