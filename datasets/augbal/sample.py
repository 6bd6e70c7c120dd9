"""The embedded sample data: a small real Fashion-MNIST subset (see sample_data/README.md)."""

import dataclasses
import pathlib

import numpy as np

SAMPLE_PATH = pathlib.Path(__file__).with_name("sample_data") / "fashion_mnist_sample.npz"


@dataclasses.dataclass(frozen=True)
class SampleSplit:
    """One split of the sample: grayscale uint8 images (Nx28x28) and int labels."""

    images: np.ndarray
    labels: np.ndarray


@dataclasses.dataclass(frozen=True)
class SampleData:
    class_names: tuple[str, ...]
    train: SampleSplit
    test: SampleSplit


def load_sample(path: pathlib.Path = SAMPLE_PATH) -> SampleData:
    """Loads the sample data shipped in the package.

    Raises:
      FileNotFoundError: if the sample file is missing from the installation.
    """
    if not path.is_file():
        raise FileNotFoundError(f"embedded sample data not found at {path}; reinstall augbal")
    with np.load(path, allow_pickle=False) as arrays:
        return SampleData(
            class_names=tuple(str(name) for name in arrays["class_names"]),
            train=SampleSplit(arrays["train_images"], arrays["train_labels"].astype(np.int64)),
            test=SampleSplit(arrays["test_images"], arrays["test_labels"].astype(np.int64)),
        )
