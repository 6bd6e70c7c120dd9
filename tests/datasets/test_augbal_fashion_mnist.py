"""source=fashion_mnist: the full Fashion-MNIST read straight from Debian's IDX files."""

import gzip
import pathlib

import numpy as np
import pytest

from augbal_datasets.augbal import fashion_mnist
from augbal_datasets.augbal import prepare
from augbal_datasets.augbal import sources

IDX_DIR = pathlib.Path(fashion_mnist.DEFAULT_DIR)
needs_debian_files = pytest.mark.skipif(
    not (IDX_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian package dataset-fashion-mnist not installed (scripts/install_system_packages.sh)")


def _raw_image(stem: str, index: int) -> bytes:
    """Image `index` of an IDX file, read by hand: 16 header bytes, then 28*28 bytes per image."""
    data = gzip.decompress((IDX_DIR / f"{stem}.gz").read_bytes())
    return data[16 + index * 784:16 + (index + 1) * 784]


@needs_debian_files
def test_source_reads_the_official_splits_with_their_names():
    source = sources.open_source("fashion_mnist", None)
    listed = source.list_images()
    counts = {(image.pool, image.label): 0 for image in listed}
    for image in listed:
        counts[image.pool, image.label] += 1
    assert source.class_order({image.label for image in listed}) == list(fashion_mnist.CLASS_NAMES)
    assert fashion_mnist.CLASS_NAMES[:3] == ("tshirt_top", "trouser", "pullover")
    for name in fashion_mnist.CLASS_NAMES:
        assert counts["train", name] == 6000 and counts["test", name] == 1000
    assert source.has_test_pool and len(listed) == 70000
    image = source.read("fashion_mnist/train/12345")
    assert image.shape == (28, 28) and image.dtype == np.uint8
    assert image.tobytes() == _raw_image("train-images-idx3-ubyte", 12345)
    assert source.read("fashion_mnist/test/00007").tobytes() == _raw_image("t10k-images-idx3-ubyte", 7)


@needs_debian_files
def test_a_tiny_long_tail_variant_builds_from_the_arrays(tmp_path):
    fields = dict(source="fashion_mnist", classes=["bag", "trouser", "sandal"], imbalance_profile="exponential",
                  imbalance_ratio=10, train_per_class=30, validation_per_class=5, test_per_class=10,
                  strategy="oversample_random")
    builder = prepare.prepare_variant(fields, tmp_path / "data", num_workers=1)
    metadata = builder.info.metadata
    assert builder.info.features["label"].names == ["bag", "trouser", "sandal"]
    assert metadata["cut_counts"] == {"bag": 30, "trouser": 9, "sandal": 3}
    assert metadata["counts_after"] == {"train": {"bag": 30, "trouser": 30, "sandal": 30},
                                        "validation": {"bag": 5, "trouser": 5, "sandal": 5},
                                        "test": {"bag": 10, "trouser": 10, "sandal": 10}}
    assert metadata["layout"] == "fashion_mnist_idx"
    # Examples come straight from the arrays: no image files, nothing in tfds' downloads.
    written = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert written and not [p for p in written if p.suffix in (".png", ".jpg") or "downloads" in p.parts]
    test = list(prepare.as_decoded_dataset(builder, "test").as_numpy_iterator())
    assert len(test) == 30
    for example in test[:3]:
        pool, index = example["source_id"].decode().split("/")[1:]
        assert pool == "test"
        image = example["image"]
        assert image.shape == (28, 28, 3)  # grayscale repeated into RGB, stored losslessly
        raw = _raw_image("t10k-images-idx3-ubyte", int(index))
        for channel in range(3):
            assert image[:, :, channel].tobytes() == raw


def test_a_missing_folder_names_the_install_command(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"does not exist; .*scripts/install_system_packages\.sh "
                                                r"\(or sudo apt-get install dataset-fashion-mnist\)"):
        sources.open_source("fashion_mnist", tmp_path / "nowhere")
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"lacks train-labels-idx1-ubyte\[\.gz\], t10k-images"):
        sources.open_source("fashion_mnist", tmp_path)
    # Through the builder: the error comes before anything is written.
    data_dir = tmp_path / "data"
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        prepare.prepare_variant(dict(source="fashion_mnist"), data_dir, manual_dir=tmp_path / "nowhere")
    assert not list(data_dir.glob("augbal/*/*/*.tfrecord*"))


def _write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_manual_dir_overrides_the_folder_and_plain_idx_files_read(tmp_path):
    rng = np.random.default_rng(0)
    for pool, count in (("train", 6), ("t10k", 4)):
        _write_idx(tmp_path / f"{pool}-images-idx3-ubyte", rng.integers(0, 256, (count, 28, 28)))
        _write_idx(tmp_path / f"{pool}-labels-idx1-ubyte", np.arange(count) % 2 + 8)
    source = sources.open_source("fashion_mnist", tmp_path)
    assert {(image.pool, image.label) for image in source.list_images()} == {
        (pool, name) for pool in ("train", "test") for name in ("bag", "ankle_boot")}
    images = fashion_mnist.read_idx(tmp_path / "train-images-idx3-ubyte")
    np.testing.assert_array_equal(source.read("fashion_mnist/train/00004"), images[4])
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x04\x01")
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte: IDX header says \(4,\) \(4 bytes\) but"):
        sources.open_source("fashion_mnist", tmp_path).list_images()
