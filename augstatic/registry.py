"""The transform registry: canonical names, case- and underscore-insensitive lookup."""

from __future__ import annotations

import difflib
import inspect

_REGISTRY: dict[str, type] = {}


def normalize_name(name: str) -> str:
    """Lookup key for a name: lower case without underscores, hyphens or spaces."""
    return name.lower().replace("_", "").replace("-", "").replace(" ", "")


def register(cls: type) -> type:
    """Class decorator registering a transform under its class name.

    Raises:
      ValueError: a transform with the same normalised name is already registered.
    """
    key = normalize_name(cls.__name__)
    if key in _REGISTRY:
        raise ValueError(f"transform name {cls.__name__!r} is already registered "
                         f"(by {_REGISTRY[key].__module__}.{_REGISTRY[key].__name__})")
    cls.name = cls.__name__
    _REGISTRY[key] = cls
    return cls


def available() -> list[str]:
    """Sorted canonical names of every registered transform."""
    return sorted(cls.__name__ for cls in _REGISTRY.values())


def lookup(name: str) -> type:
    """Returns the transform class for `name` (case- and underscore-insensitive).

    Raises:
      ValueError: unknown name; the message lists close matches.
    """
    if not isinstance(name, str):
        raise ValueError(f"transform name must be a string, got {name!r}")
    key = normalize_name(name)
    if key in _REGISTRY:
        return _REGISTRY[key]
    close = difflib.get_close_matches(key, list(_REGISTRY), n=3, cutoff=0.6)
    hint = (f"close matches: {', '.join(_REGISTRY[k].__name__ for k in close)}" if close
            else "see augstatic.available() for every name")
    raise ValueError(f"unknown transform name {name!r}; {hint}")


def create(name: str, **params):
    """Builds the transform `name` with `params` (defaults: the paper's parameters, p=1).

    Raises:
      ValueError: unknown name, unknown parameter, or an invalid parameter value.
    """
    cls = lookup(name)
    signature = inspect.signature(cls)
    unknown = sorted(set(params) - set(signature.parameters))
    if unknown:
        raise ValueError(f"{cls.__name__} got unknown parameter(s) {unknown}; "
                         f"allowed: {sorted(signature.parameters)}")
    return cls(**params)
