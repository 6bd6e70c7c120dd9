"""Training under --precision=bfloat16: deterministic, recorded, served as float32."""

import numpy as np
import pytest

from augbal_tf import config as config_lib
from augbal_tf import evaluation
from augbal_tf import input_pipeline
from augbal_tf import train

pytestmark = pytest.mark.slow

RUN = dict(source="sample", classes=("tshirt_top", "pullover"), train_per_class=24, test_per_class=12,
           validation_per_class=8, image_size=32, epochs=2, batch_size=16, patience=0, log_images=0)


def _strip_seconds(history):
    return [{key: value for key, value in entry.items() if key != "seconds"} for entry in history]


def test_bfloat16_runs_are_deterministic_recorded_and_export_float32(tmp_path):
    config = config_lib.make(data_dir=str(tmp_path / "tfds"), precision="bfloat16", **RUN)
    first = train.train_and_evaluate(config, str(tmp_path / "a"))
    second = train.train_and_evaluate(config, str(tmp_path / "b"))
    assert _strip_seconds(first["history"]) == _strip_seconds(second["history"])
    assert first["test"] == second["test"]
    record = first["environment"]["precision"]
    assert record["precision"] == "bfloat16" and record["keras_policy"] == "mixed_bfloat16"
    assert not record["loss_scaling"]
    classifier = evaluation.load_saved_model(tmp_path / "a" / "export")
    probabilities = np.asarray(classifier.predict_fn(np.zeros((2, 40, 50, 3), np.uint8)))
    assert probabilities.dtype == np.float32 and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    result = evaluation.evaluate_split(classifier, input_pipeline.load_variant(config).builder, "test", 16)
    assert result["balanced_accuracy"] == first["test"]["balanced_accuracy"]


def test_precision_flags_are_checked():
    with pytest.raises(ValueError, match="--precision='float8' is not valid"):
        config_lib.make(precision="float8", **RUN)
    with pytest.raises(ValueError, match="--mixed_precision means --precision=float16"):
        config_lib.make(precision="bfloat16", mixed_precision=True, **RUN)
    assert config_lib.requested_precision(config_lib.make(mixed_precision=True, **RUN)) == "float16"
