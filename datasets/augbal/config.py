"""The augbal variant config: defaults, validation, canonical form and config name.

Pure Python (no TensorFlow): the builder, `prepare` and the tests share it. A
config is a plain dict of the fields in `DEFAULTS`; `canonicalize` fills the
defaults, checks every field once and normalises spellings, so that two dicts
describing the same variant give the same canonical JSON, hash and name.
"""

import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

STRATEGIES = ("balanced", "unbalanced", "undersample", "oversample_random", "oversample_augment")
ENCODINGS = ("png", "jpeg")

DEFAULTS: dict[str, Any] = {
    "source": "manual",
    "classes": None,               # None = every class of the source, sorted by name
    "minority": None,              # None = the class with the fewest training images
    "imbalance_ratio": None,       # None = keep the natural counts
    "train_per_class": None,       # cap on the majority count; None = no cap
    "test_per_class": None,        # None = the largest equal size available
    "validation_per_class": 0.1,   # int, or a fraction of the smallest class
    "strategy": "unbalanced",
    "augmentation": None,          # augstatic name, or a list = policy (one per image)
    "augmentation_params": {},
    "compound": False,
    "store_size": None,
    "encoding": "png",
    "data_seed": 0,
    "skip_corrupt": False,
}

# Name prefix pieces are truncated so that names stay short and path-safe; the hash
# (of the canonical JSON) is what makes them unique.
_PREFIX_MAX = 48
_HASH_CHARS = 10
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


def canonicalize(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Fills defaults, validates every field and normalises spellings.

    Args:
      raw: config fields (any subset of `DEFAULTS`).

    Returns:
      A new dict with every field of `DEFAULTS`, JSON-able and canonical.

    Raises:
      ValueError: on an unknown field or a bad value (naming field and value).
    """
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown augbal config field(s) {unknown}; allowed: {sorted(DEFAULTS)}")
    config = {**DEFAULTS, **raw}
    out: dict[str, Any] = {}
    out["source"] = _source(config["source"])
    out["classes"] = _classes(config["classes"])
    out["minority"] = _minority(config["minority"], out["classes"])
    out["imbalance_ratio"] = _ratio(config["imbalance_ratio"])
    out["train_per_class"] = _optional_count("train_per_class", config["train_per_class"], minimum=1)
    out["test_per_class"] = _optional_count("test_per_class", config["test_per_class"], minimum=1)
    out["validation_per_class"] = _validation(config["validation_per_class"])
    out["strategy"] = _strategy(config["strategy"], out["classes"])
    out["augmentation"], out["augmentation_params"] = _augmentation(
        config["augmentation"], config["augmentation_params"])
    out["compound"] = _bool("compound", config["compound"])
    out["store_size"] = _optional_count("store_size", config["store_size"], minimum=1)
    out["encoding"] = _choice("encoding", config["encoding"], ENCODINGS)
    out["data_seed"] = _optional_count("data_seed", config["data_seed"], minimum=0)
    if out["data_seed"] is None:
        raise ValueError("data_seed must be an int >= 0, got None")
    out["skip_corrupt"] = _bool("skip_corrupt", config["skip_corrupt"])
    if out["strategy"] == "oversample_augment" and out["augmentation"] is None:
        raise ValueError("strategy 'oversample_augment' needs an augmentation; got augmentation=None")
    if out["compound"] and out["augmentation"] is None:
        raise ValueError("compound=True needs an augmentation; got augmentation=None")
    return out


def canonical_json(config: Mapping[str, Any]) -> str:
    """The canonical JSON text of a config (sorted keys, no spaces)."""
    return json.dumps(canonicalize(config), sort_keys=True, separators=(",", ":"))


def config_hash(config: Mapping[str, Any]) -> str:
    """First hex digits of the SHA-256 of the canonical JSON."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:_HASH_CHARS]


def config_name(config: Mapping[str, Any]) -> str:
    """A short readable name plus the config hash, e.g. `manual-oversample_augment-r8-horizontalflip-1a2b3c4d5e`.

    The prefix is only for humans (truncated); the hash makes names unique. Names
    match tfds' `[\\w+\\-.]` pattern and never equal a predefined config's name
    because predefined names carry no hash.
    """
    canonical = canonicalize(config)
    strategy = canonical["strategy"]
    if isinstance(strategy, dict):
        strategy = "custom"
    parts = [canonical["source"].replace(":", "_"), strategy]
    if canonical["imbalance_ratio"] is not None:
        parts.append(f"r{canonical['imbalance_ratio']:g}")
    augmentation = canonical["augmentation"]
    if augmentation is not None:
        parts.append("policy" if isinstance(augmentation, list) else augmentation.lower())
    prefix = _UNSAFE.sub("_", "-".join(parts))[:_PREFIX_MAX]
    return f"{prefix}-{config_hash(canonical)}"


def _source(value: Any) -> str:
    if not isinstance(value, str) or not (value in ("manual", "sample") or
                                          (value.startswith("tfds:") and len(value) > 5)):
        raise ValueError(f"source must be 'manual', 'sample' or 'tfds:<name>', got {value!r}")
    return value


def _classes(value: Any) -> list[str] | None:
    if value is None:
        return None
    if (isinstance(value, str) or not isinstance(value, (list, tuple)) or not value
            or not all(isinstance(name, str) and name for name in value)):
        raise ValueError(f"classes must be a non-empty list of class names or None, got {value!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"classes must not repeat a name, got {list(value)!r}")
    if len(value) < 2:
        raise ValueError(f"classes needs at least 2 classes, got {list(value)!r}")
    return list(value)


def _minority(value: Any, classes: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    names = [value] if isinstance(value, str) else value
    if (not isinstance(names, (list, tuple)) or not names
            or not all(isinstance(name, str) and name for name in names)):
        raise ValueError(f"minority must be a class name or a non-empty list of names, got {value!r}")
    if classes is not None:
        missing = [name for name in names if name not in classes]
        if missing:
            raise ValueError(f"minority class(es) {missing} are not in classes {classes}")
    if len(set(names)) != len(names):
        raise ValueError(f"minority must not repeat a name, got {value!r}")
    # Keep the user's order out of the hash: the minority set is what matters.
    return sorted(names)


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


def _strategy(value: Any, classes: list[str] | None) -> str | dict[str, int]:
    if isinstance(value, Mapping):
        if not value:
            raise ValueError("strategy as a dict needs at least one class -> count entry, got {}")
        out = {}
        for name, count in value.items():
            if classes is not None and name not in classes:
                raise ValueError(f"strategy names class {name!r}, which is not in classes {classes}")
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


def _augmentation(value: Any, params: Any) -> tuple[str | list[str] | None, dict[str, Any]]:
    """One name takes flat params; a list (policy) takes params keyed by name."""
    if not isinstance(params, Mapping):
        raise ValueError(f"augmentation_params must be a dict, got {params!r}")
    if value is None or value == "" or value == []:
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
    return canonical_names, canonical_params


def create_transform(name: str, params: Mapping[str, Any]):
    """Creates an augstatic transform, turning its errors into ones naming the config fields."""
    # Imported here so that config checks that need no augmentation stay light.
    import augstatic  # pylint: disable=import-outside-toplevel
    try:
        return augstatic.create(name, **dict(params))
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"augmentation {name!r} with augmentation_params {dict(params)!r} "
                         f"is not valid: {error}") from error


def transform_params(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The params of one transform of a canonical config's augmentation (or policy)."""
    if isinstance(config["augmentation"], list):
        return dict(config["augmentation_params"].get(name, {}))
    return dict(config["augmentation_params"])
