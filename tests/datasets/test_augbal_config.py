"""Config canonicalisation and names: equal variants get equal names; names never drift."""

import re

import pytest

from augbal_datasets.augbal import config as config_lib

VariantConfig = config_lib.VariantConfig

GOLDEN_HASH = "f0211175ea"
PAPER_CELL = dict(classes=["buildings", "sea"], minority="sea", imbalance_ratio=8,
                  train_per_class=2000, strategy="oversample_augment", augmentation="FancyPCA")


def test_spellings_of_the_same_variant_share_one_name():
    other = dict(PAPER_CELL, minority=["sea"], imbalance_ratio=8.0, augmentation="fancy_pca")
    assert VariantConfig(**other) == VariantConfig(**PAPER_CELL)
    assert VariantConfig(**other).name == VariantConfig(**PAPER_CELL).name
    canonical = config_lib.canonicalize(PAPER_CELL)
    assert config_lib.canonicalize(canonical) == canonical  # idempotent
    assert canonical["augmentation"] == "FancyPCA" and canonical["minority"] == ["sea"]
    variant = VariantConfig(**PAPER_CELL)
    assert variant.minority == ("sea",) and variant.imbalance_ratio == 8.0


def test_every_field_changes_the_name():
    base = VariantConfig(**PAPER_CELL).name
    for field, value in [("data_seed", 1), ("imbalance_ratio", 4), ("store_size", 64),
                         ("encoding", "jpeg"), ("compound", True), ("validation_per_class", 50),
                         ("classes", ["sea", "buildings"])]:
        assert VariantConfig(**dict(PAPER_CELL, **{field: value})).name != base, field


def test_name_is_short_safe_and_golden():
    variant = VariantConfig(**PAPER_CELL)
    assert re.fullmatch(r"[\w+\-.]+", variant.name) and len(variant.name) < 64
    # Golden: a change here orphans every prepared variant on disk (bump VERSION instead).
    assert variant.name == "manual-oversample_augment-r8-fancypca-" + variant.hash
    assert variant.hash == GOLDEN_HASH


def test_policy_params_are_keyed_by_name():
    canonical = config_lib.canonicalize(dict(
        strategy="oversample_augment", augmentation=["gauss_noise", "HorizontalFlip"],
        augmentation_params={"gauss_noise": {"var_limit": [10, 20]}}))
    assert canonical["augmentation"] == ["GaussNoise", "HorizontalFlip"]
    assert canonical["augmentation_params"] == {"GaussNoise": {"var_limit": [10, 20]}}
    variant = VariantConfig.from_dict(canonical)
    assert variant.augmentation == ("GaussNoise", "HorizontalFlip")
    assert variant.transform_params("HorizontalFlip") == {}
    assert variant.transform_params("GaussNoise") == {"var_limit": [10, 20]}
    with pytest.raises(ValueError, match="keyed by its names"):
        config_lib.canonicalize(dict(augmentation=["GaussNoise"], augmentation_params={"var_limit": [1, 2]}))


@pytest.mark.parametrize("fields, match", [
    (dict(source="web"), "source must be"),
    (dict(classes=["a"]), "at least 2 classes"),
    (dict(classes=["a", "b"], minority="c"), r"minority class\(es\) \['c'\] are not in classes"),
    (dict(validation_per_class=1.5), "fraction must be in"),
    (dict(validation_per_class=-1), "validation_per_class must be >= 0"),
    (dict(train_per_class=0), "train_per_class must be an int >= 1"),
    (dict(encoding="gif"), "encoding must be one of"),
    (dict(strategy={"a": 0}), "strategy count for class 'a'"),
    (dict(compound=True, augmentation=None), "compound=True needs an augmentation"),
    (dict(augmentation="GaussNoise", augmentation_params={"nope": 1}), "unknown parameter"),
    (dict(data_seed=-3), "data_seed must be an int >= 0"),
    (dict(skip_corrupt="yes"), "skip_corrupt must be true or false"),
])
def test_bad_values_name_the_field(fields, match):
    with pytest.raises(ValueError, match=match):
        config_lib.canonicalize(fields)


def test_unknown_field_is_named():
    with pytest.raises(ValueError, match=r"unknown augbal config field\(s\) \['colour'\]"):
        VariantConfig.from_dict({"colour": "blue"})


def test_config_is_frozen_and_derived_values_are_cached(monkeypatch):
    variant = VariantConfig(**PAPER_CELL)
    with pytest.raises(AttributeError):
        variant.data_seed = 3  # type: ignore[misc]
    calls = []
    original = config_lib._canonical_fields
    monkeypatch.setattr(config_lib, "_canonical_fields", lambda c: calls.append(1) or original(c))
    for _ in range(3):
        assert variant.name and variant.hash and variant.canonical_json and variant.as_dict()
    assert calls == []  # name, hash and JSON never canonicalise again


def test_prepare_variant_canonicalises_once(monkeypatch, tmp_path):
    # The builder module first: importing it builds its predefined configs, which must not count.
    from augbal_datasets.augbal import augbal_dataset_builder, prepare  # noqa: F401  pylint: disable=import-outside-toplevel

    calls = []
    original = config_lib._canonical_fields
    monkeypatch.setattr(config_lib, "_canonical_fields", lambda c: calls.append(1) or original(c))
    fields = dict(source="sample", classes=["tshirt_top", "shirt"], minority="shirt", imbalance_ratio=20,
                  strategy="oversample_augment", augmentation="HorizontalFlip",
                  validation_per_class=50, test_per_class=100)
    prepare.prepare_variant(fields, tmp_path)
    assert len(calls) == 1
    calls.clear()
    prepare.prepare_variant(VariantConfig(**fields), tmp_path)  # built once by the caller, reused
    assert len(calls) == 1
