"""tfds DatasetBuilderTestCase runs of the augbal builder on the committed dummy_data/."""

import pathlib

import tensorflow_datasets as tfds

from augbal_datasets.augbal import augbal_dataset_builder

DUMMY = pathlib.Path(__file__).with_name("dummy_data")
# intel_layout: 3 classes x (30 train + 6 test); validation 2 -> 28 left per class.
INTEL = dict(validation_per_class=2, test_per_class=6, minority="sea")


def _config(**fields):
    return augbal_dataset_builder.AugbalConfig(**{**INTEL, **fields})


class _IntelLayoutCase(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = augbal_dataset_builder.Builder
    EXAMPLE_DIR = str(DUMMY / "intel_layout")
    SKIP_CHECKSUMS = True


class BalancedTest(_IntelLayoutCase):
    BUILDER_CONFIG_NAMES_TO_TEST = [_config(strategy="balanced", imbalance_ratio=20)]
    SPLITS = {"train": 84, "validation": 6, "test": 18}


class UnbalancedRatio20Test(_IntelLayoutCase):
    # majority 28, minority 28 // 20 = 1.
    BUILDER_CONFIG_NAMES_TO_TEST = [_config(strategy="unbalanced", imbalance_ratio=20)]
    SPLITS = {"train": 57, "validation": 6, "test": 18}


class UndersampleTest(_IntelLayoutCase):
    BUILDER_CONFIG_NAMES_TO_TEST = [_config(strategy="undersample", imbalance_ratio=4)]
    SPLITS = {"train": 21, "validation": 6, "test": 18}


class OversampleRandomTest(_IntelLayoutCase):
    BUILDER_CONFIG_NAMES_TO_TEST = [_config(strategy="oversample_random", imbalance_ratio=8)]
    SPLITS = {"train": 84, "validation": 6, "test": 18}


class OversampleAugmentTest(_IntelLayoutCase):
    BUILDER_CONFIG_NAMES_TO_TEST = [
        _config(strategy="oversample_augment", imbalance_ratio=20, augmentation="VerticalFlip"),
        _config(strategy="oversample_augment", imbalance_ratio=8, compound=True,
                augmentation=["HorizontalFlip", "GaussNoise"]),
    ]
    SPLITS = {"train": 84, "validation": 6, "test": 18}


class TargetCountsTest(_IntelLayoutCase):
    BUILDER_CONFIG_NAMES_TO_TEST = [_config(strategy={"buildings": 10, "sea": 40, "glacier": 28},
                                            augmentation="HorizontalFlip")]
    SPLITS = {"train": 78, "validation": 6, "test": 18}


class MixedFolderTest(tfds.testing.DatasetBuilderTestCase):
    """Single folder of classes (test carved), mixed sizes/gray/RGBA/16-bit resized on write."""

    DATASET_CLASS = augbal_dataset_builder.Builder
    EXAMPLE_DIR = str(DUMMY / "mixed")
    SKIP_CHECKSUMS = True
    BUILDER_CONFIG_NAMES_TO_TEST = [augbal_dataset_builder.AugbalConfig(
        store_size=16, validation_per_class=0, test_per_class=3)]
    SPLITS = {"train": 18, "test": 6}


del _IntelLayoutCase  # a base class only: do not collect it as a test

if __name__ == "__main__":
    tfds.testing.test_main()
