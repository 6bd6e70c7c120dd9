"""Tests for augbal_tf.precision; the ResNet18 and EfficientNet-Lite0 classifiers in mixed_bfloat16 vs float32.

Tolerances follow from bfloat16's 8-bit significand: each rounding has relative error
<= u = 2**-8. A ResNet18 forward pass rounds each of its L = 20 convolutions' input,
weights and output (float32 accumulation in between; BatchNorm statistics and the head
in float32), so independent roundings give a relative error of features and logits of
about sqrt(3 L) u = 0.030. Log-softmax moves by at most 2 max|dz|, hence
|d log p| <= 2 sqrt(3 L) u max|z|. Measured (64 px, batch 16, seeds 0..3): eval
0.0031..0.0046 against bounds 0.016..0.023, training 0.0133..0.0157 against 0.023..0.039.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import config as tf_config

from augbal_tf import export, model, precision, preprocessing

UNIT_ROUNDOFF = 2.0**-8  # bfloat16: 8 significant bits.
CONV_LAYERS = 20  # ResNet18's convolutions: the stem, 16 in the blocks, 3 projections.
RELATIVE_ERROR = np.sqrt(3 * CONV_LAYERS) * UNIT_ROUNDOFF
IMAGE_SIZE, BATCH, NUM_CLASSES = 64, 16, 10

AMX_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
flags\t\t: fpu vme avx512f avx512_bf16 amx_bf16 amx_tile amx_int8
processor\t: 1
flags\t\t: fpu vme avx512f avx512_bf16 amx_bf16 amx_tile amx_int8
"""
ZEN4_CPUINFO = "vendor_id\t: AuthenticAMD\nflags\t\t: fpu avx2 avx512f avx512_bf16\n"
OLD_CPUINFO = "vendor_id\t: GenuineIntel\nflags\t\t: fpu avx2 avx512f avx512_vnni avx512_fp16\n"
ARM_CPUINFO = "processor\t: 0\nFeatures\t: fp asimd bf16\n"


@pytest.mark.parametrize("text, expected", [(AMX_CPUINFO, True), (ZEN4_CPUINFO, True),
                                            (OLD_CPUINFO, False), (ARM_CPUINFO, False), ("", False)])
def test_cpu_supports_bfloat16_reads_the_flags_line(text, expected):
    assert precision.cpu_supports_bfloat16(text) is expected


def test_cpu_supports_bfloat16_reads_this_machine():
    with open("/proc/cpuinfo", encoding="utf-8") as file:
        flags = next(line for line in file if line.startswith("flags")).split()
    assert precision.cpu_supports_bfloat16() is ("amx_bf16" in flags or "avx512_bf16" in flags)


@pytest.mark.parametrize("name, gpus, cpuinfo, expected", [
    ("float32", [], AMX_CPUINFO, "float32"),
    ("float16", [], AMX_CPUINFO, "float16"),
    ("bfloat16", [], OLD_CPUINFO, "bfloat16"),  # Asked for explicitly: honoured (emulated).
    ("auto", [], AMX_CPUINFO, "bfloat16"),
    ("auto", [], ZEN4_CPUINFO, "bfloat16"),
    ("auto", [], OLD_CPUINFO, "float32"),
    ("auto", [(8, 0)], OLD_CPUINFO, "bfloat16"),  # A100: the GPU decides, not the host.
    ("auto", [(9, 0), (8, 6)], OLD_CPUINFO, "bfloat16"),
    ("auto", [(7, 5)], AMX_CPUINFO, "float32"),  # T4 on an AMX host: training runs on the T4.
    ("auto", [(8, 6), (7, 0)], AMX_CPUINFO, "float32"),  # The slowest GPU decides.
])
def test_resolve_precision(name, gpus, cpuinfo, expected):
    assert precision.resolve_precision(name, gpus=gpus, cpuinfo_text=cpuinfo) == expected


def test_policies_and_loss_scaling():
    assert [precision.keras_policy(p) for p in ("float32", "bfloat16", "float16")] == [
        "float32", "mixed_bfloat16", "mixed_float16"]
    assert [precision.needs_loss_scaling(p) for p in ("float32", "bfloat16", "float16")] == [False, False, True]
    for function in (precision.keras_policy, precision.needs_loss_scaling):
        with pytest.raises(ValueError, match=r"precision='auto' is not valid; allowed: float32, bfloat16, float16"):
            function("auto")  # Resolve first.


def test_bad_precision_names_the_value_and_the_choices():
    with pytest.raises(ValueError, match=r"precision='bf16' is not valid; allowed: float32, bfloat16, float16, auto"):
        precision.resolve_precision("bf16", gpus=[])


def test_describe_is_the_json_record():
    record = precision.describe("auto", gpus=[], cpuinfo_text=AMX_CPUINFO)
    assert json.loads(json.dumps(record)) == {
        "requested": "auto", "precision": "bfloat16", "keras_policy": "mixed_bfloat16", "loss_scaling": False,
        "reason": "auto: CPU flags amx_bf16, avx512_bf16", "cpu_bfloat16_flags": ["amx_bf16", "avx512_bf16"],
        "gpu_compute_capabilities": []}
    record = precision.describe("float16", gpus=[(7, 0)], cpuinfo_text=OLD_CPUINFO)
    assert (record["precision"], record["loss_scaling"], record["gpu_compute_capabilities"]) == (
        "float16", True, ["7.0"])


def _model(dtype: str, image_size: int = IMAGE_SIZE) -> keras.Model:
    return model.create_model("resnet18", NUM_CLASSES, image_size, dropout=0.0, seed=0, dtype=dtype)


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((BATCH, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.float32),
            rng.integers(0, NUM_CLASSES, BATCH))


@pytest.fixture(scope="module")
def float32_model(batch):
    reference = _model("float32")
    for _ in range(2):  # Moving statistics of real batches, so evaluation mode is normalised too.
        reference(batch[0], training=True)
    return reference


def _bfloat16_copy(reference: keras.Model) -> keras.Model:
    copy = _model("mixed_bfloat16")
    copy.set_weights(reference.get_weights())
    return copy


def test_bfloat16_resnet_keeps_float32_where_precision_matters(float32_model):
    mixed = _bfloat16_copy(float32_model)
    assert mixed.stem.conv.compute_dtype == "bfloat16" and mixed.blocks[-1].conv2.bn.compute_dtype == "bfloat16"
    assert all(variable.dtype == "float32" for variable in mixed.variables)  # Incl. moving statistics.
    assert [layer.compute_dtype for layer in (mixed.global_pool, *mixed.head_layers)] == ["float32"] * 3
    assert mixed(np.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 3), np.float32), training=True).dtype == tf.float32


@pytest.mark.parametrize("training", [False, True])
def test_bfloat16_forward_agrees_with_float32(float32_model, batch, training):
    mixed = _bfloat16_copy(float32_model)
    state = [variable.numpy() for variable in float32_model.variables]
    logits = float32_model(batch[0], training=training).numpy()
    mixed_logits = mixed(batch[0], training=training)
    for variable, value in zip(float32_model.variables, state):  # Undo the training-mode update.
        variable.assign(value)
    assert mixed_logits.dtype == tf.float32
    difference = np.abs(tf.nn.log_softmax(logits) - tf.nn.log_softmax(mixed_logits)).max()
    tolerance = 2 * RELATIVE_ERROR * np.abs(logits).max()
    assert difference <= tolerance
    assert difference > 0  # Really computed in bfloat16.


def _train_step(network: keras.Model, images: np.ndarray, labels: np.ndarray,
                optimizer: keras.optimizers.Optimizer) -> None:
    # The trainer's step: images cast to the compute dtype, float32 loss from float32 logits.
    with tf.GradientTape() as tape:
        logits = network(tf.cast(images, network.compute_dtype), training=True)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
    gradients = tape.gradient(loss, network.trainable_variables)
    optimizer.apply_gradients(zip(gradients, network.trainable_variables))


def _moving_statistics(network: keras.Model) -> list[np.ndarray]:
    return [variable.numpy() for layer in network._flatten_layers()  # pylint: disable=protected-access
            if isinstance(layer, keras.layers.BatchNormalization)
            for variable in (layer.moving_mean, layer.moving_variance)]


def test_moving_statistics_after_one_training_step_agree(float32_model, batch):
    reference, mixed = _model("float32"), _bfloat16_copy(float32_model)
    reference.set_weights(float32_model.get_weights())
    before = _moving_statistics(reference)
    for network in (reference, mixed):
        _train_step(network, *batch, keras.optimizers.SGD(0.1))
    after, mixed_after = _moving_statistics(reference), _moving_statistics(mixed)
    momentum = model.BN_MOMENTUM
    for index in range(0, len(after), 2):
        # The step moves each statistic by (1 - momentum) x the batch's; compare in units of that move.
        batch_variance = (after[index + 1] - momentum * before[index + 1]) / (1 - momentum)
        mean_error = np.abs(mixed_after[index] - after[index]) / ((1 - momentum) * np.sqrt(batch_variance))
        variance_error = np.abs(mixed_after[index + 1] - after[index + 1]) / ((1 - momentum) * batch_variance)
        assert mean_error.max() <= RELATIVE_ERROR  # Measured <= 0.0164.
        assert variance_error.max() <= 2 * RELATIVE_ERROR  # A square doubles the relative error; <= 0.040.


def test_bfloat16_training_step_is_deterministic(batch):
    previous = tf_config.is_op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()
    try:
        weights = []
        for _ in range(2):
            network = _model("mixed_bfloat16")
            initial = network.get_weights()
            _train_step(network, *batch, keras.optimizers.Adam(1e-3))
            weights.append(network.get_weights())
        assert any(not np.array_equal(a, b) for a, b in zip(initial, weights[0]))
        assert all(a.tobytes() == b.tobytes() for a, b in zip(*weights))
    finally:
        if not previous:
            tf_config.disable_op_determinism()


def test_bfloat16_saved_model_serves_uint8_and_float32_probabilities(tmp_path):
    reference = _model("float32", 32)
    mixed = _model("mixed_bfloat16", 32)
    mixed.set_weights(reference.get_weights())
    path = export.export_saved_model(mixed, tmp_path / "export", [str(i) for i in range(NUM_CLASSES)], 32)
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    assert serve.structured_input_signature[1]["images"].dtype == tf.uint8
    images = np.random.default_rng(1).integers(0, 256, (4, 40, 48, 3), dtype=np.uint8)
    probabilities = next(iter(serve(images=tf.constant(images)).values()))
    assert probabilities.dtype == tf.float32
    np.testing.assert_allclose(probabilities.numpy().sum(axis=1), 1.0, rtol=1e-6)
    # The float32 model on the same preprocessed images is the reference.
    logits = reference(preprocessing.preprocess_images(tf.constant(images), 32, reference.preprocessing)).numpy()
    difference = np.abs(np.log(probabilities.numpy()) - tf.nn.log_softmax(logits).numpy()).max()
    assert 0 < difference <= 2 * RELATIVE_ERROR * np.abs(logits).max()


LITE0_CONV_LAYERS = 49  # EfficientNet-Lite0: the stem, 16 blocks x (expand, depthwise, project) - 1, the head conv.
LITE0_SIZE = 32


@pytest.fixture(scope="module")
def float32_backbone_model():
    reference = model.create_model("efficientnet_lite0", NUM_CLASSES, LITE0_SIZE, dropout=0.0, seed=0)
    images = np.random.default_rng(2).standard_normal((8, LITE0_SIZE, LITE0_SIZE, 3), dtype=np.float32)
    reference(images, training=True)  # Moving statistics of a real batch: evaluation mode is normalised.
    return reference, images


def test_bfloat16_backbone_classifier_head_is_float32_and_agrees(float32_backbone_model):
    reference, images = float32_backbone_model
    mixed = model.create_model("efficientnet_lite0", NUM_CLASSES, LITE0_SIZE, dropout=0.0, seed=0,
                               dtype="mixed_bfloat16")
    mixed.set_weights(reference.get_weights())
    assert mixed.backbone.conv_stem.compute_dtype == "bfloat16"
    assert [layer.compute_dtype for layer in (mixed.backbone.pool, mixed.head_hidden, mixed.head_dropout,
                                              mixed.head_output)] == ["float32"] * 4
    assert all(variable.dtype == "float32" for variable in mixed.head_variables)
    assert mixed.features(images).dtype == tf.float32
    mixed_logits = mixed(images, training=False)
    assert mixed_logits.dtype == tf.float32
    logits = reference(images, training=False).numpy()
    difference = np.abs(tf.nn.log_softmax(logits) - tf.nn.log_softmax(mixed_logits)).max()
    # The bound of the module docstring with Lite0's 49 convolutions. Measured (32 px, batch 8, seeds
    # 0..2): 0.0012..0.0017 against bounds 0.0069..0.011.
    assert 0 < difference <= 2 * np.sqrt(3 * LITE0_CONV_LAYERS) * UNIT_ROUNDOFF * np.abs(logits).max()


def test_bfloat16_application_backbone_pools_in_float32():
    # keras.applications backbones (the smallest here) end in a float32 avg_pool, as Lite0 does.
    mixed = model.create_model("mobilenet_v3_small", NUM_CLASSES, LITE0_SIZE, dropout=0.0, seed=0,
                               dtype="mixed_bfloat16")
    pool = mixed.backbone.layers[-1]
    assert isinstance(pool, keras.layers.GlobalAveragePooling2D) and pool.name == "avg_pool"
    assert (pool.compute_dtype, mixed.backbone.layers[-2].compute_dtype) == ("float32", "bfloat16")
    assert mixed(np.zeros((2, LITE0_SIZE, LITE0_SIZE, 3), np.float32)).dtype == tf.float32
