"""The full Fashion-MNIST, read from the IDX files of Debian's `dataset-fashion-mnist`.

Pure numpy (no TensorFlow): `sources.FashionMnistSource` and the embedded sample's
generator (`sample_data/make_sample.py`) both read the files through `load_pool`.
The folder holds `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
`t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each gzipped (`.gz`, as
Debian ships them) or not.
"""

import gzip
import os

import numpy as np
# epath, as for manual folders: the folder may sit on gs:// for Beam workers.
from etils import epath

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
# Label order of the dataset (index = label); the names the embedded sample uses.
CLASS_NAMES = ("tshirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
               "bag", "ankle_boot")
# Pool -> (images stem, labels stem): the official train/test split.
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
INSTALL_HINT = ("install Debian's package with scripts/install_system_packages.sh (or sudo apt-get install "
                "dataset-fashion-mnist), or point --manual_dir at a folder holding the four IDX files")
_GZIP_MAGIC = b"\x1f\x8b"


def find_files(folder: str | os.PathLike) -> dict[str, tuple[epath.Path, epath.Path]]:
    """Pool -> (images file, labels file) in `folder`, `.gz` or not.

    Raises:
      FileNotFoundError: naming the folder, the missing files and how to install them.
    """
    root = epath.Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"source 'fashion_mnist': folder {str(root)!r} does not exist; {INSTALL_HINT}")
    found, missing = {}, []
    for pool, stems in FILES.items():
        paths = []
        for stem in stems:
            path = next((root / name for name in (stem + ".gz", stem) if (root / name).is_file()), None)
            if path is None:
                missing.append(f"{stem}[.gz]")
            paths.append(path)
        found[pool] = tuple(paths)
    if missing:
        raise FileNotFoundError(f"source 'fashion_mnist': folder {str(root)!r} lacks {', '.join(missing)}; "
                                f"{INSTALL_HINT}")
    return found


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads one IDX file of unsigned bytes (gzipped or not) into a uint8 array.

    Raises:
      ValueError: naming the file when it is not a uint8 IDX file or is truncated.
    """
    data = epath.Path(path).read_bytes()
    if data.startswith(_GZIP_MAGIC):
        data = gzip.decompress(data)
    # Magic: two zero bytes, the type (0x08: unsigned byte) and the number of dimensions.
    if len(data) < 4 or data[:3] != b"\x00\x00\x08" or not 1 <= data[3] <= 3:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes (header {data[:4]!r})")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(shape)):
        raise ValueError(f"{path}: IDX header says {shape} ({int(np.prod(shape))} bytes) but the file "
                         f"holds {len(data) - offset}")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def load_pool(folder: str | os.PathLike, pool: str) -> tuple[np.ndarray, np.ndarray]:
    """(images Nx28x28 uint8, labels N uint8) of the `train` or `test` pool.

    Raises:
      FileNotFoundError: when the folder or a file is missing (see `find_files`).
      ValueError: when images and labels disagree or a label is not 0-9.
    """
    images_path, labels_path = find_files(folder)[pool]
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{images_path} ({images.shape}) and {labels_path} ({labels.shape}) do not "
                         "form one split of N images and N labels")
    if labels.size and labels.max() >= len(CLASS_NAMES):
        raise ValueError(f"{labels_path}: label {int(labels.max())} is not a Fashion-MNIST class (0-9)")
    return images, labels
