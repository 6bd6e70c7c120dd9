"""Sampling plan arithmetic: the documented order of operations and every strategy."""

import collections

import pytest

from augbal_datasets.augbal import config as config_lib
from augbal_datasets.augbal import sampling


def _pools(train_counts, test_counts=None):
    pools = {}
    for name, count in train_counts.items():
        pools[name] = {"train": [f"{name}/tr{i:05d}.jpg" for i in range(count)]}
        if test_counts is not None:
            pools[name]["test"] = [f"{name}/te{i:05d}.jpg" for i in range(test_counts[name])]
    return pools


def _plan(pools, has_test=True, **fields):
    return sampling.make_plan(pools, has_test, config_lib.VariantConfig.from_dict(fields))


def _train_counts(plan):
    counts = collections.Counter((spec.label, spec.kind) for spec in plan.splits["train"])
    return dict(counts)


@pytest.mark.parametrize("ratio, minority", [(2, 1000), (4, 500), (8, 250), (16, 125), (20, 100)])
def test_paper_ratios_with_2000_majority(ratio, minority):
    pools = _pools({"buildings": 2200, "sea": 2200}, {"buildings": 432, "sea": 432})
    plan = _plan(pools, imbalance_ratio=ratio, train_per_class=2000, validation_per_class=100,
                 minority="sea", test_per_class=432)
    assert plan.majority_count == 2000
    assert plan.minority_count == minority
    assert _train_counts(plan) == {("buildings", "original"): 2000, ("sea", "original"): minority}
    assert plan.counts_after()["test"] == {"buildings": 432, "sea": 432}
    assert plan.counts_after()["validation"] == {"buildings": 100, "sea": 100}


def test_majority_is_capped_by_what_is_left_after_validation():
    pools = _pools({"a": 120, "b": 150}, {"a": 10, "b": 10})
    plan = _plan(pools, imbalance_ratio=4, train_per_class=2000, validation_per_class=20, minority="b")
    assert plan.majority_count == 100  # 120 - 20: the smallest class left
    assert _train_counts(plan) == {("a", "original"): 100, ("b", "original"): 25}


def test_strategies_counts():
    pools = _pools({"a": 110, "b": 110}, {"a": 10, "b": 10})
    base = dict(imbalance_ratio=4, validation_per_class=10, minority="b")
    assert _train_counts(_plan(pools, strategy="balanced", **base)) == {
        ("a", "original"): 100, ("b", "original"): 100}
    assert _train_counts(_plan(pools, strategy="unbalanced", **base)) == {
        ("a", "original"): 100, ("b", "original"): 25}
    assert _train_counts(_plan(pools, strategy="undersample", **base)) == {
        ("a", "original"): 25, ("b", "original"): 25}
    assert _train_counts(_plan(pools, strategy="oversample_random", **base)) == {
        ("a", "original"): 100, ("b", "original"): 25, ("b", "duplicate"): 75}
    assert _train_counts(_plan(pools, strategy="oversample_augment", augmentation="HorizontalFlip",
                               **base)) == {
        ("a", "original"): 100, ("b", "original"): 25, ("b", "generated"): 75}
    assert _train_counts(_plan(pools, strategy={"a": 40, "b": 60}, augmentation="HorizontalFlip",
                               **base)) == {
        ("a", "original"): 40, ("b", "original"): 25, ("b", "generated"): 35}
    assert _train_counts(_plan(pools, strategy={"b": 30}, **base)) == {
        ("a", "original"): 100, ("b", "original"): 25, ("b", "duplicate"): 5}


def test_subsets_nest_and_validation_and_test_are_shared_across_variants():
    pools = _pools({"a": 300, "b": 300}, {"a": 50, "b": 50})
    plans = {r: _plan(pools, imbalance_ratio=r, minority="b", validation_per_class=20,
                      test_per_class=40, strategy="unbalanced") for r in (2, 4, 8)}
    minority_sets = {r: {s.source_id for s in p.splits["train"] if s.label == "b"} for r, p in plans.items()}
    assert minority_sets[8] < minority_sets[4] < minority_sets[2]
    for split in ("validation", "test"):
        assert plans[2].splits[split] == plans[8].splits[split]
    other_seed = _plan(pools, imbalance_ratio=2, minority="b", validation_per_class=20,
                       test_per_class=40, data_seed=7)
    assert other_seed.splits["test"] == plans[2].splits["test"]  # test never depends on data_seed
    assert other_seed.splits["validation"] != plans[2].splits["validation"]


def test_splits_never_share_sources_and_keys_are_unique():
    pools = _pools({"a": 60, "b": 60})  # no test pool: test is carved
    plan = _plan(pools, has_test=False, imbalance_ratio=8, minority="a", validation_per_class=5,
                 strategy="oversample_augment", augmentation="HorizontalFlip", compound=True)
    ids = {split: {s.source_id for s in specs} for split, specs in plan.splits.items()}
    assert not ids["train"] & ids["validation"]
    assert not ids["train"] & ids["test"]
    assert not ids["validation"] & ids["test"]
    keys = [s.key for specs in plan.splits.values() for s in specs]
    assert len(keys) == len(set(keys))
    assert plan.test_per_class == 12  # default carve: a fifth of the smallest class
    assert all(not s.generated for s in plan.splits["validation"] + plan.splits["test"])
    # compound: the n-th copy of an original re-augments copies 1..n-1 of the same original.
    generated = [s for s in plan.splits["train"] if s.generated]
    by_key = {s.key: s for s in generated}
    for spec in generated:
        assert spec.chain[-1] == spec.key
        assert all(step in by_key for step in spec.chain)


def test_copies_spread_evenly_over_originals():
    pools = _pools({"a": 100, "b": 100}, {"a": 5, "b": 5})
    plan = _plan(pools, imbalance_ratio=8, minority="b", validation_per_class=0,
                 strategy="oversample_random")
    uses = collections.Counter(s.source_id for s in plan.splits["train"] if s.label == "b")
    assert plan.minority_count == 12
    assert sum(uses.values()) == 100
    assert set(uses.values()) <= {8, 9}


def test_natural_counts_without_ratio():
    pools = _pools({"a": 90, "b": 40, "c": 60}, {"a": 5, "b": 5, "c": 5})
    plan = _plan(pools, validation_per_class=0, train_per_class=70)
    assert plan.minority == ["b"]  # default: the class with the fewest images
    assert _train_counts(plan) == {("a", "original"): 70, ("b", "original"): 40, ("c", "original"): 60}
    plan = _plan(pools, validation_per_class=0, train_per_class=70, strategy="oversample_random")
    assert collections.Counter(s.label for s in plan.splits["train"]) == {"a": 70, "b": 70, "c": 60}


def test_validation_fraction_is_of_the_smallest_class():
    pools = _pools({"a": 200, "b": 50}, {"a": 5, "b": 5})
    assert _plan(pools, validation_per_class=0.1).validation_per_class == 5


@pytest.mark.parametrize("fields, message", [
    (dict(imbalance_ratio=200, minority="b"), "zero minority images"),
    (dict(validation_per_class=60), "class 'b' has 50 training images"),
    (dict(test_per_class=6), "class 'a' has 5 images in its test pool"),
])
def test_too_few_images_is_a_clear_error(fields, message):
    pools = _pools({"a": 200, "b": 50}, {"a": 5, "b": 5})
    with pytest.raises(ValueError, match=message):
        _plan(pools, **fields)


def test_same_seed_same_plan_different_seed_different_plan():
    pools = _pools({"a": 80, "b": 80}, {"a": 5, "b": 5})
    fields = dict(imbalance_ratio=4, minority="b", strategy="oversample_augment",
                  augmentation="HorizontalFlip")
    assert _plan(pools, **fields).splits == _plan(pools, **fields).splits
    assert _plan(pools, **fields).splits["train"] != _plan(pools, data_seed=1, **fields).splits["train"]


def test_seeded_rng_depends_on_seed_and_key_only():
    first = sampling.seeded_rng(3, "sea/1.jpg#gen1").integers(1 << 30, size=4)
    again = sampling.seeded_rng(3, "sea/1.jpg#gen1").integers(1 << 30, size=4)
    other = sampling.seeded_rng(3, "sea/1.jpg#gen2").integers(1 << 30, size=4)
    assert (first == again).all() and not (first == other).all()
    # Golden: the hash must never change, or every variant on disk changes its content.
    assert sampling.stable_hash("abc") == 0xeacf018fbf1678ba
