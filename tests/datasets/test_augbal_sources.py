"""Sources: the tfds:<name> path, manual layouts, and identical output whatever the thread count."""

import collections
import pathlib
import shutil

import pytest
import tensorflow_datasets as tfds

import augbal_helpers
from augbal_datasets.augbal import augbal_dataset_builder
from augbal_datasets.augbal import prepare
from augbal_datasets.augbal import sources

DUMMY = pathlib.Path(augbal_dataset_builder.__file__).with_name("dummy_data")


def test_tfds_source_reads_a_prepared_catalog_dataset(tmp_path):
    # Offline stand-in for the TFDS catalog: a dataset prepared in data_dir (here our own
    # predefined 'sample' config) is found by tfds.builder without any download.
    augbal_dataset_builder.Builder(config="sample", data_dir=str(tmp_path)).download_and_prepare()
    config = dict(source="tfds:augbal/sample", classes=["pullover", "shirt"], minority="shirt",
                  imbalance_ratio=2, validation_per_class=5, test_per_class=10, train_per_class=20,
                  strategy="oversample_augment", augmentation="VerticalFlip")
    builder = prepare.prepare_variant(config, tmp_path)
    assert builder.info.features["label"].names == ["pullover", "shirt"]
    train = augbal_helpers.examples(builder, "train")
    counts = collections.Counter((int(ex["label"]), bool(ex["generated"])) for ex in train)
    assert counts == {(0, False): 20, (1, False): 10, (1, True): 10}
    assert all(ex["source_id"].startswith(b"augbal/sample/train/") for ex in train)
    test_ids = {ex["source_id"] for ex in augbal_helpers.examples(builder, "test")}
    assert len(test_ids) == 20 and all(i.startswith(b"augbal/sample/test/") for i in test_ids)


def test_split_folder_layout_and_hidden_files(tmp_path):
    root = tmp_path / "manual"
    for pool, intel_pool in (("train", "seg_train/seg_train"), ("test", "seg_test/seg_test")):
        for name in ("buildings", "glacier"):
            shutil.copytree(DUMMY / "intel_layout" / intel_pool / name, root / pool / name)
    (root / "train" / "glacier" / ".DS_Store").write_bytes(b"junk")
    source = sources.ManualSource(root)
    assert source.layout == "split_folders" and source.has_test_pool
    listed = source.list_images()
    assert collections.Counter((i.label, i.pool) for i in listed) == {
        ("buildings", "train"): 30, ("glacier", "train"): 30, ("buildings", "test"): 6,
        ("glacier", "test"): 6}
    assert all(i.source_id.startswith(f"{i.pool}/{i.label}/") for i in listed)


def test_thread_count_does_not_change_the_examples(tmp_path):
    config = dict(minority="sea", imbalance_ratio=4, validation_per_class=2, test_per_class=4,
                  strategy="oversample_augment", augmentation=["GaussNoise", "HorizontalFlip"])
    manual = DUMMY / "intel_layout"
    serial = prepare.prepare_variant(config, tmp_path / "one", manual, num_workers=1)
    threaded = prepare.prepare_variant(config, tmp_path / "two", manual, num_workers=2)
    assert augbal_helpers.content(serial) == augbal_helpers.content(threaded)
    assert tfds.builder_from_directory(serial.data_dir).info.metadata == threaded.info.metadata


def test_gray_rgba_and_16_bit_files_are_stored_as_rgb(tmp_path):
    import cv2  # pylint: disable=import-outside-toplevel
    import numpy as np  # pylint: disable=import-outside-toplevel
    root = DUMMY / "mixed"
    builder = prepare.prepare_variant(dict(store_size=16, validation_per_class=0, test_per_class=3),
                                      tmp_path, root)
    stored = {ex["source_id"].decode(): ex["image"] for split in ("train", "test")
              for ex in augbal_helpers.examples(builder, split)}
    assert len(stored) == 24

    def expected(raw):  # documented conversion, then the documented resize rule
        shrink = raw.shape[0] * raw.shape[1] > 16 * 16
        return cv2.resize(raw, (16, 16), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)

    for source_id, image in stored.items():
        assert image.shape == (16, 16, 3) and image.dtype == np.uint8
        raw = cv2.imread(str(root / source_id), cv2.IMREAD_UNCHANGED)
        if source_id.endswith("_gray.png"):
            np.testing.assert_array_equal(image, expected(np.repeat(raw[:, :, None], 3, axis=2)))
        elif source_id.endswith("_rgba.png"):
            np.testing.assert_array_equal(image, expected(raw[:, :, 2::-1].copy()))
        elif source_id.endswith("_16bit.png"):
            assert raw.dtype == np.uint16
            np.testing.assert_array_equal(image, expected((raw >> 8).astype(np.uint8)[:, :, ::-1].copy()))


def test_a_rescan_of_an_unchanged_folder_decodes_nothing(tmp_path, monkeypatch):
    from augbal_datasets.augbal import generate, images  # pylint: disable=import-outside-toplevel
    root = tmp_path / "manual"
    for name in ("buildings", "glacier"):
        shutil.copytree(DUMMY / "intel_layout" / "seg_train" / "seg_train" / name, root / name)
    probed = []
    probe = images.probe
    monkeypatch.setattr(images, "probe", lambda data, name: probed.append(name) or probe(data, name))
    first = generate.scan(sources.ManualSource(root), None, False, 16)
    assert len(probed) == 60
    again = generate.scan(sources.ManualSource(root), None, False, 16)
    assert again == first and len(probed) == 60  # Kept: nothing decoded.
    again[1].pools["glacier"]["train"].clear()  # The caller's copy.
    assert generate.scan(sources.ManualSource(root), None, False, 16) == first
    assert generate.scan(sources.ManualSource(root), ["glacier"], False, 16) != first  # Other arguments:
    assert len(probed) == 60 + 30  # scanned.
    changed = sorted((root / "glacier").iterdir())[0]  # Another file's bytes (a new modification time).
    changed.write_bytes(sorted((root / "buildings").iterdir())[0].read_bytes())
    generate.scan(sources.ManualSource(root), None, False, 16)
    assert len(probed) == 60 + 30 + 60
    (root / "empty").mkdir()  # An empty class folder lists no file but fails the scan.
    with pytest.raises(ValueError, match="holds no image files"):
        generate.scan(sources.ManualSource(root), None, False, 16)


def test_a_second_variant_of_a_folder_reuses_its_stored_originals(tmp_path, monkeypatch):
    from augbal_datasets.augbal import generate, images  # pylint: disable=import-outside-toplevel
    monkeypatch.setattr(generate, "_STORED", generate._StoredOriginals(64 << 20))  # pylint: disable=protected-access
    encoded = []
    encode = images.encode
    monkeypatch.setattr(images, "encode", lambda rgb, encoding: encoded.append(1) or encode(rgb, encoding))
    config = dict(minority="sea", imbalance_ratio=4, validation_per_class=2, test_per_class=4, store_size=8,
                  strategy="oversample_augment", augmentation="HorizontalFlip")
    first = prepare.prepare_variant(config, tmp_path / "one", DUMMY / "intel_layout", num_workers=1)
    generated = sum(ex["generated"] for ex in augbal_helpers.examples(first, "train"))
    originals = len(encoded) - generated
    assert originals > 0 and generated > 0
    encoded.clear()
    again = prepare.prepare_variant(config, tmp_path / "two", DUMMY / "intel_layout", num_workers=1)
    assert len(encoded) == generated  # Every original's stored bytes reused; generated copies encoded.
    assert augbal_helpers.content(again) == augbal_helpers.content(first)
