"""Fixtures shared by test_decoupled_training and test_remedies_training: the default strategy's remedy matrix."""

import pathlib

import pytest


@pytest.fixture(scope="session")
def remedy_data_dir(tmp_path_factory) -> str:
    """The data_dir of every remedy-matrix run (its variants are prepared by the first)."""
    return str(tmp_path_factory.mktemp("remedy_tfds"))


@pytest.fixture(scope="session")
def remedy_matrix_default(remedy_data_dir, tmp_path_factory) -> tuple[pathlib.Path, dict]:
    """(root, matrix.json) of every MATRIX entry trained, resumed and evaluated on the default strategy."""
    # Imported here: the helper defines the training flags and imports TensorFlow.
    import remedy_matrix  # pylint: disable=import-outside-toplevel (tests/augbal_tf is on sys.path)

    root = tmp_path_factory.mktemp("remedy_matrix_default")
    return root, remedy_matrix.run(remedy_data_dir, root, "auto")
