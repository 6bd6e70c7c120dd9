"""Fixtures shared by test_decoupled_training and test_remedies_training: the remedy matrix per strategy."""

import pathlib

import pytest

# A whole strategy's matrix in one subprocess (mirrored is the slowest; the three run at once).
MATRIX_TIMEOUT_S = 1800


@pytest.fixture(scope="session")
def remedy_data_dir(tmp_path_factory) -> str:
    """The data_dir of the default strategy's remedy-matrix runs (its variants are prepared by the first)."""
    return str(tmp_path_factory.mktemp("remedy_tfds"))


@pytest.fixture(scope="session")
def remedy_matrices(remedy_data_dir, tmp_path_factory) -> dict[str, tuple[pathlib.Path, dict]]:
    """Strategy -> (root, matrix.json): every MATRIX entry trained, resumed and evaluated per strategy.

    The default, one-device and mirrored (2 logical CPUs) matrices run as three subprocesses
    at once: each is mostly small steps and Python, far from using both cores, so together
    they take little more than the slowest alone. Each has its own data_dir (no two
    processes preparing one variant).
    """
    # Imported here: the helper defines the training flags and imports TensorFlow.
    import remedy_matrix  # pylint: disable=import-outside-toplevel (tests/augbal_tf is on sys.path)

    settings = {"default": (remedy_data_dir, "auto", 0), "one_device": (None, "one_device", 0),
                "mirrored": (None, "mirrored", 2)}
    started = {}
    for name, (data_dir, strategy, cpu_devices) in settings.items():
        root = tmp_path_factory.mktemp(f"remedy_matrix_{name}")
        data_dir = data_dir or str(tmp_path_factory.mktemp(f"remedy_tfds_{name}"))
        started[name] = root, remedy_matrix.start(data_dir, root, strategy, cpu_devices)
    return {name: (root, remedy_matrix.finish(process, root, MATRIX_TIMEOUT_S))
            for name, (root, process) in started.items()}


@pytest.fixture(scope="session")
def remedy_matrix_default(remedy_matrices) -> tuple[pathlib.Path, dict]:
    """(root, matrix.json) of the default strategy's matrix."""
    return remedy_matrices["default"]
