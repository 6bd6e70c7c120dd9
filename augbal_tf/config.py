"""`TrainConfig`: every training and dataset setting of one run, validated once.

Field names equal flag names (`augbal_tf.flags`). Library code takes a
`TrainConfig`; only entry points read `FLAGS` (through `from_flags`).
"""

import dataclasses
import hashlib
import json
import math
import os
from typing import Any

SAMPLING_STRATEGIES = ("balanced", "unbalanced", "undersample", "oversample_random", "oversample_augment")
DISTRIBUTION_STRATEGIES = ("auto", "mirrored", "multi_worker", "one_device")
SELECTIONS = ("validation", "test")
CLASS_WEIGHTS = ("none", "balanced")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SOURCES = ("manual", "sample")

# Fields that do not change what a run computes: excluded from the flags hash.
UNHASHED_FIELDS = ("overwrite", "cpu_devices")
# ResNet downsamples by 32: smaller inputs leave no spatial extent for the last stage.
MIN_IMAGE_SIZE = 32


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """All settings of one training run (see `augbal_tf.flags` for their meaning)."""

    # Run.
    overwrite: bool = False
    export: bool = True
    # Dataset (the builder's config fields; `sampling` is the builder's `strategy`).
    data_dir: str | None = None
    manual_dir: str | None = None
    source: str = "sample"
    classes: tuple[str, ...] = ()
    minority: tuple[str, ...] = ()
    imbalance_ratio: float | None = None
    sampling: str = "unbalanced"
    augmentation: tuple[str, ...] = ()
    augmentation_params: str = "{}"
    compound: bool = False
    train_per_class: int | None = None
    test_per_class: int | None = None
    validation_per_class: int | float = 0.1
    store_size: int | None = None
    encoding: str = "png"
    data_seed: int = 0
    skip_corrupt: bool = False
    # Model.
    model: str = "resnet18"
    image_size: int = 224
    head_width: int = 512
    dropout: float = 0.2
    freeze_backbone: bool = False
    # Training.
    seed: int = 0
    epochs: int = 100
    batch_size: int = 64
    optimizer: str = "adam"
    learning_rate: float = 3e-4
    momentum: float = 0.9
    weight_decay: float = 0.0
    patience: int = 11
    selection: str = "validation"
    class_weight: str = "none"
    cache: bool = True
    log_images: int = 16
    # Execution.
    distribution_strategy: str = "auto"
    cpu_devices: int = 0
    mixed_precision: bool = False
    jit_compile: bool = False
    deterministic: bool = True

    def __post_init__(self):
        validate(self)


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"--{name}={value!r} is not valid; allowed: {', '.join(allowed)}")


def _check_positive(name: str, value: Any, minimum: float = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ValueError(f"--{name}={value!r} is not valid; must be a number >= {minimum}")


def validate(config: TrainConfig) -> None:
    """Checks every field; raises ValueError naming the flag, its value and what is allowed."""
    _check_choice("sampling", config.sampling, SAMPLING_STRATEGIES)
    _check_choice("distribution_strategy", config.distribution_strategy, DISTRIBUTION_STRATEGIES)
    _check_choice("selection", config.selection, SELECTIONS)
    _check_choice("class_weight", config.class_weight, CLASS_WEIGHTS)
    _check_choice("optimizer", config.optimizer, OPTIMIZERS)
    _check_choice("encoding", config.encoding, ("png", "jpeg"))
    if config.source not in SOURCES and not config.source.startswith("tfds:"):
        raise ValueError(f"--source={config.source!r} is not valid; allowed: manual, sample, tfds:<name>")
    if config.source == "manual" and not config.manual_dir:
        raise ValueError("--source=manual needs --manual_dir (the folder of the source images)")
    for name in ("epochs", "batch_size", "head_width"):
        _check_positive(name, getattr(config, name))
    _check_positive("image_size", config.image_size, MIN_IMAGE_SIZE)
    for name in ("patience", "cpu_devices", "log_images", "data_seed", "seed"):
        _check_positive(name, getattr(config, name), 0)
    if not 0.0 <= config.dropout < 1.0:
        raise ValueError(f"--dropout={config.dropout!r} is not valid; must be in [0, 1)")
    if not (config.learning_rate > 0 and math.isfinite(config.learning_rate)):
        raise ValueError(f"--learning_rate={config.learning_rate!r} is not valid; must be > 0")
    if config.imbalance_ratio is not None and not config.imbalance_ratio >= 1:
        raise ValueError(f"--imbalance_ratio={config.imbalance_ratio!r} is not valid; must be >= 1 or unset")
    if config.selection == "validation" and config.validation_per_class == 0:
        raise ValueError("--selection=validation needs a validation split, but --validation_per_class=0; "
                         "set --validation_per_class > 0 or --selection=test")
    if config.jit_compile and config.deterministic:
        raise ValueError("--jit_compile needs --nodeterministic: XLA has no deterministic MaxPool gradient, "
                         "so op determinism makes the compiled training step fail")
    try:
        params = json.loads(config.augmentation_params)
    except json.JSONDecodeError as error:
        raise ValueError(f"--augmentation_params={config.augmentation_params!r} is not valid JSON: {error}")
    if not isinstance(params, dict):
        raise ValueError(f"--augmentation_params={config.augmentation_params!r} must be a JSON object")
    if config.sampling == "oversample_augment" and not config.augmentation:
        raise ValueError("--sampling=oversample_augment needs --augmentation (one or more transform names)")


def _parse_count(name: str, text: str | None, allow_fraction: bool) -> int | float | None:
    """Parses an int count (or a fraction in (0, 1) when allowed) from a flag string."""
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if value.is_integer() and value >= 0:
        return int(value)
    if allow_fraction and 0 < value < 1:
        return value
    allowed = "an int >= 0 or a fraction in (0, 1)" if allow_fraction else "an int >= 0"
    raise ValueError(f"--{name}={text!r} is not valid; must be {allowed}")


def default_data_dir() -> str:
    """`$AUGBAL_WORKSPACE/tfds`, with AUGBAL_WORKSPACE defaulting to ~/augbal_workspace."""
    workspace = os.environ.get("AUGBAL_WORKSPACE") or os.path.join("~", "augbal_workspace")
    return os.path.join(os.path.expanduser(workspace), "tfds")


def from_flags(flag_values) -> TrainConfig:
    """Builds a validated TrainConfig from parsed absl flag values (e.g. `flags.FLAGS`)."""
    values = {}
    for field in dataclasses.fields(TrainConfig):
        value = flag_values[field.name].value
        if isinstance(value, list):
            value = tuple(item.strip() for item in value if item.strip())
        values[field.name] = value
    values["train_per_class"] = _parse_count("train_per_class", values["train_per_class"], False)
    values["test_per_class"] = _parse_count("test_per_class", values["test_per_class"], False)
    validation = _parse_count("validation_per_class", values["validation_per_class"], True)
    values["validation_per_class"] = 0 if validation is None else validation
    # Flagfiles may say ~/...; absl does not expand it.
    values["data_dir"] = os.path.expanduser(values["data_dir"]) if values["data_dir"] else default_data_dir()
    if values["manual_dir"]:
        values["manual_dir"] = os.path.expanduser(values["manual_dir"])
    return TrainConfig(**values)


def _minority_value(minority: tuple[str, ...]) -> str | list[str] | None:
    if not minority:
        return None
    return minority[0] if len(minority) == 1 else list(minority)


def dataset_config(config: TrainConfig) -> dict[str, Any]:
    """The augbal builder config dict (`prepare.prepare_variant`) of a training config."""
    augmentation = list(config.augmentation)
    if not augmentation:
        augmentation = None
    elif len(augmentation) == 1:
        augmentation = augmentation[0]  # One name; a list is a policy (one transform per image).
    return {
        "source": config.source,
        "classes": list(config.classes) or None,
        "minority": _minority_value(config.minority),
        "imbalance_ratio": config.imbalance_ratio,
        "train_per_class": config.train_per_class,
        "test_per_class": config.test_per_class,
        "validation_per_class": config.validation_per_class,
        "strategy": config.sampling,
        "augmentation": augmentation,
        "augmentation_params": json.loads(config.augmentation_params),
        "compound": config.compound,
        "store_size": config.store_size,
        "encoding": config.encoding,
        "data_seed": config.data_seed,
        "skip_corrupt": config.skip_corrupt,
    }


def to_dict(config: TrainConfig) -> dict[str, Any]:
    """JSON-able dict of every field (tuples become lists)."""
    return {key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(config).items()}


def flags_hash(config: TrainConfig) -> str:
    """sha256 of the resolved flags that change what a run computes."""
    hashed = {key: value for key, value in to_dict(config).items() if key not in UNHASHED_FIELDS}
    return hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()


def flag_lines(config: TrainConfig, workdir: str) -> list[str]:
    """A flagfile (one `--name=value` a line) that reproduces the run."""
    lines = [f"--workdir={workdir}"]
    for key, value in to_dict(config).items():
        if value is None or key == "overwrite":
            continue  # Unset flags keep their default of None; a rerun must not wipe the run.
        if isinstance(value, bool):
            lines.append(f"--{key}" if value else f"--no{key}")
        elif isinstance(value, list):
            lines.append(f"--{key}={','.join(value)}")
        else:
            lines.append(f"--{key}={value}")
    return lines
