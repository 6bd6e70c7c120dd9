"""The embedded sample data loads as real uint8 images with the documented counts."""

import numpy as np

from augbal_datasets.augbal import sample


def test_sample_loads_as_uint8_images_with_documented_counts():
    data = sample.load_sample()
    assert data.class_names == ("tshirt_top", "pullover", "shirt")
    assert data.train.images.shape == (900, 28, 28)
    assert data.test.images.shape == (300, 28, 28)
    assert data.train.images.dtype == np.uint8
    for split, per_class in ((data.train, 300), (data.test, 100)):
        assert np.bincount(split.labels, minlength=3).tolist() == [per_class] * 3


def test_sample_images_are_real_pictures_not_blank():
    data = sample.load_sample()
    # Real photos of garments: varied pixels, dark background, bright garment.
    assert data.train.images.std() > 40
    assert len(np.unique(data.train.images.reshape(len(data.train.images), -1), axis=0)) == 900


def test_missing_sample_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.npz"
    try:
        sample.load_sample(missing)
    except FileNotFoundError as error:
        assert str(missing) in str(error)
    else:
        raise AssertionError("expected FileNotFoundError")


def test_sample_is_reproducible_from_debian_fashion_mnist(tmp_path):
    """The committed sample equals what make_sample.py produces from the IDX files."""
    import pathlib
    import subprocess
    import sys

    import pytest

    idx_dir = pathlib.Path("/usr/share/datasets/fashion-mnist")
    if not (idx_dir / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Debian package dataset-fashion-mnist not installed "
                    "(scripts/install_system_packages.sh installs it)")
    out = tmp_path / "regenerated.npz"
    script = pathlib.Path(sample.__file__).with_name("sample_data") / "make_sample.py"
    subprocess.run([sys.executable, str(script), "--idx_dir", str(idx_dir), "--out", str(out)],
                   check=True, capture_output=True)
    with np.load(out) as fresh, np.load(sample.SAMPLE_PATH) as committed:
        assert sorted(fresh.files) == sorted(committed.files)
        for name in committed.files:
            np.testing.assert_array_equal(fresh[name], committed[name])
