"""What a run ran on: package versions, git commit and devices (for metrics.json)."""

import importlib.metadata
import pathlib
import platform
import subprocess

PACKAGES = ("tensorflow", "keras", "tensorflow-datasets", "numpy", "opencv-python-headless", "absl-py")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    """The commit of the augbal checkout (with `-dirty` when modified), or None outside git."""
    root = pathlib.Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def describe(devices: list[str], strategy_name: str, replicas: int) -> dict:
    """JSON-able description of the software and hardware of this run."""
    return {
        "packages": {package: _version(package) for package in PACKAGES},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": git_commit(),
        "distribution_strategy": strategy_name,
        "replicas": replicas,
        "devices": devices,
    }
