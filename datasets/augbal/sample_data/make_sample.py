"""Regenerates the embedded sample data from Debian's Fashion-MNIST IDX files.

Usage (after `apt-get install dataset-fashion-mnist`):
    python datasets/augbal/sample_data/make_sample.py \
        [--idx_dir /usr/share/datasets/fashion-mnist] [--out fashion_mnist_sample.npz]

Picks three visually confusable classes (T-shirt/top, Pullover, Shirt) and a
seeded random subset of each split, so the output is the same on every run.
"""

import argparse
import pathlib

import numpy as np

# The IDX reader of the builder's `fashion_mnist` source: one reader for both.
from augbal_datasets.augbal import fashion_mnist

CLASS_IDS = {name: fashion_mnist.CLASS_NAMES.index(name) for name in ("tshirt_top", "pullover", "shirt")}
TRAIN_PER_CLASS = 300
TEST_PER_CLASS = 100
SEED = 20221127


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
    parser.add_argument("--idx_dir", default=fashion_mnist.DEFAULT_DIR)
    parser.add_argument("--out", default=str(pathlib.Path(__file__).with_name("fashion_mnist_sample.npz")))
    args = parser.parse_args()
    rng = np.random.default_rng(SEED)
    train = pick(*fashion_mnist.load_pool(args.idx_dir, "train"), TRAIN_PER_CLASS, rng)
    test = pick(*fashion_mnist.load_pool(args.idx_dir, "test"), TEST_PER_CLASS, rng)
    np.savez_compressed(
        args.out,
        train_images=train[0], train_labels=train[1],
        test_images=test[0], test_labels=test[1],
        class_names=np.array(list(CLASS_IDS)),
    )
    print(f"wrote {args.out}: train {train[0].shape}, test {test[0].shape}")


if __name__ == "__main__":
    main()
