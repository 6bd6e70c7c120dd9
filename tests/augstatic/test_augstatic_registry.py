"""The registry: names, lookup normalisation, close-match errors, duplicates, PAPER_TRANSFORMS."""

import pytest

import augstatic
from augstatic import registry


def test_paper_transforms_are_the_33_in_paper_order():
    assert len(augstatic.PAPER_TRANSFORMS) == 33 == len(set(augstatic.PAPER_TRANSFORMS))
    assert augstatic.PAPER_TRANSFORMS[0] == "Blur" and augstatic.PAPER_TRANSFORMS[-1] == "GridDropout"
    assert set(augstatic.PAPER_TRANSFORMS) <= set(augstatic.available())


def test_available_sorted_with_extras():
    names = augstatic.available()
    assert names == sorted(names)
    assert {"Rotate", "RandomResizedCrop", "Equalize", "ElasticTransform"} <= set(names)


@pytest.mark.parametrize("alias, canonical", [
    ("horizontal_flip", "HorizontalFlip"), ("HORIZONTALFLIP", "HorizontalFlip"),
    ("jpeg_compression", "JpegCompression"), ("iso_noise", "ISONoise"), ("clahe", "CLAHE"),
    ("to-gray", "ToGray"), ("Gauss_Noise", "GaussNoise"), ("fancy_pca", "FancyPCA"),
])
def test_lookup_is_case_and_underscore_insensitive(alias, canonical):
    transform = augstatic.create(alias)
    assert transform.name == canonical and type(transform).__name__ == canonical


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match="HorizontalFlip") as error:
        augstatic.create("horizntal_flip")
    assert "horizntal_flip" in str(error.value)
    with pytest.raises(ValueError, match="available"):
        augstatic.create("zzzz")
    with pytest.raises(ValueError, match="string"):
        augstatic.create(42)


def test_duplicate_registration_raises_and_keeps_the_original():
    before = augstatic.available()
    duplicate = type("Horizontal_Flip", (augstatic.Transform,), {})
    with pytest.raises(ValueError, match="already registered"):
        registry.register(duplicate)
    assert augstatic.available() == before
    assert type(augstatic.create("HorizontalFlip")).__module__ == "augstatic.transforms.geometric"


def test_defaults_are_paper_parameters_with_probability_one():
    assert augstatic.create("GaussNoise").params == {
        "var_limit": (10.0, 50.0), "mean": 0.0, "per_channel": True, "p": 1.0}
    assert augstatic.create("Blur").params["blur_limit"] == (3, 7)
    assert augstatic.create("JpegCompression").params["quality_range"] == (99, 100)
    assert augstatic.create("GridDistortion").params["distort_limit"] == (-0.3, 0.3)
    for name in augstatic.PAPER_TRANSFORMS:
        assert augstatic.create(name).p == 1.0


def test_package_never_imports_tensorflow():
    import subprocess
    import sys
    code = "import sys, augstatic, augstatic.gallery; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
