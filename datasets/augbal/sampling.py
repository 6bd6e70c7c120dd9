"""The sampling plan: which original feeds which example of which split (pure Python).

Order of operations (README.md documents the same):
  0. test: `test_per_class` real images per class from the source's test pool (or
     carved from the training pool when the source has none), drawn with the fixed
     `TEST_SEED`: the same for every variant and every `data_seed`.
  1. validation: `validation_per_class` real images per class carved from what is
     left of the training pool, drawn with `data_seed`.
  2. majority = min(`train_per_class`, smallest class left) when `imbalance_ratio`
     is set (all variants with the same `data_seed` share the majority subset);
     otherwise each class keeps min(`train_per_class`, its own count).
  3. minority = majority // `imbalance_ratio` (`imbalance_profile` step): a prefix of
     the class's seeded draw, so the ratio-8 subset is inside the ratio-4 one. With the
     exponential profile class c of C keeps floor(majority * ratio^(-c/(C-1))), the
     first class being the head and every later class a minority.
  4. resample by `strategy` (duplicates or augmented copies of originals).

Every draw uses its own `numpy.random.Generator` seeded from (seed, stable hash of
what is drawn), so nothing depends on iteration order or global state.
"""

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from augbal_datasets.augbal import config as config_lib

# Fixed seed of the test draw; never `data_seed`, so every variant shares the test set.
TEST_SEED = 20221127
# Share of the smallest class carved as test when the source has no test pool and
# `test_per_class` is not given.
DEFAULT_TEST_FRACTION = 0.2

ORIGINAL, DUPLICATE, GENERATED = "original", "duplicate", "generated"
SPLITS = ("train", "validation", "test")


def stable_hash(text: str) -> int:
    """A 64-bit hash of `text` that is the same on every run and machine."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def seeded_rng(seed: int, what: str) -> np.random.Generator:
    """The generator for one named draw (an example key, 'validation/sea', ...)."""
    return np.random.default_rng([seed, stable_hash(what)])


@dataclasses.dataclass(frozen=True)
class ExampleSpec:
    """One example to write.

    Attributes:
      key: unique stable key: the source id, plus `#dup<n>` / `#gen<n>` for copies.
      label: class name.
      source_id: the original's id.
      kind: ORIGINAL, DUPLICATE (exact copy) or GENERATED (augmented copy).
      chain: keys whose augmentation steps are applied, in order, to the original
        (empty unless generated; longer than one only with `compound`).
    """

    key: str
    label: str
    source_id: str
    kind: str = ORIGINAL
    chain: tuple[str, ...] = ()

    @property
    def generated(self) -> bool:
        return self.kind == GENERATED


@dataclasses.dataclass
class Plan:
    """The full plan of a variant plus the counts recorded in its metadata."""

    classes: list[str]
    minority: list[str]
    splits: dict[str, list[ExampleSpec]]
    counts_before: dict[str, dict[str, int]]
    majority_count: int | None
    minority_count: int | None
    validation_per_class: int
    test_per_class: int
    imbalance_profile: str = "step"
    # Real training images per class after the cut, before resampling.
    cut_counts: dict[str, int] = dataclasses.field(default_factory=dict)

    def counts_after(self) -> dict[str, dict[str, int]]:
        """Split -> class -> number of examples."""
        out = {}
        for split, specs in self.splits.items():
            counts = {name: 0 for name in self.classes}
            for spec in specs:
                counts[spec.label] += 1
            out[split] = counts
        return out

    def generated_count(self) -> int:
        return sum(spec.generated for specs in self.splits.values() for spec in specs)

    def summary(self) -> dict[str, Any]:
        """JSON-able counts for the dataset metadata."""
        return {
            "classes": self.classes,
            "minority": self.minority,
            "counts_before": self.counts_before,
            "counts_after": self.counts_after(),
            "majority_count": self.majority_count,
            "minority_count": self.minority_count,
            "imbalance_profile": self.imbalance_profile,
            "cut_counts": self.cut_counts,
            "validation_per_class": self.validation_per_class,
            "test_per_class": self.test_per_class,
            "generated": self.generated_count(),
        }


def minority_count(majority: int, ratio: float) -> int:
    """majority // ratio, as in the paper (2000 at ratio 8 -> 250)."""
    return int(majority // ratio)


def exponential_counts(n_max: int, ratio: float, num_classes: int) -> list[int]:
    """The CIFAR-LT profile: class c keeps floor(n_max * ratio^(-c/(C-1))) images.

    Written as Cao et al.'s reference code computes it (`int(n_max * (1/ratio)**(c/(C-1)))`),
    so the totals match the literature: 12,406 images for CIFAR-10-LT at ratio 100.

    Raises:
      ValueError: for fewer than 2 classes or a ratio below 1.
    """
    if num_classes < 2:
        raise ValueError(f"imbalance_profile='exponential' needs at least 2 classes, got {num_classes}")
    if ratio < 1:
        raise ValueError(f"imbalance_ratio must be >= 1 (head:tail), got {ratio!r}")
    return [int(n_max * (1.0 / ratio) ** (c / (num_classes - 1))) for c in range(num_classes)]


def make_plan(pools: Mapping[str, Mapping[str, Sequence[str]]], has_test_pool: bool,
              config: config_lib.VariantConfig) -> Plan:
    """Draws every split of a variant.

    Args:
      pools: class name (label order) -> {'train': ids, 'test': ids} of readable images.
      has_test_pool: whether 'test' ids come from the source (else they are carved).
      config: the variant's config.

    Raises:
      ValueError: when a class has too few images for the request (naming the class
        and the counts) or a ratio leaves no minority image.
    """
    classes = list(pools)
    seed = config.data_seed
    counts_before = {name: {pool: len(ids) for pool, ids in pools[name].items()} for name in classes}
    for name in classes:
        if sum(counts_before[name].values()) == 0:
            raise ValueError(f"class {name!r} has no readable images")

    train_pools = {name: sorted(pools[name].get("train", ())) for name in classes}
    test_ids, test_per_class = _draw_test(pools, train_pools, has_test_pool, config.test_per_class)
    validation_per_class = _validation_count(config.validation_per_class, train_pools)
    validation_ids = {}
    for name in classes:
        if len(train_pools[name]) <= validation_per_class:
            raise ValueError(f"class {name!r} has {len(train_pools[name])} training images left "
                             f"after the test split; validation_per_class={validation_per_class} "
                             "needs more (at least one must stay for training)")
        order = _permuted(train_pools[name], seed, f"validation/{name}")
        validation_ids[name] = order[:validation_per_class]
        train_pools[name] = sorted(order[validation_per_class:])

    # One seeded order per class: every cut below takes a prefix of it, so the
    # subsets of different ratios and strategies nest inside each other.
    draws = {name: _permuted(train_pools[name], seed, f"train/{name}") for name in classes}
    exponential = config.imbalance_profile == "exponential"
    if exponential:
        minority = classes[1:]  # every class after the head is cut (and topped up by oversampling)
    else:
        minority = config.minority or [min(classes, key=lambda n: (len(train_pools[n]), classes.index(n)))]
    missing = [name for name in minority if name not in classes]
    if missing:
        raise ValueError(f"minority class(es) {missing} are not among the classes {classes}")
    ratio = config.imbalance_ratio
    cap = config.train_per_class
    majority = minority_n = None
    if ratio is not None:
        majority = min([len(draws[name]) for name in classes] + ([cap] if cap else []))
        if exponential:
            base = dict(zip(classes, exponential_counts(majority, ratio, len(classes))))
            minority_n = base[classes[-1]]
        else:
            minority_n = minority_count(majority, ratio)
            base = {name: minority_n if name in minority else majority for name in classes}
        if minority_n == 0:
            empty = [name for name in classes if base[name] == 0]
            raise ValueError(f"imbalance_ratio={ratio:g} leaves zero minority images (class(es) {empty}, "
                             f"{config.imbalance_profile} profile): the majority count is {majority} "
                             f"(train_per_class={cap}, smallest class left "
                             f"{min(len(d) for d in draws.values())})")
    else:
        base = {name: min(len(draws[name]), cap) if cap else len(draws[name]) for name in classes}
    targets = _targets(config.strategy, base, minority, majority, ratio)

    # The paper's balanced baseline gives the minority its full majority-size draw.
    available = ({name: majority for name in classes}
                 if config.strategy == "balanced" and ratio is not None else base)
    train = []
    for name in classes:
        originals = draws[name][:min(targets[name], available[name])]
        train.extend(ExampleSpec(key=source_id, label=name, source_id=source_id)
                     for source_id in originals)
        extra = targets[name] - len(originals)
        if extra > 0:
            kind = GENERATED if _augments(config) else DUPLICATE
            train.extend(_copies(name, originals, extra, kind, config))
    splits = {
        "train": train,
        "validation": [ExampleSpec(key=i, label=n, source_id=i)
                       for n in classes for i in sorted(validation_ids[n])],
        "test": [ExampleSpec(key=i, label=n, source_id=i) for n in classes for i in sorted(test_ids[n])],
    }
    return Plan(classes=classes, minority=list(minority), splits=splits, counts_before=counts_before,
                majority_count=majority, minority_count=minority_n,
                validation_per_class=validation_per_class, test_per_class=test_per_class,
                imbalance_profile=config.imbalance_profile, cut_counts=dict(base))


def _permuted(ids: Sequence[str], seed: int, what: str) -> list[str]:
    ordered = sorted(ids)
    return [ordered[i] for i in seeded_rng(seed, what).permutation(len(ordered))]


def _draw_test(pools, train_pools, has_test_pool, requested):
    classes = list(pools)
    source = {n: sorted(pools[n].get("test", ())) for n in classes} if has_test_pool else train_pools
    available = {n: len(source[n]) for n in classes}
    if requested is None:
        smallest = min(available.values())
        requested = smallest if has_test_pool else max(1, int(smallest * DEFAULT_TEST_FRACTION))
    pool_name = "test" if has_test_pool else "training (no test pool: the test split is carved)"
    test_ids = {}
    for name in classes:
        needed = requested + (0 if has_test_pool else 1)
        if available[name] < needed:
            raise ValueError(f"class {name!r} has {available[name]} images in its {pool_name} pool; "
                             f"test_per_class={requested} needs {needed}")
        order = _permuted(source[name], TEST_SEED, f"test/{name}")
        test_ids[name] = order[:requested]
        if not has_test_pool:
            train_pools[name] = sorted(order[requested:])
    return test_ids, requested


def _validation_count(value: int | float, train_pools: Mapping[str, Sequence[str]]) -> int:
    if isinstance(value, float):
        return int(value * min(len(ids) for ids in train_pools.values()))
    return value


def _augments(config: config_lib.VariantConfig) -> bool:
    strategy = config.strategy
    return strategy == "oversample_augment" or (isinstance(strategy, dict)
                                                and config.augmentation is not None)


def _targets(strategy, base, minority, majority, ratio) -> dict[str, int]:
    """Final number of train examples per class."""
    classes = list(base)
    if isinstance(strategy, dict):
        unknown = sorted(set(strategy) - set(classes))
        if unknown:
            raise ValueError(f"strategy names class(es) {unknown}, not among the classes {classes}")
        return {name: strategy.get(name, base[name]) for name in classes}
    if strategy == "unbalanced":
        return dict(base)
    if strategy == "balanced":
        level = majority if ratio is not None else min(base.values())
        return {name: level for name in classes}
    if strategy == "undersample":
        level = min(base.values())
        return {name: level for name in classes}
    # oversample_*: minority classes topped up to the largest class.
    level = max(base.values())
    return {name: level if name in minority else base[name] for name in classes}


def _copies(name: str, originals: Sequence[str], extra: int, kind: str,
            config: config_lib.VariantConfig) -> list[ExampleSpec]:
    """`extra` copies spread evenly: each round is a fresh seeded order of the originals."""
    if not originals:
        raise ValueError(f"class {name!r} has no original images to copy")
    tag = "gen" if kind == GENERATED else "dup"
    specs = []
    round_index = 0
    while len(specs) < extra:
        round_index += 1
        order = _permuted(originals, config.data_seed, f"copies/{name}/{round_index}")
        for source_id in order[:extra - len(specs)]:
            key = f"{source_id}#{tag}{round_index}"
            chain = ()
            if kind == GENERATED:
                # compound re-augments the previous copy of the same original, as the
                # paper's creator did when it walked its own outputs; else one step.
                chain = (tuple(f"{source_id}#gen{r}" for r in range(1, round_index + 1))
                         if config.compound else (key,))
            specs.append(ExampleSpec(key=key, label=name, source_id=source_id, kind=kind, chain=chain))
    return specs
