"""Every bad input of issue 4: a clear error naming the problem and no prepared dataset left."""

import pathlib
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

from augbal_datasets.augbal import config as config_lib
from augbal_datasets.augbal import augbal_dataset_builder
from augbal_datasets.augbal import prepare

DUMMY = pathlib.Path(augbal_dataset_builder.__file__).with_name("dummy_data")
BASE = dict(validation_per_class=2, test_per_class=3, classes=["buildings", "sea"])


@pytest.fixture
def manual_dir(tmp_path):
    """A small copy of the dummy Intel layout (2 classes) to break."""
    root = tmp_path / "manual"
    for pool in ("seg_train/seg_train", "seg_test/seg_test"):
        for name in ("buildings", "sea"):
            shutil.copytree(DUMMY / "intel_layout" / pool / name, root / pool / name)
    return root


def _train_dir(root, name="sea"):
    return root / "seg_train" / "seg_train" / name


def _assert_fails_cleanly(config, data_dir, manual, match):
    with pytest.raises(ValueError, match=match):
        prepare.prepare_variant(config, data_dir, manual)
    variant = pathlib.Path(data_dir) / "augbal" / config_lib.VariantConfig.from_dict(config).name
    leftovers = list(variant.glob("*")) if variant.exists() else []
    assert leftovers == [], f"a failed build left {leftovers}"
    builder = augbal_dataset_builder.Builder(config=augbal_dataset_builder.AugbalConfig(**config),
                                             data_dir=str(data_dir))
    assert not builder.is_prepared()


def test_missing_manual_dir(tmp_path):
    _assert_fails_cleanly(BASE, tmp_path / "data", None, "manual_dir")
    _assert_fails_cleanly(BASE, tmp_path / "data", tmp_path / "nowhere", "nowhere")


def test_unknown_class(manual_dir, tmp_path):
    _assert_fails_cleanly(dict(BASE, classes=["buildings", "forest"]), tmp_path / "data", manual_dir,
                          r"unknown class\(es\) \['forest'\].*'buildings', 'sea'")


def test_empty_class_folder(manual_dir, tmp_path):
    (manual_dir / "seg_train" / "seg_train" / "forest").mkdir()
    _assert_fails_cleanly(dict(BASE, classes=None), tmp_path / "data", manual_dir,
                          r"seg_train/forest.*holds no image files")


@pytest.mark.parametrize("name, content, match", [
    ("garbage.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xda\x00\x00\xff\xd9",
     "garbage.jpg: corrupt jpeg"),
    ("notes.txt", b"not an image at all", "notes.txt: not an image"),
    ("empty.png", b"", "empty.png: empty file"),
])
def test_corrupt_and_non_image_files(manual_dir, tmp_path, name, content, match):
    (_train_dir(manual_dir) / name).write_bytes(content)
    _assert_fails_cleanly(BASE, tmp_path / "data", manual_dir, match)


def test_truncated_jpeg_is_caught_whatever_the_decoder_does(manual_dir, tmp_path):
    # Lenient decoders (OpenCV 4.x, PIL with LOAD_TRUNCATED_IMAGES) "decode" such a file and
    # fill the missing rows grey; OpenCV 5.0 refuses it. The structural check (an end-of-image
    # marker after the last scan) catches it either way.
    import cv2  # pylint: disable=import-outside-toplevel
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = cv2.imencode(".jpg", noise)[1].tobytes()
    truncated = data[:len(data) * 2 // 3]
    (_train_dir(manual_dir) / "train_000.jpg").write_bytes(truncated)
    _assert_fails_cleanly(BASE, tmp_path / "data", manual_dir, "train_000.jpg: truncated JPEG")


def test_skip_corrupt_records_skipped_files(manual_dir, tmp_path):
    (_train_dir(manual_dir) / "notes.txt").write_bytes(b"hello")
    data = (_train_dir(manual_dir) / "train_001.jpg").read_bytes()
    (_train_dir(manual_dir) / "train_001.jpg").write_bytes(data[:50])
    builder = prepare.prepare_variant(dict(BASE, skip_corrupt=True), tmp_path / "data", manual_dir)
    skipped = builder.info.metadata["skipped"]
    assert [s["source_id"] for s in skipped] == ["seg_train/seg_train/sea/notes.txt",
                                                  "seg_train/seg_train/sea/train_001.jpg"]
    assert "truncated JPEG" in skipped[1]["error"]
    assert builder.info.metadata["counts_before"]["sea"] == {"train": 29, "test": 6}
    ids = {ex["source_id"].decode() for split in builder.info.splits
           for ex in tfds.as_numpy(builder.as_dataset(split=split))}
    assert not ids & {s["source_id"] for s in skipped}


def test_mixed_sizes_need_store_size(tmp_path):
    _assert_fails_cleanly(dict(validation_per_class=0), tmp_path / "data", DUMMY / "mixed",
                          r"mixed image sizes: .* set store_size")


@pytest.mark.parametrize("fields, match", [
    (dict(imbalance_ratio=0.5), "imbalance_ratio must be >= 1"),
    (dict(strategy="oversample_augment", augmentation="NoSuchTransform"), "NoSuchTransform"),
    (dict(strategy="smote"), "strategy must be one of"),
    (dict(strategy="oversample_augment"), "needs an augmentation"),
])
def test_bad_config_fields_fail_before_any_build(fields, match):
    with pytest.raises(ValueError, match=match):
        augbal_dataset_builder.AugbalConfig(**fields)


def test_unknown_config_field():
    with pytest.raises(TypeError, match=r"unknown augbal config field\(s\) \['colour'\]"):  # what `tfds build --config='{"colour": 1}'` shows
        augbal_dataset_builder.AugbalConfig(colour="blue")
    with pytest.raises(ValueError, match=r"unknown augbal config field\(s\) \['colour'\]"):
        prepare.prepare_variant({"colour": "blue"}, "/nonexistent")


def test_ratio_leaving_zero_minority_images(manual_dir, tmp_path):
    _assert_fails_cleanly(dict(BASE, imbalance_ratio=100, minority="sea"), tmp_path / "data",
                          manual_dir, r"imbalance_ratio=100 leaves zero minority images")


def test_class_too_small_for_the_request(manual_dir, tmp_path):
    _assert_fails_cleanly(dict(BASE, validation_per_class=30), tmp_path / "data", manual_dir,
                          r"class 'buildings' has 30 training images left.*validation_per_class=30")


def test_augmentation_that_changes_the_size_is_refused():
    from augbal_datasets.augbal import config as config_lib  # pylint: disable=import-outside-toplevel
    from augbal_datasets.augbal import generate, sampling, sources  # pylint: disable=import-outside-toplevel
    config = config_lib.VariantConfig(**dict(source="sample", strategy="oversample_augment",
                                          augmentation="Transpose"))
    materializer = generate.Materializer(config, sources.SampleSource(),
                                         {"x": generate.ImageInfo(4, 6, keep_bytes=False)})
    spec = sampling.ExampleSpec(key="x#gen1", label="a", source_id="x", kind=sampling.GENERATED,
                                chain=("x#gen1",))
    with pytest.raises(ValueError, match=r"Transpose turned a \(4, 6, 3\) uint8 image into \(6, 4, 3\)"):
        materializer.examples("x", np.zeros((4, 6), np.uint8), [spec])
