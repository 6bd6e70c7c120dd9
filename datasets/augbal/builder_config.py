"""`AugbalConfig`: the tfds BuilderConfig built from the JSON fields of `config.DEFAULTS`.

`tfds build datasets/augbal --config='{json}'` calls `AugbalConfig(**json)`; the
fields are canonicalised at construction (so bad values fail before any build)
and the name is `config.config_name` (readable prefix + hash) unless given.
"""

import dataclasses
from typing import Any

import tensorflow_datasets as tfds

from augbal_datasets.augbal import config as config_lib


@dataclasses.dataclass(eq=False)
class AugbalConfig(tfds.core.BuilderConfig):
    """One dataset variant; see datasets/augbal/README.md for every field."""

    name: str = ""
    source: str = "manual"
    classes: list[str] | None = None
    minority: str | list[str] | None = None
    imbalance_ratio: float | None = None
    train_per_class: int | None = None
    test_per_class: int | None = None
    validation_per_class: int | float = 0.1
    strategy: str | dict[str, int] = "unbalanced"
    augmentation: str | list[str] | None = None
    augmentation_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    compound: bool = False
    store_size: int | None = None
    encoding: str = "png"
    data_seed: int = 0
    skip_corrupt: bool = False

    def __post_init__(self):
        canonical = config_lib.canonicalize({field: getattr(self, field) for field in config_lib.DEFAULTS})
        for field, value in canonical.items():
            setattr(self, field, value)
        if not self.name:
            self.name = config_lib.config_name(canonical)
        if not self.description:
            self.description = f"augbal variant {config_lib.canonical_json(canonical)}"

    def as_dict(self) -> dict[str, Any]:
        """The canonical config fields (what the name's hash covers)."""
        return {field: getattr(self, field) for field in config_lib.DEFAULTS}


# Kept small on purpose: `tfds build datasets/augbal` without --config builds all of
# them. Both use the embedded sample, so they build offline in seconds.
PREDEFINED = [
    AugbalConfig(name="sample", source="sample",
                 description="The embedded Fashion-MNIST sample with its natural (equal) counts."),
    AugbalConfig(name="sample_r4_horizontalflip", source="sample", minority="shirt",
                 imbalance_ratio=4, strategy="oversample_augment", augmentation="HorizontalFlip",
                 description="Sample, shirt cut to 1:4 and topped up with horizontal flips."),
]
