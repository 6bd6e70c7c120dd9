"""`VariantConfig`: the one declaration of a dataset variant's settings.

Pure Python (no TensorFlow): the tfds BuilderConfig, `prepare`, the training
config and the flags are all built from it. Its fields and defaults are the
single source of truth; `__post_init__` canonicalises and validates every field
once (normalising spellings), so two configs describing the same variant are
equal and share one canonical JSON, hash and name, which are derived from the
object and cached.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

STRATEGIES = ("balanced", "unbalanced", "undersample", "oversample_random", "oversample_augment")
ENCODINGS = ("png", "jpeg")
SOURCES = ("manual", "sample", "fashion_mnist", "tfds:<name>")
# How the cut spreads over the classes: `step` cuts the minority classes to majority // ratio;
# `exponential` is the CIFAR-LT profile (Cao et al. 2019) over the classes in `classes` order.
IMBALANCE_PROFILES = ("step", "exponential")
# Fields added after the first release, left out of the canonical JSON (so of the hash and
# name) while they hold this default: variants prepared before them keep their names.
HASHED_ONLY_WHEN_SET = {"imbalance_profile": "step"}

# Name prefix pieces are truncated so that names stay short and path-safe; the hash
# (of the canonical JSON) is what makes them unique.
_PREFIX_MAX = 48
_HASH_CHARS = 10
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


def _field(default: Any, kind: str, help_text: str, *, flag: str | None = None,
           factory: Any = None) -> Any:
    """A config field with what its command-line flag needs (`augbal_tf.flags` reads it).

    Args:
      default: the default value (for mutable defaults, pass `factory`).
      kind: how the flag spells the value: str, choice, list, names (a list whose single
        entry is a plain name), float, int, count, fraction, json, bool.
      help_text: the flag's help.
      flag: the flag name when it differs from the field name (one documented alias).
      factory: default factory for mutable defaults.
    """
    metadata = {"kind": kind, "help": help_text, "flag": flag}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class VariantConfig:
    """One dataset variant (see datasets/augbal/README.md for every field).

    Stored values are canonical: class lists are tuples, `minority` is sorted,
    transform names are augstatic's canonical names, `imbalance_ratio` a float.
    """

    source: str = _field("manual", "str", "Image source: manual (a folder, --manual_dir), sample "
                         "(the embedded Fashion-MNIST sample), fashion_mnist (the full Fashion-MNIST "
                         "of Debian's dataset-fashion-mnist; --manual_dir overrides its folder) "
                         "or tfds:<name>.")
    classes: tuple[str, ...] | None = _field(None, "list", "Classes to keep, comma-separated, "
                                             "in label order (empty: all classes of the source in its "
                                             "own order; manual folders sorted by name).")
    minority: tuple[str, ...] | None = _field(None, "list", "Minority class(es), comma-separated "
                                              "(empty: the class with the fewest training images; "
                                              "not used with --imbalance_profile=exponential).")
    imbalance_ratio: float | None = _field(None, "float", "Majority:minority ratio of the cut "
                                           "(unset: no cut, the natural counts).")
    imbalance_profile: str = _field(
        "step", "choice", "How imbalance_ratio cuts the classes: step (the minority classes to "
        "majority // ratio) or exponential (class c of C keeps floor(n_max * ratio^(-c/(C-1))), "
        "in classes order: the first class is the head, every later one a minority).")
    train_per_class: int | None = _field(None, "count", "Train images per class: int, or unset "
                                         "for all (a cap on the majority count).")
    test_per_class: int | None = _field(None, "count", "Test images per class: int, or unset for "
                                        "the largest equal size available.")
    validation_per_class: int | float = _field(0.1, "fraction", "Validation images per class "
                                               "carved from train: int, a fraction in (0, 1), or 0.")
    strategy: str | dict[str, int] = _field(
        "unbalanced", "choice", "Sampling strategy: " + ", ".join(STRATEGIES) + " (the builder JSON "
        "also takes a dict class -> count).", flag="sampling")
    augmentation: str | tuple[str, ...] | None = _field(
        None, "names", "Augmentation for oversample_augment: an augstatic name, or several "
        "comma-separated (a policy: one of them per generated image).")
    augmentation_params: dict[str, Any] = _field(
        None, "json", "JSON dict of augmentation parameters (for a policy: keyed by name).", factory=dict)
    compound: bool = _field(False, "bool", "Augment generated images again (the original's behaviour).")
    store_size: int | None = _field(None, "int", "Side of the stored images in pixels (unset: source size).")
    encoding: str = _field("png", "choice", "Encoding of the stored images: png or jpeg.")
    data_seed: int = _field(0, "int", "Seed of the dataset variant (cut, resampling, augmentation).")
    skip_corrupt: bool = _field(False, "bool", "Skip unreadable source images instead of failing.")

    def __post_init__(self):
        for name, value in _canonical_fields(self).items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> VariantConfig:
        """Builds a config from JSON-style fields (any subset), naming unknown fields.

        Raises:
          ValueError: on an unknown field or a bad value (naming field and value).
        """
        unknown = sorted(set(raw) - set(FIELD_NAMES))
        if unknown:
            raise ValueError(f"unknown augbal config field(s) {unknown}; allowed: {sorted(FIELD_NAMES)}")
        return cls(**raw)

    # Derived once per object (cached_property writes the instance dict, which a frozen
    # dataclass allows): nothing canonicalises again.
    @functools.cached_property
    def canonical_json(self) -> str:
        """The canonical JSON text (sorted keys, no spaces): what the hash covers."""
        return json.dumps(self._json_fields(), sort_keys=True, separators=(",", ":"))

    @functools.cached_property
    def hash(self) -> str:
        """First hex digits of the SHA-256 of the canonical JSON."""
        return hashlib.sha256(self.canonical_json.encode()).hexdigest()[:_HASH_CHARS]

    @functools.cached_property
    def name(self) -> str:
        """A short readable name plus the hash, e.g. `manual-oversample_augment-r8-fancypca-1a2b3c4d5e`.

        The prefix is only for humans (truncated); the hash makes names unique. Names
        match tfds' `[\\w+\\-.]` pattern and never equal a predefined config's name
        because predefined names carry no hash.
        """
        strategy = "custom" if isinstance(self.strategy, dict) else self.strategy
        parts = [self.source.replace(":", "_"), strategy]
        if self.imbalance_ratio is not None:
            parts.append(f"r{self.imbalance_ratio:g}" + ("exp" if self.imbalance_profile == "exponential" else ""))
        if self.augmentation is not None:
            parts.append("policy" if isinstance(self.augmentation, tuple) else self.augmentation.lower())
        prefix = _UNSAFE.sub("_", "-".join(parts))[:_PREFIX_MAX]
        return f"{prefix}-{self.hash}"

    def as_dict(self) -> dict[str, Any]:
        """The canonical fields as a new JSON-able dict (lists, not tuples)."""
        return json.loads(self.canonical_json)

    def _json_fields(self) -> dict[str, Any]:
        return {name: list(value) if isinstance(value, tuple) else value
                for name, value in ((name, getattr(self, name)) for name in FIELD_NAMES)
                if not (name in HASHED_ONLY_WHEN_SET and value == HASHED_ONLY_WHEN_SET[name])}

    @property
    def augmentation_names(self) -> tuple[str, ...]:
        """The transform names of `augmentation` (empty without one)."""
        if self.augmentation is None:
            return ()
        return self.augmentation if isinstance(self.augmentation, tuple) else (self.augmentation,)

    def transform_params(self, name: str) -> dict[str, Any]:
        """The params of one transform of the augmentation (or policy)."""
        if isinstance(self.augmentation, tuple):
            return dict(self.augmentation_params.get(name, {}))
        return dict(self.augmentation_params)


FIELDS = dataclasses.fields(VariantConfig)
FIELD_NAMES = tuple(field.name for field in FIELDS)


def canonicalize(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical JSON-able dict of raw fields (for callers holding a dict)."""
    return VariantConfig.from_dict(raw).as_dict()


def _canonical_fields(config: VariantConfig) -> dict[str, Any]:
    """Every field validated and normalised; raises ValueError naming field and value."""
    out: dict[str, Any] = {}
    out["source"] = _source(config.source)
    out["classes"] = _classes(config.classes)
    out["minority"] = _minority(config.minority, out["classes"])
    out["imbalance_ratio"] = _ratio(config.imbalance_ratio)
    out["imbalance_profile"] = _profile(config.imbalance_profile, out["minority"])
    out["train_per_class"] = _optional_count("train_per_class", config.train_per_class, minimum=1)
    out["test_per_class"] = _optional_count("test_per_class", config.test_per_class, minimum=1)
    out["validation_per_class"] = _validation(config.validation_per_class)
    out["strategy"] = _strategy(config.strategy, out["classes"])
    out["augmentation"], out["augmentation_params"] = _augmentation(
        config.augmentation, config.augmentation_params)
    out["compound"] = _bool("compound", config.compound)
    out["store_size"] = _optional_count("store_size", config.store_size, minimum=1)
    out["encoding"] = _choice("encoding", config.encoding, ENCODINGS)
    out["data_seed"] = _optional_count("data_seed", config.data_seed, minimum=0)
    if out["data_seed"] is None:
        raise ValueError("data_seed must be an int >= 0, got None")
    out["skip_corrupt"] = _bool("skip_corrupt", config.skip_corrupt)
    if out["strategy"] == "oversample_augment" and out["augmentation"] is None:
        raise ValueError("strategy 'oversample_augment' needs an augmentation; got augmentation=None")
    if out["compound"] and out["augmentation"] is None:
        raise ValueError("compound=True needs an augmentation; got augmentation=None")
    return out


def _source(value: Any) -> str:
    if not isinstance(value, str) or not (value in ("manual", "sample", "fashion_mnist") or
                                          (value.startswith("tfds:") and len(value) > 5)):
        raise ValueError(f"source must be 'manual', 'sample', 'fashion_mnist' or 'tfds:<name>', got {value!r}")
    return value


def _profile(value: Any, minority: tuple[str, ...] | None) -> str:
    # Without imbalance_ratio neither profile cuts (natural counts): a study's base config
    # sets the profile and each cell its ratio.
    profile = _choice("imbalance_profile", value, IMBALANCE_PROFILES)
    if profile == "exponential" and minority is not None:
        # Every class after the head is cut: the order of `classes` says which is which.
        raise ValueError(f"imbalance_profile='exponential' cuts every class after the first in "
                         f"`classes` order, so minority must be unset; got minority={list(minority)} "
                         "(order classes to choose the head instead)")
    return profile


def _classes(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if (isinstance(value, str) or not isinstance(value, (list, tuple)) or not value
            or not all(isinstance(name, str) and name for name in value)):
        raise ValueError(f"classes must be a non-empty list of class names or None, got {value!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"classes must not repeat a name, got {list(value)!r}")
    if len(value) < 2:
        raise ValueError(f"classes needs at least 2 classes, got {list(value)!r}")
    return tuple(value)


def _minority(value: Any, classes: tuple[str, ...] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = [value] if isinstance(value, str) else value
    if (not isinstance(names, (list, tuple)) or not names
            or not all(isinstance(name, str) and name for name in names)):
        raise ValueError(f"minority must be a class name or a non-empty list of names, got {value!r}")
    if classes is not None:
        missing = [name for name in names if name not in classes]
        if missing:
            raise ValueError(f"minority class(es) {missing} are not in classes {list(classes)}")
    if len(set(names)) != len(names):
        raise ValueError(f"minority must not repeat a name, got {value!r}")
    # Keep the user's order out of the hash: the minority set is what matters.
    return tuple(sorted(names))


def _ratio(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"imbalance_ratio must be a number >= 1 or None, got {value!r}")
    if value < 1:
        raise ValueError(f"imbalance_ratio must be >= 1 (majority:minority), got {value!r}")
    return float(value)


def _optional_count(field: str, value: Any, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{field} must be an int >= {minimum} or None, got {value!r}")
    return value


def _validation(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("validation_per_class must be an int >= 0 or a fraction in (0, 1), "
                         f"got {value!r}")
    if isinstance(value, float) and value.is_integer() and value >= 1:
        value = int(value)
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"validation_per_class must be >= 0, got {value!r}")
        return value
    if not 0 < value < 1:
        raise ValueError(f"validation_per_class as a fraction must be in (0, 1), got {value!r}")
    return float(value)


def _strategy(value: Any, classes: tuple[str, ...] | None) -> str | dict[str, int]:
    if isinstance(value, Mapping):
        if not value:
            raise ValueError("strategy as a dict needs at least one class -> count entry, got {}")
        out = {}
        for name, count in value.items():
            if classes is not None and name not in classes:
                raise ValueError(f"strategy names class {name!r}, which is not in classes {list(classes)}")
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ValueError(f"strategy count for class {name!r} must be an int >= 1, got {count!r}")
            out[str(name)] = count
        return dict(sorted(out.items()))
    return _choice("strategy", value, STRATEGIES + ("a dict class -> count",))


def _choice(field: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{field} must be one of {list(allowed)}, got {value!r}")
    return value


def _bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{field} must be true or false, got {value!r}")
    return value


def _augmentation(value: Any, params: Any) -> tuple[str | tuple[str, ...] | None, dict[str, Any]]:
    """One name takes flat params; a list (policy) takes params keyed by name."""
    if not isinstance(params, Mapping):
        raise ValueError(f"augmentation_params must be a dict, got {params!r}")
    if value is None or value == "" or value == [] or value == ():
        if params:
            raise ValueError(f"augmentation_params given without an augmentation: {dict(params)!r}")
        return None, {}
    is_policy = not isinstance(value, str)
    names = list(value) if is_policy and isinstance(value, (list, tuple)) else [value]
    if not all(isinstance(name, str) and name for name in names):
        raise ValueError(f"augmentation must be an augstatic name or a list of names, got {value!r}")
    if is_policy:
        extra = sorted(set(params) - set(names))
        if extra:
            raise ValueError(f"augmentation_params for a policy must be keyed by its names {names}; "
                             f"got keys {extra}")
    canonical_names, canonical_params = [], {}
    for name in names:
        own = params.get(name, {}) if is_policy else params
        if not isinstance(own, Mapping):
            raise ValueError(f"augmentation_params[{name!r}] must be a dict, got {own!r}")
        transform = create_transform(name, own)
        canonical_names.append(transform.name)
        if is_policy and own:
            canonical_params[transform.name] = json.loads(json.dumps(dict(own), sort_keys=True))
    if len(set(canonical_names)) != len(canonical_names):
        raise ValueError(f"augmentation policy repeats a transform: {names!r}")
    if not is_policy:
        return canonical_names[0], json.loads(json.dumps(dict(params), sort_keys=True))
    return tuple(canonical_names), canonical_params


def create_transform(name: str, params: Mapping[str, Any]):
    """Creates an augstatic transform, turning its errors into ones naming the config fields."""
    # Imported here so that config checks that need no augmentation stay light.
    import augstatic  # pylint: disable=import-outside-toplevel
    try:
        return augstatic.create(name, **dict(params))
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"augmentation {name!r} with augmentation_params {dict(params)!r} "
                         f"is not valid: {error}") from error
