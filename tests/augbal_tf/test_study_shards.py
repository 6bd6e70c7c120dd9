"""A study as shards: the partition, the layout and lock rules, and two real shards run
concurrently on one folder, merged by --report_only, against one process on another folder.

The unit tests use the stand-in trainer of test_study.py (no TensorFlow); the real run
(tests/augbal_tf/tiny_study_runs.py, shared with test_study_runner) trains 4 one-epoch cells at
32 px on the embedded sample in two shard processes, and the same study in the test process.
"""

import json
import os
import pathlib
import subprocess
import sys

import pandas as pd
import pytest

from augbal_tf import locks, study, study_report, study_shards
from tests.augbal_tf.test_study import FakeTrainer, _study

TIMEOUT_S = 300  # The bad-flag command: it exits before importing TensorFlow.


def test_the_shards_are_disjoint_and_cover_the_grid(tmp_path):
    cells = study.expand_grid(_study(tmp_path))
    assert len(cells) == 12
    for num_shards in (1, 2, 5, 12, 20):
        shards = [study_shards.select(cells, num_shards, index) for index in range(num_shards)]
        workdirs = [cell.workdir for shard in shards for cell in shard]
        assert sorted(workdirs) == sorted(cell.workdir for cell in cells)  # Complete and disjoint.
        assert max(map(len, shards)) - min(map(len, shards)) <= 1
    # The same flags give the same partition in every process (no hidden state).
    again = study.expand_grid(_study(tmp_path))
    assert ([c.workdir for c in study_shards.select(again, 5, 3)] ==
            [c.workdir for c in study_shards.select(cells, 5, 3)])


@pytest.mark.parametrize("num_shards, shard_index, message", [
    (0, 0, r"--num_shards=0 is not valid; must be an integer >= 1"),
    (-2, 0, r"--num_shards=-2 is not valid"),
    (2, 2, r"--shard_index=2 is not valid with --num_shards=2; must be an integer in \[0, 1\]"),
    (3, -1, r"--shard_index=-1 is not valid with --num_shards=3"),
])
def test_bad_shard_flags_fail_before_anything_is_written(tmp_path, num_shards, shard_index, message):
    with pytest.raises(ValueError, match=message):
        _study(tmp_path, num_shards=num_shards, shard_index=shard_index)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_the_command_exits_2_on_a_bad_shard_flag_and_writes_nothing(tmp_path):
    completed = subprocess.run([sys.executable, "-m", "augbal_tf.study", f"--study_dir={tmp_path / 'study'}",
                                "--source=sample", "--num_shards=2", "--shard_index=5"],
                               capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert completed.returncode == 2
    assert "error: --shard_index=5 is not valid with --num_shards=2" in completed.stderr
    assert not (tmp_path / "study").exists()


def test_shards_in_turn_then_report_only_equal_one_process(tmp_path):
    trainer = FakeTrainer()
    sharded = tmp_path / "sharded"
    for index in range(3):
        lines = []
        assert study.run_study(_study(sharded, num_shards=3, shard_index=index), trainer,
                               command="python -m augbal_tf.study --x=1 --num_shards=3 --shard_index=0",
                               log=lines.append) is None
        assert f"shard {index} of 3: 4 of the 12 cells" in lines[0]
        assert "python -m augbal_tf.study --x=1 --report_only" in lines[-1]
        # A shard writes no shared file (no results.csv nor report while others may run).
        assert sorted(p.name for p in (sharded / "study").iterdir() if p.is_file() and not locks.is_lock_file(p)) == [
            study_shards.LAYOUT_FILE]
    assert len(trainer.calls) == 12 and len({workdir for workdir, _, _ in trainer.calls}) == 12
    assert json.loads((sharded / "study" / study_shards.LAYOUT_FILE).read_text())["num_shards"] == 3
    merged = study.report_study(_study(sharded), log=lambda _: None)

    single = study.run_study(_study(tmp_path / "single"), FakeTrainer(), log=lambda _: None)
    pd.testing.assert_frame_equal(merged, single)
    _assert_same_results(sharded / "study", tmp_path / "single" / "study")
    for name in ("summary.md", "summary.png", "report.html"):
        assert (sharded / "study" / name).is_file()


def test_a_mismatched_layout_or_grid_is_refused(tmp_path):
    study.run_study(_study(tmp_path, num_shards=2, shard_index=0), FakeTrainer(), log=lambda _: None)
    layout = (tmp_path / "study" / study_shards.LAYOUT_FILE).read_text()
    trainer = FakeTrainer()
    with pytest.raises(ValueError, match=r"--num_shards=3, but the study folder .* is sharded with --num_shards=2"):
        study.run_study(_study(tmp_path, num_shards=3, shard_index=1), trainer, log=lambda _: None)
    with pytest.raises(ValueError, match=r"--num_shards=1, but .* sharded with --num_shards=2"):
        study.run_study(_study(tmp_path), trainer, log=lambda _: None)  # A one-process study too.
    # Shard 1 started with other grid flags would overlap shard 0's cells.
    with pytest.raises(ValueError, match=r"grid of 8 cells .* differs from the one the shards .* \(12 cells"):
        study.run_study(_study(tmp_path, num_shards=2, shard_index=1, seeds=(0, 1)), trainer, log=lambda _: None)
    with pytest.raises(ValueError, match=r"--report_only"):
        study.report_study(_study(tmp_path, seeds=(0, 1)), log=lambda _: None)
    assert trainer.calls == [] and (tmp_path / "study" / study_shards.LAYOUT_FILE).read_text() == layout
    assert not (tmp_path / "study" / study.RESULTS_CSV).exists()
    # A merge while shard 1 is interrupted after 4 of its 6 cells: the 2 others named and counted missing.
    with pytest.raises(KeyboardInterrupt):
        study.run_study(_study(tmp_path, num_shards=2, shard_index=1), FakeTrainer(fail_after=4), log=lambda _: None)
    lines = []
    study.report_study(_study(tmp_path), log=lines.append)
    assert lines[0].endswith("report of 10 of 12 finished cells in " + str(tmp_path / "study") + "; missing (2, "
                             "rerun their shards): ratio 4 baseline:unbalanced seed 2, ratio 4 aug:GaussNoise seed 2")
    assert len(study_report.read_results(tmp_path / "study" / study.RESULTS_CSV)) == 10
    assert "**Incomplete: 2 cell(s) of the grid have no results**" in (tmp_path / "study" / "summary.md").read_text()


def test_report_only_with_nothing_finished_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match=r"--report_only: none of the 12 cells .* has finished"):
        study.report_study(_study(tmp_path), log=lambda _: None)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_the_same_shard_twice_is_refused_and_other_shards_run(tmp_path):
    config = _study(tmp_path, num_shards=2, shard_index=0)
    cells = study.expand_grid(config)
    with study_shards.claim(config.study_dir, cells, 2, 0):
        with pytest.raises(locks.BusyError, match=rf"shard 0 of the study folder .* in use .*pid {os.getpid()} on"):
            study.run_study(config, FakeTrainer(), log=lambda _: None)
        study.run_study(_study(tmp_path, num_shards=2, shard_index=1), FakeTrainer(), log=lambda _: None)
        # A one-process study may not run beside shards, nor shards beside it.
        with pytest.raises(ValueError, match=r"--num_shards=1, but"):
            study.run_study(_study(tmp_path), FakeTrainer(), log=lambda _: None)
    single = _study(tmp_path / "single")
    with study_shards.claim(single.study_dir, study.expand_grid(single), 1, 0):
        with pytest.raises(locks.BusyError, match=r"study folder .* is in use"):
            study.run_study(_study(tmp_path / "single", num_shards=2, shard_index=1), FakeTrainer(),
                            log=lambda _: None)


def _assert_same_results(left: pathlib.Path, right: pathlib.Path) -> None:
    """results.csv equal but for wall_time_s and workdir (relative workdirs equal); summary.csv equal."""
    a, b = (study_report.read_results(folder / study.RESULTS_CSV) for folder in (left, right))
    assert list(a.columns) == list(study.RESULT_COLUMNS) and len(a) == len(b) > 0
    assert [os.path.relpath(w, left) for w in a["workdir"]] == [os.path.relpath(w, right) for w in b["workdir"]]
    same = [column for column in study.RESULT_COLUMNS if column not in ("wall_time_s", "workdir")]
    pd.testing.assert_frame_equal(a[same], b[same])
    pd.testing.assert_frame_equal(pd.read_csv(left / study_report.SUMMARY_CSV),
                                  pd.read_csv(right / study_report.SUMMARY_CSV))


@pytest.mark.slow
def test_two_real_shards_at_once_then_report_only_equal_one_process(tiny_real_study):
    # tests/augbal_tf/tiny_study_runs.py: the two shards ran at once on one folder while the test
    # process trained the same study in another (4 cells each way: the unbalanced reference and
    # one augmentation, 2 seeds, the least a report compares), then --report_only merged the shards.
    for index, (code, out, err) in enumerate(tiny_real_study["shards"]):
        assert code == 0, err[-3000:]
        assert f"shard {index} of 2: 2 of the 4 cells" in out and "--report_only" in out
    study_dir = tiny_real_study["sharded"]
    assert study.RESULTS_CSV not in tiny_real_study["files_before_merge"]
    assert study_shards.LAYOUT_FILE in tiny_real_study["files_before_merge"]
    # The merge reads metrics only: TensorFlow is never imported (-X importtime lists every import).
    code, out, err = tiny_real_study["report"]
    assert code == 0, err[-3000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in err.splitlines() if line.startswith("import time:")]
    assert "augbal_tf.study_report" in imported and "tensorflow" not in imported
    assert "report of 4 of 4 finished cells" in out
    _assert_same_results(study_dir, tiny_real_study["single"])
    for name in ("summary.md", "summary.png", "report.html"):
        assert (study_dir / name).stat().st_size > 0


def test_adaptive_seeds_cannot_be_sharded(tmp_path):
    from augbal_tf import study_adaptive  # pylint: disable=import-outside-toplevel

    with pytest.raises(ValueError, match=r"--seeds=auto with --num_shards > 1 is not supported"):
        study.StudyConfig(base=_study(tmp_path).base, study_dir=str(tmp_path / "s"),
                          adaptive=study_adaptive.Settings(), num_shards=2, shard_index=0)
    assert not (tmp_path / "s").exists()
