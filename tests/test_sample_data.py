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
