"""Regenerates the embedded sample data from Debian's Fashion-MNIST IDX files.

Usage (after `apt-get install dataset-fashion-mnist`):
    python datasets/augbal/sample_data/make_sample.py \
        [--idx_dir /usr/share/datasets/fashion-mnist] [--out fashion_mnist_sample.npz]

Picks three visually confusable classes (T-shirt/top, Pullover, Shirt) and a
seeded random subset of each split, so the output is the same on every run.
"""

import argparse
import gzip
import pathlib

import numpy as np

CLASS_IDS = {"tshirt_top": 0, "pullover": 2, "shirt": 6}
TRAIN_PER_CLASS = 300
TEST_PER_CLASS = 100
SEED = 20221127


def read_idx(path):
    """Reads one gzipped IDX file (images or labels) into a uint8 array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def pick(images, labels, per_class, rng):
    """Returns a seeded subset of `per_class` images of each chosen class."""
    out_images, out_labels = [], []
    for new_label, source_label in enumerate(CLASS_IDS.values()):
        indices = np.flatnonzero(labels == source_label)
        chosen = np.sort(rng.choice(indices, size=per_class, replace=False))
        out_images.append(images[chosen])
        out_labels.append(np.full(per_class, new_label, dtype=np.uint8))
    return np.concatenate(out_images), np.concatenate(out_labels)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--idx_dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--out", default=str(pathlib.Path(__file__).with_name("fashion_mnist_sample.npz")))
    args = parser.parse_args()
    idx_dir = pathlib.Path(args.idx_dir)
    rng = np.random.default_rng(SEED)
    train = pick(read_idx(idx_dir / "train-images-idx3-ubyte.gz"),
                 read_idx(idx_dir / "train-labels-idx1-ubyte.gz"), TRAIN_PER_CLASS, rng)
    test = pick(read_idx(idx_dir / "t10k-images-idx3-ubyte.gz"),
                read_idx(idx_dir / "t10k-labels-idx1-ubyte.gz"), TEST_PER_CLASS, rng)
    np.savez_compressed(
        args.out,
        train_images=train[0], train_labels=train[1],
        test_images=test[0], test_labels=test[1],
        class_names=np.array(list(CLASS_IDS)),
    )
    print(f"wrote {args.out}: train {train[0].shape}, test {test[0].shape}")


if __name__ == "__main__":
    main()
