"""Every flagfile in launch/ parses against the real flag definitions and validates.

Nested `--flagfile=` includes are followed (absl resolves them relative to the
working directory, so launch files name includes from the repository root, which
is where the commands are run).
"""

import copy
import pathlib
import re

import pytest
from absl import flags

import augbal_tf.flags  # noqa: F401  (defines every flag)
from augbal_tf import config as config_lib
from augbal_tf import study

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
FLAGFILES = sorted((REPO_ROOT / "launch").rglob("*.flags"))
_INCLUDE = re.compile(r"^\s*--flagfile=(\S+)", re.MULTILINE)


def _includes(path: pathlib.Path) -> list[str]:
    return _INCLUDE.findall(path.read_text())


def _parse(path: pathlib.Path) -> flags.FlagValues:
    # A copy, so the global FLAGS stay unparsed for every other test.
    values = copy.deepcopy(flags.FLAGS)
    values(["prog", f"--flagfile={path.relative_to(REPO_ROOT)}"])
    return values


def test_launch_folder_has_the_experiment_records():
    names = {str(p.relative_to(REPO_ROOT)) for p in FLAGFILES}
    assert {"launch/quickstart.flags", "launch/intel_scene/paper.flags",
            "launch/intel_scene/study.flags", "launch/intel_scene/mini.flags"} <= names


@pytest.mark.parametrize("path", FLAGFILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_flagfile_parses_and_validates(path, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    lines = path.read_text().splitlines()
    assert lines and lines[0].startswith("#"), f"{path} must start with a header comment"
    for include in _includes(path):
        assert (REPO_ROOT / include).is_file(), f"{path} includes missing {include}"
    values = _parse(path)
    if values["study_dir"].present or any(
            "--study_dir" in (REPO_ROOT / i).read_text() for i in _includes(path)):
        grid = study.study_from_flags(values)
        cells = study.expand_grid(grid)
        assert cells, f"{path} defines an empty grid"
        header = "\n".join(line for line in lines if line.startswith("#")).lower()
        for word in ("hardware", "duration", "expected"):
            assert word in header, f"{path}'s header must state the {word}"
    else:
        config_lib.from_flags(values)
        if values["budget_minutes"].present:  # An advise record: it states what it costs too.
            header = "\n".join(line for line in lines if line.startswith("#")).lower()
            for word in ("hardware", "duration", "expected"):
                assert word in header, f"{path}'s header must state the {word}"


def test_nested_include_is_followed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "base.flags").write_text("# base\n--source=sample\n--epochs=7\n--image_size=64\n")
    (tmp_path / "top.flags").write_text("# top\n--flagfile=base.flags\n--image_size=48\n")
    values = copy.deepcopy(flags.FLAGS)
    values(["prog", "--flagfile=top.flags"])
    config = config_lib.from_flags(values)
    assert (config.epochs, config.image_size) == (7, 48)


def test_unknown_flag_in_a_flagfile_fails(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.flags").write_text("# bad\n--epochz=7\n")
    values = copy.deepcopy(flags.FLAGS)
    with pytest.raises(flags.Error, match="epochz"):
        values(["prog", "--flagfile=bad.flags"])
