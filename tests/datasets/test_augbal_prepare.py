"""prepare_variant on the embedded sample: the contract training relies on."""

import collections
import json

import numpy as np
import pytest
import tensorflow_datasets as tfds

from augbal_datasets.augbal import config as config_lib
from augbal_datasets.augbal import prepare

SAMPLE = dict(source="sample", minority="shirt", imbalance_ratio=4, validation_per_class=10,
              test_per_class=20, train_per_class=60)


def _examples(builder, split):
    return list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))


def _content(builder):
    """Decoded content of every split, keyed by source id + provenance (order-free)."""
    out = {}
    for split in builder.info.splits:
        rows = []
        for ex in _examples(builder, split):
            rows.append((ex["source_id"].decode(), ex["augmentation"].decode(),
                         ex["augmentation_params"].decode(), int(ex["label"]), bool(ex["generated"]),
                         ex["image"].tobytes()))
        out[split] = sorted(rows)
    return out


@pytest.fixture(scope="module")
def augmented(tmp_path_factory):
    config = dict(SAMPLE, strategy="oversample_augment", augmentation=["HorizontalFlip", "GaussNoise"])
    return config, prepare.prepare_variant(config, tmp_path_factory.mktemp("data"))


def test_contract_features_splits_and_metadata(augmented):
    config, builder = augmented
    assert builder.info.features["label"].names == ["tshirt_top", "pullover", "shirt"]
    assert builder.builder_config.name == config_lib.VariantConfig.from_dict(config).name
    assert set(builder.info.splits) == {"train", "validation", "test"}
    train = _examples(builder, "train")
    counts = collections.Counter((int(ex["label"]), bool(ex["generated"])) for ex in train)
    assert counts == {(0, False): 60, (1, False): 60, (2, False): 15, (2, True): 45}
    for ex in train:
        assert ex["image"].shape == (28, 28, 3) and ex["image"].dtype == np.uint8
        params = json.loads(ex["augmentation_params"])
        if ex["generated"]:
            assert ex["augmentation"].decode() in ("HorizontalFlip", "GaussNoise")
            assert isinstance(params, dict) and "p" in params
        else:
            assert ex["augmentation"] == b"" and params == {}
    for split in ("validation", "test"):
        assert not any(ex["generated"] for ex in _examples(builder, split))
    metadata = builder.info.metadata
    assert metadata["config"]["augmentation"] == ["HorizontalFlip", "GaussNoise"]
    assert metadata["counts_after"]["train"] == {"tshirt_top": 60, "pullover": 60, "shirt": 60}
    assert metadata["counts_before"]["shirt"] == {"train": 300, "test": 100}
    assert metadata["generated"] == 45 and metadata["minority_count"] == 15


def test_generated_images_are_augmented_originals(augmented):
    _, builder = augmented
    train = _examples(builder, "train")
    originals = {ex["source_id"]: ex["image"] for ex in train if not ex["generated"]}
    flips = [ex for ex in train if ex["augmentation"] == b"HorizontalFlip"]
    assert flips
    for ex in flips:
        np.testing.assert_array_equal(ex["image"], originals[ex["source_id"]][:, ::-1])


def test_prepare_reuses_and_rebuild_is_identical(augmented, tmp_path):
    config, builder = augmented
    again = prepare.prepare_variant(config, builder.data_dir_root)
    assert again.data_dir == builder.data_dir
    # Reused from disk: label names and metadata come back although `classes` was not given.
    assert again.info.features["label"].names == ["tshirt_top", "pullover", "shirt"]
    assert again.info.metadata["counts_after"] == builder.info.metadata["counts_after"]
    rebuilt = prepare.prepare_variant(config, tmp_path)
    assert _content(rebuilt) == _content(builder)


@pytest.mark.parametrize("strategy, expected", [
    ("balanced", {0: 60, 1: 60, 2: 60}),
    ("unbalanced", {0: 60, 1: 60, 2: 15}),
    ("undersample", {0: 15, 1: 15, 2: 15}),
    ("oversample_random", {0: 60, 1: 60, 2: 60}),
])
def test_strategies_counts(strategy, expected, tmp_path):
    builder = prepare.prepare_variant(dict(SAMPLE, strategy=strategy, validation_per_class=0), tmp_path)
    assert set(builder.info.splits) == {"train", "test"}  # validation_per_class=0 omits it
    labels = collections.Counter(int(ex["label"]) for ex in _examples(builder, "train"))
    assert labels == expected
    assert not any(ex["generated"] for ex in _examples(builder, "train"))
