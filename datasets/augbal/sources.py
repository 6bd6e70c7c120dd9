"""Where original images come from: a manual folder, the embedded sample, Fashion-MNIST or tfds.

Every source lists its images as `SourceImage`s (a stable relative id, the class
name and the pool: 'train' or 'test', the latter absent for a single folder of
classes) and reads one image's data at a time: `bytes` of an image file, or an
HxW / HxWxC uint8 array (RGB order) for in-memory sources.

Manual layouts, detected in this order under `manual_dir`:
  1. Intel Scene archive: `seg_train/seg_train/<class>/*`, `seg_test/seg_test/<class>/*`.
  2. Plain split folders: `train/<class>/*`, `test/<class>/*` (test optional).
  3. A single folder of classes: `<class>/*` (the test split is then carved).
Files whose names start with '.' and sub-folders inside class folders are ignored.
"""

import dataclasses
import os
from collections.abc import Iterable, Iterator

import numpy as np
# epath, not pathlib: manual_dir may live on gs:// (or any tf.io.gfile file system) when
# Beam workers on a cluster read it; local paths use plain os calls.
from etils import epath

from augbal_datasets.augbal import fashion_mnist

TRAIN, TEST = "train", "test"


@dataclasses.dataclass(frozen=True, order=True)
class SourceImage:
    """One original image: stable id (relative path), class name and pool."""

    source_id: str
    label: str
    pool: str


class Source:
    """Base class: lists images and reads them one at a time."""

    #: Whether `read` is cheap random access (False: use `iter_read` in id order).
    random_access = True
    #: Whether the source has its own test pool (else the test split is carved).
    has_test_pool = True

    def list_images(self) -> list[SourceImage]:
        raise NotImplementedError

    def class_order(self, present: Iterable[str]) -> list[str]:
        """The default label order of the classes present: sorted names unless the source has one."""
        return sorted(present)

    def read(self, source_id: str) -> bytes | np.ndarray:
        raise NotImplementedError

    def iter_read(self, source_ids: Iterable[str]) -> Iterator[tuple[str, bytes | np.ndarray]]:
        """Yields (id, data) for the given ids (in the given order unless `random_access` is False)."""
        for source_id in source_ids:
            yield source_id, self.read(source_id)


class ManualSource(Source):
    """Image files under `manual_dir` in one of the documented layouts."""

    def __init__(self, root: str | os.PathLike | None):
        if root is None or str(root) == "":
            raise ValueError("source 'manual' needs a manual_dir (tfds build --manual_dir=DIR, or "
                             "prepare_variant(..., manual_dir=DIR)); got none")
        self.root = epath.Path(root)
        if not self.root.is_dir():
            raise ValueError(f"manual_dir {str(self.root)!r} does not exist or is not a directory")
        self.layout, self._pools = _detect_layout(self.root)
        self.has_test_pool = TEST in self._pools

    def list_images(self) -> list[SourceImage]:
        images = []
        for pool, pool_dir in self._pools.items():
            for class_dir in sorted(p for p in pool_dir.iterdir() if p.is_dir() and not _hidden(p)):
                for path in sorted(p for p in class_dir.iterdir() if p.is_file() and not _hidden(p)):
                    images.append(SourceImage(path.relative_to(self.root).as_posix(),
                                              class_dir.name, pool))
        return images

    def class_dirs(self) -> dict[str, list[epath.Path]]:
        """Class name -> its folders (one per pool), including empty ones."""
        out: dict[str, list[epath.Path]] = {}
        for pool_dir in self._pools.values():
            for class_dir in sorted(p for p in pool_dir.iterdir() if p.is_dir() and not _hidden(p)):
                out.setdefault(class_dir.name, []).append(class_dir)
        return out

    def read(self, source_id: str) -> bytes:
        return (self.root / source_id).read_bytes()


class SampleSource(Source):
    """The embedded Fashion-MNIST sample (grayscale 28x28 arrays)."""

    def __init__(self):
        self._data = None

    def _sample(self):
        if self._data is None:
            # Imported lazily: Beam workers unpickle this object before first use.
            from augbal_datasets.augbal import sample  # pylint: disable=import-outside-toplevel
            self._data = sample.load_sample()
        return self._data

    def __getstate__(self):
        return {"_data": None}

    def list_images(self) -> list[SourceImage]:
        data = self._sample()
        images = []
        for pool, split in ((TRAIN, data.train), (TEST, data.test)):
            for index, label in enumerate(split.labels):
                images.append(SourceImage(f"sample/{pool}/{index:05d}",
                                          data.class_names[int(label)], pool))
        return images

    def class_order(self, present):
        return [name for name in self._sample().class_names if name in set(present)]

    def read(self, source_id: str) -> np.ndarray:
        _, pool, index = source_id.split("/")
        split = self._sample().train if pool == TRAIN else self._sample().test
        return split.images[int(index)]


class FashionMnistSource(Source):
    """The full Fashion-MNIST (60,000 train + 10,000 test 28x28 grayscale arrays) from IDX files.

    The official train/test split is the train/test pool. Images are served from the
    decoded arrays (no image files are written); ids are `fashion_mnist/<pool>/<index>`.
    """

    layout = "fashion_mnist_idx"

    def __init__(self, folder: str | os.PathLike | None = None):
        self.folder = str(folder) if folder else fashion_mnist.DEFAULT_DIR
        fashion_mnist.find_files(self.folder)  # a missing folder fails here, before any work
        self._arrays = None

    def __getstate__(self):
        # Beam workers and pickles get the folder only; each loads the arrays once on first read.
        return {**self.__dict__, "_arrays": None}

    def _pools(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        if self._arrays is None:
            self._arrays = {pool: fashion_mnist.load_pool(self.folder, pool) for pool in (TRAIN, TEST)}
        return self._arrays

    def list_images(self) -> list[SourceImage]:
        return [SourceImage(f"fashion_mnist/{pool}/{index:05d}", fashion_mnist.CLASS_NAMES[int(label)], pool)
                for pool, (_, labels) in self._pools().items() for index, label in enumerate(labels)]

    def class_order(self, present):
        return [name for name in fashion_mnist.CLASS_NAMES if name in set(present)]

    def read(self, source_id: str) -> np.ndarray:
        _, pool, index = source_id.split("/")
        return self._pools()[pool][0][int(index)]


class TfdsSource(Source):
    """An image-classification dataset from the TFDS catalog (`tfds:<name>`).

    Needs the dataset prepared in `data_dir` or internet access to prepare it.
    Its images are read by one sequential pass per split, never all at once.
    """

    random_access = False

    def __init__(self, name: str, data_dir: str | None):
        import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
        self.name = name
        self._builder = tfds.builder(name, data_dir=data_dir)
        features = self._builder.info.features
        if "image" not in features or "label" not in features:
            raise ValueError(f"source 'tfds:{name}' needs 'image' and 'label' features, "
                             f"has {sorted(features.keys())}")
        self._builder.download_and_prepare()
        self._label_names = features["label"].names
        splits = self._builder.info.splits
        if TRAIN not in splits:
            raise ValueError(f"source 'tfds:{name}' has no 'train' split (splits: {sorted(splits)})")
        self.has_test_pool = TEST in splits

    def _pool_iter(self, pool: str, decode_images: bool = True):
        import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
        decoders = None if decode_images else {"image": tfds.decode.SkipDecoding()}
        dataset = self._builder.as_dataset(split=pool, shuffle_files=False, decoders=decoders)
        for index, example in enumerate(tfds.as_numpy(dataset)):
            yield f"{self.name}/{pool}/{index:07d}", example

    def _pools(self) -> tuple[str, ...]:
        return (TRAIN, TEST) if self.has_test_pool else (TRAIN,)

    def list_images(self) -> list[SourceImage]:
        images = []
        for pool in self._pools():
            # Labels only: skip decoding the images of this pass.
            for source_id, example in self._pool_iter(pool, decode_images=False):
                images.append(SourceImage(source_id, self._label_names[int(example["label"])], pool))
        return images

    def class_order(self, present):
        return [name for name in self._label_names if name in set(present)]

    def read(self, source_id: str) -> np.ndarray:
        raise NotImplementedError("tfds sources are read with iter_read (sequential pass)")

    def iter_read(self, source_ids):
        """Yields the wanted images in dataset order (one pass per pool that has any)."""
        wanted = set(source_ids)
        found = 0
        for pool in self._pools():
            if not any(source_id.startswith(f"{self.name}/{pool}/") for source_id in wanted):
                continue
            for source_id, example in self._pool_iter(pool):
                if source_id in wanted:
                    found += 1
                    yield source_id, example["image"]
        if found != len(wanted):
            raise ValueError(f"source 'tfds:{self.name}' lacks {len(wanted) - found} of the "
                             "requested images (was the dataset changed?)")


def open_source(source: str, manual_dir: str | os.PathLike | None,
                data_dir: str | None = None) -> Source:
    """Creates the source named by the config field `source`."""
    if source == "manual":
        return ManualSource(manual_dir)
    if source == "sample":
        return SampleSource()
    if source == "fashion_mnist":
        # manual_dir, when given, is the folder of the IDX files (default: Debian's).
        return FashionMnistSource(manual_dir)
    if source.startswith("tfds:"):
        return TfdsSource(source[len("tfds:"):], data_dir)
    raise ValueError(f"source must be 'manual', 'sample', 'fashion_mnist' or 'tfds:<name>', got {source!r}")


def _hidden(path: epath.Path) -> bool:
    return path.name.startswith(".")


def _detect_layout(root: epath.Path) -> tuple[str, dict[str, epath.Path]]:
    intel_train = root / "seg_train" / "seg_train"
    if intel_train.is_dir():
        pools = {TRAIN: intel_train}
        intel_test = root / "seg_test" / "seg_test"
        if intel_test.is_dir():
            pools[TEST] = intel_test
        return "intel_scene", pools
    if (root / "train").is_dir():
        pools = {TRAIN: root / "train"}
        if (root / "test").is_dir():
            pools[TEST] = root / "test"
        return "split_folders", pools
    if not any(p.is_dir() and not _hidden(p) for p in root.iterdir()):
        raise ValueError(f"manual_dir {str(root)!r} holds no class folders; expected "
                         "seg_train/seg_train/<class>/, train/<class>/ or <class>/ folders")
    return "class_folders", {TRAIN: root}
