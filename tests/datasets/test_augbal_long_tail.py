"""The exponential (CIFAR-LT) imbalance profile: counts, strategies, metadata, unchanged names."""

import collections
import math

import pytest

from augbal_datasets.augbal import config as config_lib
from augbal_datasets.augbal import prepare
from augbal_datasets.augbal import sampling

# The golden of test_augbal_config.py: a variant that does not set the profile keeps it.
GOLDEN_HASH = "f0211175ea"
PAPER_CELL = dict(classes=["buildings", "sea"], minority="sea", imbalance_ratio=8,
                  train_per_class=2000, strategy="oversample_augment", augmentation="FancyPCA")


def _pools(names, train, test=5):
    return {name: {"train": [f"{name}/tr{i:05d}" for i in range(train)],
                   "test": [f"{name}/te{i:05d}" for i in range(test)]} for name in names}


def _plan(names, train=260, **fields):
    fields = {"validation_per_class": 10, "test_per_class": 5, "imbalance_profile": "exponential", **fields}
    return sampling.make_plan(_pools(names, train), True, config_lib.VariantConfig(**fields))


def _train(plan):
    return dict(collections.Counter((spec.label, spec.kind) for spec in plan.splits["train"]))


def _formula(n_max, ratio, num_classes):
    # Written independently of the builder: floor(n_max * ratio^(-c/(C-1))).
    return [math.floor(n_max * ratio ** (-c / (num_classes - 1))) for c in range(num_classes)]


@pytest.mark.parametrize("num_classes, ratio", [(3, 10), (3, 100), (10, 10), (10, 100)])
def test_exponential_counts_follow_the_formula_in_classes_order(num_classes, ratio):
    names = [f"c{i}" for i in range(num_classes)][::-1]  # not sorted: the order is `classes`
    plan = _plan(names, classes=names, imbalance_ratio=ratio, train_per_class=250)
    expected = dict(zip(names, _formula(250, ratio, num_classes)))
    assert plan.cut_counts == expected
    assert _train(plan) == {(name, "original"): count for name, count in expected.items()}
    assert plan.majority_count == 250 and plan.minority_count == expected[names[-1]]
    assert plan.minority == names[1:]  # every class after the head
    assert plan.counts_after()["validation"] == dict.fromkeys(names, 10)


def test_cifar_lt_totals_of_the_literature():
    # CIFAR-10-LT (n_max 5000): 12,406 images at ratio 100, 20,431 at ratio 10 (Cao et al. 2019).
    assert sum(sampling.exponential_counts(5000, 100, 10)) == 12406
    assert sum(sampling.exponential_counts(5000, 10, 10)) == 20431
    assert sampling.exponential_counts(6000, 100, 10)[-1] == 60
    assert sampling.exponential_counts(7, 1, 3) == [7, 7, 7]


@pytest.mark.parametrize("strategy, expected", [
    ("unbalanced", {("a", "original"): 200, ("b", "original"): 63, ("c", "original"): 20}),
    ("undersample", {("a", "original"): 20, ("b", "original"): 20, ("c", "original"): 20}),
    ("balanced", {("a", "original"): 200, ("b", "original"): 200, ("c", "original"): 200}),
    ("oversample_random", {("a", "original"): 200, ("b", "original"): 63, ("b", "duplicate"): 137,
                           ("c", "original"): 20, ("c", "duplicate"): 180}),
    ("oversample_augment", {("a", "original"): 200, ("b", "original"): 63, ("b", "generated"): 137,
                            ("c", "original"): 20, ("c", "generated"): 180}),
])
def test_every_strategy_applies_to_the_exponential_cut(strategy, expected):
    extra = {"augmentation": "HorizontalFlip"} if strategy == "oversample_augment" else {}
    plan = _plan(["a", "b", "c"], classes=["a", "b", "c"], imbalance_ratio=10, train_per_class=200,
                 strategy=strategy, **extra)
    assert _train(plan) == expected
    assert plan.cut_counts == {"a": 200, "b": 63, "c": 20}


def test_exponential_subsets_nest_across_ratios_and_keep_the_shared_splits():
    plans = {r: _plan(["a", "b", "c"], imbalance_ratio=r, train_per_class=200) for r in (10, 100)}
    for name in ("b", "c"):
        kept = {r: {s.source_id for s in p.splits["train"] if s.label == name} for r, p in plans.items()}
        assert kept[100] < kept[10]
    step = sampling.make_plan(_pools(["a", "b", "c"], 260), True, config_lib.VariantConfig(
        validation_per_class=10, test_per_class=5, imbalance_ratio=10, minority="c"))
    for split in ("validation", "test"):
        assert plans[10].splits[split] == plans[100].splits[split] == step.splits[split]


def test_a_ratio_that_empties_a_class_names_it():
    with pytest.raises(ValueError, match=r"leaves zero minority images \(class\(es\) \['c'\], exponential"):
        _plan(["a", "b", "c"], imbalance_ratio=100, train_per_class=50)


@pytest.mark.parametrize("fields, match", [
    (dict(imbalance_profile="exponential", imbalance_ratio=10, minority="sea"), "minority must be unset"),
    (dict(imbalance_profile="exponential", imbalance_ratio=0.5), r"imbalance_ratio must be >= 1"),
    (dict(imbalance_profile="linear", imbalance_ratio=10), r"imbalance_profile must be one of \['step', 'exponential'\]"),
])
def test_bad_profile_settings_name_the_field(fields, match):
    with pytest.raises(ValueError, match=match):
        config_lib.VariantConfig(**fields)


def test_without_a_ratio_the_exponential_profile_keeps_the_natural_counts():
    # A study's base config sets the profile; each cell sets its ratio.
    plan = sampling.make_plan({"a": {"train": [f"a{i}" for i in range(30)]},
                               "b": {"train": [f"b{i}" for i in range(20)]}}, False,
                              config_lib.VariantConfig(imbalance_profile="exponential", validation_per_class=0,
                                                       test_per_class=5))
    assert plan.cut_counts == {"a": 25, "b": 15} and plan.majority_count is None


def test_exponential_needs_two_classes():
    with pytest.raises(ValueError, match="at least 2 classes, got 1"):
        sampling.exponential_counts(100, 10, 1)
    with pytest.raises(ValueError, match="at least 2 classes, got 1"):
        _plan(["a"], imbalance_ratio=10)


def test_the_default_profile_keeps_every_existing_name_and_hash():
    step = config_lib.VariantConfig(**PAPER_CELL, imbalance_profile="step")
    assert step == config_lib.VariantConfig(**PAPER_CELL)
    assert step.hash == GOLDEN_HASH and "imbalance_profile" not in step.canonical_json
    exponential = config_lib.VariantConfig(**{**PAPER_CELL, "minority": None}, imbalance_profile="exponential")
    assert exponential.name.startswith("manual-oversample_augment-r8exp-fancypca-")
    assert exponential.hash != GOLDEN_HASH and '"imbalance_profile":"exponential"' in exponential.canonical_json
    assert config_lib.VariantConfig.from_dict(exponential.as_dict()) == exponential


def test_per_class_counts_are_in_the_metadata(tmp_path):
    fields = dict(source="sample", classes=["shirt", "pullover", "tshirt_top"], imbalance_profile="exponential",
                  imbalance_ratio=10, train_per_class=40, validation_per_class=5, test_per_class=5,
                  strategy="oversample_random")
    metadata = prepare.prepare_variant(fields, tmp_path, num_workers=1).info.metadata
    assert metadata["imbalance_profile"] == "exponential"
    assert metadata["cut_counts"] == {"shirt": 40, "pullover": 12, "tshirt_top": 4}
    assert metadata["counts_after"]["train"] == {"shirt": 40, "pullover": 40, "tshirt_top": 40}
    assert metadata["minority"] == ["pullover", "tshirt_top"] and metadata["minority_count"] == 4
    assert metadata["config"]["imbalance_profile"] == "exponential"
