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
