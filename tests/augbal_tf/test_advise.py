"""advise: folder checks, budget sizing, the winner rule, and the whole flow with a stand-in trainer."""

import json
import pathlib

import cv2
import numpy as np
import pandas as pd
import pytest

from augbal_tf import advise
from augbal_tf import config as config_lib
from augbal_tf import fileio
from augbal_tf import workdir as workdir_lib


def _folder(root: pathlib.Path, counts: dict[str, int]) -> pathlib.Path:
    rng = np.random.default_rng(0)
    for name, count in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            cv2.imwrite(str(root / name / f"{index:03d}.png"), rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
    return root


def _base(folder, tmp_path, **fields):
    return config_lib.make(**{"manual_dir": str(folder), "data_dir": str(tmp_path / "tfds"), "image_size": 32,
                              "epochs": 1, **fields})


def test_counts_and_bad_folders(tmp_path):
    folder = _folder(tmp_path / "photos", {"buildings": 40, "sea": 10})
    assert advise.count_images(str(folder)) == {"buildings": 40, "sea": 10}
    assert advise.count_images(str(folder), ("sea", "buildings")) == {"sea": 10, "buildings": 40}
    with pytest.raises(ValueError, match=r"--classes: \['forest'\] are not class folders"):
        advise.count_images(str(folder), ("forest", "sea"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no class folders"):
        advise.count_images(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="advise needs at least 2 classes"):
        advise.count_images(str(_folder(tmp_path / "one", {"sea": 5})))
    with pytest.raises(ValueError, match=r"class\(es\) \{'sea': 1\} have fewer than 2 training images"):
        advise.count_images(str(_folder(tmp_path / "single", {"buildings": 5, "sea": 1})))


def test_the_budget_sizes_seeds_and_drops_candidates(tmp_path):
    base = _base(tmp_path, tmp_path, epochs=10, image_size=64)
    counts = {"buildings": 1000, "sea": 300}
    cell = advise.estimate_cell_seconds(2000, 10, 64)
    roomy = advise.make_plan(counts, base, budget_minutes=600)
    assert roomy.seeds == tuple(range(advise.MAX_SEEDS)) and roomy.augmentations == advise.AUGMENTATIONS
    assert roomy.remedies == advise.REMEDIES
    # Room for the 4 baselines + 3 remedies + 1 augmentation with 3 seeds: augmentations go first.
    tight = advise.make_plan(counts, base, budget_minutes=(8 * 3 + 1) * cell / 60 + 0.01)
    assert tight.augmentations == advise.AUGMENTATIONS[:1] and tight.seeds == (0, 1, 2)
    assert tight.remedies == advise.REMEDIES
    assert sum("Dropped" in line for line in tight.decisions) == 2
    assert tight.estimated_seconds <= (8 * 3 + 1) * cell + 1
    tighter = advise.make_plan(counts, base, budget_minutes=(5 * 3 + 1) * cell / 60 + 0.01)
    assert tighter.augmentations == () and tighter.remedies == advise.REMEDIES[:1]
    with pytest.raises(ValueError, match=r"--budget_minutes=1 is too small for even the baselines .* min needed"):
        advise.make_plan(counts, base, budget_minutes=1)


def _summary(rows):
    return pd.DataFrame([dict(cell=c, verdict=v, mean_difference=d, ci_low=d - 0.01, ci_high=d + 0.01, n_seeds=5)
                         for c, v, d in rows])


def test_winner_rule():
    results = pd.DataFrame({"cell": ["aug:A", "aug:B", "baseline:oversample_random"], "wall_time_s": [30, 10, 5]})
    summary = _summary([("baseline:unbalanced", "reference", 0.0), ("aug:A", "effective", 0.05),
                        ("aug:B", "effective", 0.0495), ("baseline:oversample_random", "effective", 0.02)])
    winner, reason = advise.choose_winner(summary, results)
    assert winner == "aug:B" and "Tied with aug:A; the cheaper one wins" in reason  # within 0.1 points
    summary = _summary([("baseline:unbalanced", "reference", 0.0), ("aug:A", "effective", 0.05),
                        ("baseline:oversample_random", "effective", 0.02)])
    assert advise.choose_winner(summary, results)[0] == "aug:A"
    none = _summary([("baseline:unbalanced", "reference", 0.0), ("aug:A", "neutral", 0.05)])
    assert advise.choose_winner(none, results) == ("baseline:unbalanced", pytest.approx(
        "No cell is effective after the Holm correction, so the recommendation is the plain unbalanced baseline."))


class _FakeTrain:
    """Writes a metrics.json shaped like training's; oversample_random clearly helps."""

    def __init__(self):
        self.calls = []

    def __call__(self, config, workdir):
        workdir_lib.prepare(workdir, config)
        self.calls.append((workdir, config))
        score = 0.6 + 0.001 * config.seed + (0.2 if config.data.strategy == "oversample_random" else 0.0)
        per_class = {name: {"precision": score, "recall": score, "f1": score, "support": 5}
                     for name in ("buildings", "sea")}
        split = {"accuracy": score, "balanced_accuracy": score, "per_class": per_class,
                 "confusion_matrix": [[4, 1], [1, 4]]}
        metrics = {"selected_epoch": 1, "selection": "validation", "epochs_run": 1, "wall_time_s": 2.0,
                   "validation": split, "test": split, "environment": {}}
        fileio.write_atomic(pathlib.Path(workdir, workdir_lib.METRICS_FILE), json.dumps(metrics))
        return metrics


def test_the_whole_advice_with_a_stand_in_trainer(tmp_path):
    folder = _folder(tmp_path / "photos", {"buildings": 40, "sea": 10})
    fake = _FakeTrain()
    lines = []
    out = tmp_path / "out"
    dry = advise.advise(_base(folder, tmp_path), str(out), 60, dry_run=True, train_fn=fake, log=lines.append,
                        augmentations=("HorizontalFlip",))
    assert dry["winner"] is None and fake.calls == [] and not out.exists()
    assert "estimated" in lines[0]
    advice = advise.advise(_base(folder, tmp_path), str(out), 60, train_fn=fake, log=lines.append,
                           baselines=("unbalanced", "oversample_random"), augmentations=("HorizontalFlip",),
                           remedies=("logit_adjusted",),
                           command="python -m augbal_tf.advise --manual_dir=photos")
    assert advice["winner"] == "baseline:oversample_random"
    final_dir, final_config = fake.calls[-1]
    assert final_dir == str(out / "model") and final_config.export and final_config.seed == 0
    assert final_config.data.strategy == "oversample_random" and final_config.data.minority == ("sea",)
    text = (out / advise.ADVICE_MD).read_text()
    assert "**Recommendation: baseline:oversample_random.**" in text and "Minority: sea" in text
    assert "python -m augbal_tf.evaluate --saved_model=" in text and "## Decisions" in text
    assert (out / "study" / "summary.md").is_file() and (out / "study" / "report.html").is_file()
    page = (out / "report.html").read_text()
    assert "baseline:oversample_random" in page and "Minority: sea" in page
    assert "python -m augbal_tf.evaluate --saved_model=" in page


def test_an_augmentation_winner_shows_it_on_the_users_minority_images(tmp_path):
    folder = _folder(tmp_path / "photos", {"buildings": 40, "sea": 10})
    base = config_lib.replace(_base(folder, tmp_path), minority=("sea",))
    pairs = advise._gallery(base, "aug:HorizontalFlip")  # pylint: disable=protected-access
    assert len(pairs) == 8
    for original, flipped in pairs:
        np.testing.assert_array_equal(flipped, original[:, ::-1])
    assert advise._gallery(base, "baseline:oversample_random") is None  # pylint: disable=protected-access


def test_sharded_advice_makes_one_plan_and_merges_like_one_process(tmp_path):
    folder = _folder(tmp_path / "photos", {"buildings": 40, "sea": 10})
    grid = dict(baselines=("unbalanced", "oversample_random"), augmentations=("HorizontalFlip",),
                remedies=("logit_adjusted",), log=lambda _: None)
    out, fake = tmp_path / "sharded", _FakeTrain()
    shards = [advise.advise(_base(folder, tmp_path), str(out), 60, train_fn=fake, num_shards=2, shard_index=index,
                            **grid) for index in range(2)]
    assert shards[0]["plan"] == shards[1]["plan"] and all(shard["winner"] is None for shard in shards)
    assert len(fake.calls) == shards[0]["plan"].num_cells and not (out / advise.ADVICE_MD).exists()
    assert not (out / "study" / "results.csv").exists()
    # A shard whose budget gives another plan (fewer seeds) would overlap the others' cells.
    with pytest.raises(ValueError, match=r"differs from the one the shards .* --budget_minutes"):
        advise.advise(_base(folder, tmp_path), str(out), 1.2, train_fn=fake, num_shards=2, shard_index=1, **grid)
    with pytest.raises(ValueError, match=r"--shard_index=2 is not valid with --num_shards=2"):
        advise.advise(_base(folder, tmp_path), str(tmp_path / "never"), 60, num_shards=2, shard_index=2, **grid)
    assert not (tmp_path / "never").exists()
    calls = len(fake.calls)
    merged = advise.advise(_base(folder, tmp_path), str(out), 60, train_fn=fake, report_only=True, **grid)
    assert len(fake.calls) == calls + 1 and fake.calls[-1][0] == str(out / "model")  # Only the final model.
    single = advise.advise(_base(folder, tmp_path), str(tmp_path / "single"), 60, train_fn=_FakeTrain(), **grid)
    assert merged["winner"] == single["winner"] == "baseline:oversample_random"
    assert merged["reason"] == single["reason"]
    assert (out / advise.ADVICE_MD).is_file() and (out / "report.html").is_file()
    sharded_results, single_results = (pd.read_csv(path / "study" / "results.csv").drop(columns="workdir")
                                       for path in (out, tmp_path / "single"))
    pd.testing.assert_frame_equal(sharded_results, single_results)
