"""The study's grid: typed cells built from the study flags.

A cell is one training run: its kind (a baseline, an augmentation, a remedy of
#13 or an online augmentation of #14), the name within the kind, the
imbalance ratio (`None` = the natural counts), the seed, and the full training
config. Strings are made from a cell only by `Cell.label` (the results.csv
`cell` column), `Cell.ratio_label` and `cell_workdir` (its folder).

Remedy cells are `remedy:<remedy>` (unbalanced data + the remedy) or, combined,
`remedy:<Augmentation>+<remedy>`: the augmentation cell's data (oversample_augment
with that transform) trained with the remedy, e.g. `remedy:FancyPCA+logit_adjusted`.
Every cell is compared with the unbalanced baseline of its seed.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from augbal_tf import config as config_lib
from augbal_tf import study_effective, study_stats

BASELINE, AUGMENTATION, REMEDY, ONLINE = "baseline", "aug", "remedy", "online"
KINDS = (BASELINE, AUGMENTATION, REMEDY, ONLINE)

# Every baseline, once: its dataset fields and training fields. `unbalanced` is the
# reference of every comparison and always runs.
BASELINES: dict[str, tuple[dict, dict]] = {
    "balanced": ({"strategy": "balanced"}, {}),
    "unbalanced": ({"strategy": "unbalanced"}, {}),
    "undersample": ({"strategy": "undersample"}, {}),
    "oversample_random": ({"strategy": "oversample_random"}, {}),
    "class_weight": ({"strategy": "unbalanced"}, {"class_weight": "balanced"}),
}
REFERENCE_BASELINE = "unbalanced"

# Every remedy cell (#13): unbalanced sampling + these training fields, compared with the
# unbalanced baseline of the same seed. Every other training flag comes from the base, as for
# the baselines: a base --loss=focal trains remedy:mixup with focal loss, as it trains the
# unbalanced baseline it is compared with (remedy:logit_adjusted sets its own loss).
REMEDIES: dict[str, dict] = {
    "logit_adjusted": {"loss": "logit_adjusted"},
    "balanced_softmax": {"loss": "balanced_softmax"},
    "ldam_drw": {"loss": "ldam"},  # + drw_epoch at DRW_FRACTION of --epochs (`remedy_fields`).
    "focal": {"loss": "focal"},
    "class_balanced": {"loss": "class_balanced"},
    "mixup": {"mix": "mixup"},
    "remix": {"mix": "remix"},
    "posthoc": {"posthoc_tau": 1.0},
    "crt": {},  # + crt_epochs at CRT_FRACTION of --epochs, after them (`remedy_fields`).
    "tau_norm": {"tau_norm": True, "tau_norm_tau": None},  # tau chosen on the validation split.
    "drs": {"sampler": "class_balanced"},  # + drs_epoch at DRW_FRACTION of --epochs.
}
# Cao et al. re-weight (and re-sample) from epoch 160 of 200.
DRW_FRACTION = 0.8
# Kang et al. re-train the classifier 10 epochs after 90 of joint training: ~0.1 of them, added.
CRT_FRACTION = 0.1
# `<augmentation>+<remedy>` in --remedies: augmentation oversampling combined with a remedy.
COMBINE = "+"
# Every cell trains without online augmentation or re-sampling unless it is an online cell.
_NO_ONLINE = {"online_augmentation": "", "online_augmentation_params": "", "online_classes": "all",
              "sampler": "none"}


# `<Transform>+<pairing>` in --online_augmentations: the online transform paired with a way to
# see the minority more often (an online policy alone on unbalanced data adds no minority
# signal: quickstart_online's RandAugment cells all called every image the majority class).
# Each pairing: its dataset fields and training fields beside the online transform.
ONLINE_PAIRINGS: dict[str, tuple[dict, dict]] = {
    "class_balanced": ({"strategy": "unbalanced"}, {"sampler": "class_balanced"}),
    "square_root": ({"strategy": "unbalanced"}, {"sampler": "square_root"}),
    "oversample_random": ({"strategy": "oversample_random"}, {}),
    # Random oversampling, the transform applied to the minority classes only (albumentations#1661).
    "minority": ({"strategy": "oversample_random"}, {"online_classes": "minority"}),
}


def online_data_fields(name: str) -> dict:
    """The dataset fields of online cell `name`: unbalanced, or its pairing's (`RandAugment+minority`)."""
    _, _, pairing = name.partition(COMBINE)
    return ONLINE_PAIRINGS[pairing][0] if pairing else {"strategy": "unbalanced"}


def online_fields(name: str) -> dict:
    """The training fields of online cell `name` (#14): the transform applied online to all classes
    (`RandAugment`), or with its pairing's sampler or classes (`RandAugment+class_balanced`)."""
    transform, _, pairing = name.partition(COMBINE)
    return {**_NO_ONLINE, "online_augmentation": transform, **(ONLINE_PAIRINGS[pairing][1] if pairing else {})}


def split_remedy(name: str) -> tuple[str | None, str]:
    """(augmentation or None, remedy) of a remedy cell name: `logit_adjusted` or `FancyPCA+logit_adjusted`."""
    if COMBINE in name:
        augmentation, remedy = name.rsplit(COMBINE, 1)
        return augmentation, remedy
    return None, name


def remedy_fields(name: str, epochs: int) -> dict:
    """The training fields remedy cell `name` (or the remedy of `<aug>+<remedy>`) sets, for `epochs` epochs.

    Only the remedy's own fields: the cell takes every other training flag from the base.

    Raises:
      ValueError: for an unknown name, or ldam_drw/drs with fewer than 2 epochs (no epoch to switch at).
    """
    name = split_remedy(name)[1]
    if name not in REMEDIES:
        raise ValueError(f"remedy {name!r} is not valid; allowed: {', '.join(REMEDIES)}")
    fields = dict(REMEDIES[name])
    if name in ("ldam_drw", "drs"):
        if epochs < 2:
            raise ValueError(f"--remedies={name} needs --epochs >= 2 (its switch is at {DRW_FRACTION:.0%} of "
                             f"them), got --epochs={epochs}")
        fields["drw_epoch" if name == "ldam_drw" else "drs_epoch"] = min(max(1, int(DRW_FRACTION * epochs)),
                                                                         epochs - 1)
    if name == "crt":
        fields["crt_epochs"] = max(1, round(CRT_FRACTION * epochs))
    return fields


def remedy_data_fields(name: str, base: config_lib.TrainConfig) -> dict:
    """The dataset fields of remedy cell `name`: unbalanced, or `<aug>+`'s augmentation oversampling."""
    augmentation = split_remedy(name)[0]
    if augmentation is None:
        return {"strategy": "unbalanced"}
    return {"strategy": "oversample_augment", "augmentation": augmentation,
            "augmentation_params": base.data.augmentation_params}


@dataclasses.dataclass(frozen=True)
class Cell:
    """One training run of the grid."""

    kind: str
    name: str
    ratio: float | None
    seed: int
    config: config_lib.TrainConfig
    workdir: str

    @property
    def label(self) -> str:
        """`baseline:<name>`, `aug:<Transform>`, `remedy:<name>` or `online:<Transform>`: the results.csv `cell`."""
        return f"{self.kind}:{self.name}"

    @property
    def ratio_label(self) -> str:
        """`8`, `2.5` or `natural`, as in results.csv and the report."""
        return study_stats.ratio_label(self.ratio)

    def describe(self) -> str:
        """For progress lines: `ratio 20 baseline:unbalanced seed 3`."""
        return f"ratio {self.ratio_label} {self.label} seed {self.seed}"


@dataclasses.dataclass(frozen=True)
class Grid:
    """What the study varies; every other setting comes from the base training config."""

    ratios: tuple[float | None, ...] = (8.0,)
    baselines: tuple[str, ...] = ("balanced", "unbalanced")
    # Transform names, and `study_effective.EffectivePolicy` entries (a policy from a finished study).
    augmentations: tuple[str | study_effective.EffectivePolicy, ...] = ()
    seeds: tuple[int, ...] = (0, 1, 2)
    remedies: tuple[str, ...] = ()
    # Online augmentation cells (#14): unbalanced sampling + the transform applied every epoch.
    online_augmentations: tuple[str, ...] = ()


def cell_workdir(study_dir: str, kind: str, name: str, ratio: float | None, seed: int) -> str:
    """`<study_dir>/ratio_<r>/<kind>_<name>/seed_<s>`."""
    return os.path.join(study_dir, f"ratio_{study_stats.ratio_label(ratio)}", f"{kind}_{name}", f"seed_{seed}")


def expand(grid: Grid, base: config_lib.TrainConfig, study_dir: str, export_cells: bool) -> list[Cell]:
    """Every cell of the study, ratio by ratio and seed by seed.

    Within a seed the cells sharing a dataset variant (unbalanced and class_weight)
    are adjacent, so `--keep_datasets=false` can delete each variant early.

    Raises:
      ValueError: naming the cell, when its fields conflict with the base flags (e.g.
        remedy:crt with a base --loss=class_balanced).
    """
    cells = []
    for ratio in grid.ratios:
        for seed in grid.seeds:
            named = [(BASELINE, name, *BASELINES[name]) for name in grid.baselines]
            named += [(AUGMENTATION, *_augmentation_fields(entry, base), {}) for entry in grid.augmentations]
            named += [(REMEDY, name, remedy_data_fields(name, base), remedy_fields(name, base.epochs))
                      for name in grid.remedies]
            named += [(ONLINE, name, online_data_fields(name), online_fields(name))
                      for name in grid.online_augmentations]
            for kind, name, data_fields, train_fields in named:
                try:
                    data = dataclasses.replace(base.data, imbalance_ratio=ratio, data_seed=seed,
                                               **{"augmentation": None, "augmentation_params": {}, **data_fields})
                    config = dataclasses.replace(base, data=data, seed=seed, export=export_cells, overwrite=False,
                                                 **{"class_weight": "none", **_NO_ONLINE, **train_fields})
                except ValueError as error:
                    raise ValueError(f"cell {kind}:{name} of the study: {error}") from None
                cells.append(Cell(kind, name, ratio, seed, config, cell_workdir(study_dir, kind, name, ratio, seed)))
    return cells


def _augmentation_fields(entry, base: config_lib.TrainConfig) -> tuple[str, dict]:
    """(cell name, dataset fields) of an augmentation cell: one transform, or a policy from a study."""
    if isinstance(entry, study_effective.EffectivePolicy):
        # A list of names is the builder's policy: one of them per generated image, seeded per example.
        return entry.name, {"strategy": "oversample_augment", "augmentation": entry.transforms,
                            "augmentation_params": {}}
    return entry, {"strategy": "oversample_augment", "augmentation": entry,
                   "augmentation_params": base.data.augmentation_params}


def resolve_augmentations(names: Sequence[str]) -> tuple[str | study_effective.EffectivePolicy, ...]:
    """Canonical transform names; `paper` expands to the paper's 33, `all` to every one,
    `effective_from:<study_dir>` to a policy of the transforms that study found effective.

    Raises:
      ValueError: for an unknown name (the message lists close matches), or an
        `effective_from:` folder that is not a finished study with an effective augmentation.
    """
    import augstatic  # Imported here: only studies with augmentations need it.

    resolved = []
    for name in names:
        key = name.strip()
        if not key:
            continue
        if study_effective.is_spec(key):
            expanded = (study_effective.resolve(key),)
        elif key.lower() == "paper":
            expanded = augstatic.PAPER_TRANSFORMS
        elif key.lower() == "all":
            expanded = augstatic.available()
        else:
            try:
                expanded = (augstatic.lookup(key).__name__,)
            except ValueError as error:
                raise ValueError(f"--augmentations: {error}") from None
        resolved += [n for n in expanded if n not in resolved]
    return tuple(resolved)


def resolve_online_augmentations(names: Sequence[str]) -> tuple[str, ...]:
    """Canonical online cell names of `--online_augmentations`: an augstatic name
    (randaugment -> RandAugment) or `<name>+<pairing>` with a pairing of ONLINE_PAIRINGS
    (randaugment+class_balanced -> RandAugment+class_balanced).

    Raises:
      ValueError: naming --online_augmentations for an unknown name or pairing.
    """
    import augstatic  # Imported here: only studies with online cells need it.

    resolved = []
    for name in names:
        key = name.strip()
        if not key:
            continue
        transform, combined, pairing = key.partition(COMBINE)
        pairing = pairing.strip().lower()
        if combined and pairing not in ONLINE_PAIRINGS:
            raise ValueError(f"--online_augmentations: {key!r} pairs the transform with {pairing!r}; allowed "
                             f"after {COMBINE!r}: {', '.join(ONLINE_PAIRINGS)}")
        try:
            canonical = augstatic.lookup(transform.strip()).__name__ + (COMBINE + pairing if combined else "")
        except ValueError as error:
            raise ValueError(f"--online_augmentations: {error}") from None
        if canonical not in resolved:
            resolved.append(canonical)
    return tuple(resolved)


def resolve_remedies(names: Sequence[str]) -> tuple[str, ...]:
    """Remedy cell names (`--remedies`): the plain remedies in canonical order (`all`: every one),
    then the combined cells `<augmentation>+<remedy>` in the given order, the augmentation's
    name canonical (`fancypca+logit_adjusted` -> `FancyPCA+logit_adjusted`).

    Raises:
      ValueError: for a name that is not a remedy, or a combined cell whose augmentation
        is unknown or whose remedy is `all` or unknown.
    """
    elements = [name.strip() for name in names if name.strip()]
    plain = {name.lower() for name in elements if COMBINE not in name}
    allowed = f"allowed: {', '.join(REMEDIES)}, all, or <augmentation>{COMBINE}<remedy>"
    unknown = sorted(plain - set(REMEDIES) - {"all"})
    if unknown:
        raise ValueError(f"--remedies={','.join(names)!r} has unknown name(s) {unknown}; {allowed}")
    resolved = list(REMEDIES) if "all" in plain else [name for name in REMEDIES if name in plain]
    for element in elements:
        if COMBINE not in element:
            continue
        augmentation, remedy = split_remedy(element)
        remedy = remedy.strip().lower()
        if remedy not in REMEDIES:
            raise ValueError(f"--remedies: {element!r} combines with {remedy!r}, which is not a remedy; {allowed}")
        import augstatic  # pylint: disable=import-outside-toplevel (only combined cells need it)
        try:
            augmentation = augstatic.lookup(augmentation.strip()).__name__
        except ValueError as error:
            raise ValueError(f"--remedies: {element!r}: {error}") from None
        name = f"{augmentation}{COMBINE}{remedy}"
        if name not in resolved:
            resolved.append(name)
    return tuple(resolved)


def resolve_baselines(names: Sequence[str]) -> tuple[str, ...]:
    """Baseline names in canonical order, always including `unbalanced` (the reference).

    Raises:
      ValueError: for a name that is not a baseline.
    """
    chosen = {name.strip().lower() for name in names if name.strip()}
    unknown = sorted(chosen - set(BASELINES))
    if unknown:
        raise ValueError(f"--baselines={','.join(names)!r} has unknown name(s) {unknown}; "
                         f"allowed: {', '.join(BASELINES)}")
    chosen.add(REFERENCE_BASELINE)
    return tuple(name for name in BASELINES if name in chosen)


def parse_seeds(values: Sequence[str | int]) -> tuple[int, ...]:
    """Distinct non-negative integer seeds, in the given order.

    Raises:
      ValueError: for a value that is not an integer >= 0, or no seeds at all.
    """
    seeds = []
    for value in values:
        try:
            seed = int(str(value).strip())
        except ValueError:
            raise ValueError(f"--seeds has {value!r}; allowed: integers >= 0, comma-separated") from None
        if seed < 0:
            raise ValueError(f"--seeds has {value!r}; allowed: integers >= 0, comma-separated")
        if seed not in seeds:
            seeds.append(seed)
    if not seeds:
        raise ValueError("--seeds is empty; give at least one seed (3 or more for intervals)")
    return tuple(seeds)


def parse_ratios(values: Sequence[str | float]) -> tuple[float | None, ...]:
    """Distinct ratios (None for `natural`), in the given order; the one check of `--ratios`.

    Raises:
      ValueError: for a value that is neither a number >= 1 nor `natural`, or none.
    """
    ratios: list[float | None] = []
    for value in values:
        if isinstance(value, str) and not value.strip():
            continue
        try:
            label = study_stats.ratio_label(value)
        except ValueError as error:
            raise ValueError(f"--ratios: {error}") from None
        ratio = None if label == study_stats.NATURAL_RATIO else float(value)
        if ratio not in ratios:
            ratios.append(ratio)
    if not ratios:
        raise ValueError("--ratios is empty; give numbers >= 1 or 'natural'")
    return tuple(ratios)
