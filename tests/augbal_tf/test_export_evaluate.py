"""Tests for augbal_tf.export and augbal_tf.evaluate (SavedModel round trip, CLI)."""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from augbal_datasets.augbal import prepare
from augbal_tf import evaluate, evaluation, export, metrics, preprocessing

IMAGE_SIZE = 16
CLASS_NAMES = ("buildings", "sea")


def tiny_model(num_classes: int = 2) -> keras.Model:
    """Conv + BatchNorm + Dropout + Dense: enough to show inference-mode behaviour."""
    init = keras.initializers.GlorotUniform(seed=1)
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = keras.layers.Conv2D(4, 3, use_bias=False, kernel_initializer=init)(inputs)
    x = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.5, seed=2)(x)
    outputs = keras.layers.Dense(num_classes, kernel_initializer=init)(x)
    model = keras.Model(inputs, outputs)
    # Non-trivial moving statistics, so using training-mode BatchNorm would change outputs.
    batch_norm = model.layers[2]
    batch_norm.moving_mean.assign(np.linspace(-0.5, 0.5, 4).astype(np.float32))
    batch_norm.moving_variance.assign(np.linspace(0.5, 2.0, 4).astype(np.float32))
    return model


def random_images(seed: int, count: int, height: int, width: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "export"
    export.export_saved_model(model, path, CLASS_NAMES, IMAGE_SIZE)
    return path


def test_serving_function_is_softmax_of_inference_logits(model):
    serve = export.serving_function(model, IMAGE_SIZE)
    for height, width in [(IMAGE_SIZE, IMAGE_SIZE), (23, 31), (9, 12)]:
        images = random_images(height, 5, height, width)
        probabilities = serve(images).numpy()
        logits = model(preprocessing.preprocess_images(tf.constant(images), IMAGE_SIZE),
                       training=False)
        np.testing.assert_allclose(probabilities, tf.nn.softmax(logits).numpy(), rtol=1e-6)
        assert probabilities.shape == (5, 2) and probabilities.dtype == np.float32
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
        # Inference mode: dropout off, so repeated calls agree exactly.
        np.testing.assert_array_equal(serve(images).numpy(), probabilities)


def test_serving_function_rejects_bad_image_size(model):
    with pytest.raises(ValueError, match="image_size"):
        export.serving_function(model, 0)


def test_saved_model_round_trip_is_exact(model, exported):
    serve = export.serving_function(model, IMAGE_SIZE)
    del model  # the SavedModel must not need the Python model
    loaded = tf.saved_model.load(str(exported))
    assert [n.decode() for n in loaded.class_names().numpy()] == list(CLASS_NAMES)
    assert int(loaded.image_size().numpy()) == IMAGE_SIZE
    assert "serving_default" in loaded.signatures
    for height, width in [(IMAGE_SIZE, IMAGE_SIZE), (40, 27)]:
        images = random_images(7, 4, height, width)
        np.testing.assert_array_equal(loaded.serving_default(images).numpy(), serve(images).numpy())
        signature_output = loaded.signatures["serving_default"](images=tf.constant(images))
        np.testing.assert_array_equal(list(signature_output.values())[0].numpy(),
                                      serve(images).numpy())
    # Float input is not accepted: the endpoint's contract is raw uint8 pixels.
    with pytest.raises((TypeError, ValueError)):
        loaded.serving_default(tf.zeros([1, 8, 8, 3], tf.float32))


def test_export_replaces_previous_saved_model_and_leaves_no_temp_dirs(tmp_path):
    path = tmp_path / "export"
    export.export_saved_model(tiny_model(), path, CLASS_NAMES, IMAGE_SIZE)
    export.export_saved_model(tiny_model(3), path, ("a", "b", "c"), IMAGE_SIZE)
    assert [n.decode() for n in tf.saved_model.load(str(path)).class_names().numpy()] == \
        ["a", "b", "c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_export_refuses_to_replace_other_folders(tmp_path):
    path = tmp_path / "results"
    path.mkdir()
    (path / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a SavedModel"):
        export.export_saved_model(tiny_model(), path, CLASS_NAMES, IMAGE_SIZE)
    assert (path / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize("class_names, message", [
    (("only_one",), "1 names but the model has 2 outputs"),
    (("a", "a"), "unique"),
    ((), "non-empty"),
])
def test_export_checks_class_names(tmp_path, model, class_names, message):
    with pytest.raises(ValueError, match=message):
        export.export_saved_model(model, tmp_path / "export", class_names, IMAGE_SIZE)
    assert not any(tmp_path.iterdir())


def test_load_saved_model(exported):
    classifier = evaluation.load_saved_model(exported)
    assert classifier.class_names == CLASS_NAMES
    assert classifier.image_size == IMAGE_SIZE


def test_load_saved_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        evaluation.load_saved_model(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a SavedModel"):
        evaluation.load_saved_model(tmp_path / "empty")
    module = tf.Module()
    module.scale = tf.Variable(2.0)
    tf.saved_model.save(module, str(tmp_path / "foreign"))
    with pytest.raises(ValueError, match="lacks the endpoint"):
        evaluation.load_saved_model(tmp_path / "foreign")


def mixed_size_dataset(sizes, seed=0):
    """Raw-image examples as the augbal builder yields them, of varying sizes."""
    rng = np.random.default_rng(seed)
    examples = [(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), int(rng.integers(0, 2)))
                for h, w in sizes]

    def generate():
        for image, label in examples:
            yield {"image": image, "label": np.int64(label), "source_id": "x"}

    signature = {"image": tf.TensorSpec([None, None, 3], tf.uint8),
                 "label": tf.TensorSpec([], tf.int64), "source_id": tf.TensorSpec([], tf.string)}
    return tf.data.Dataset.from_generator(generate, output_signature=signature), examples


def test_predict_split_batches_consecutive_same_size_images(model):
    sizes = [(20, 20)] * 5 + [(30, 17)] * 2 + [(20, 20)] * 1
    dataset, examples = mixed_size_dataset(sizes)
    serve = export.serving_function(model, IMAGE_SIZE)
    calls = []

    def recording_predict(images):
        calls.append(tuple(images.shape))
        return serve(images)

    y_true, probabilities = evaluation.predict_split(recording_predict, dataset, batch_size=3)
    assert calls == [(3, 20, 20, 3), (2, 20, 20, 3), (2, 30, 17, 3), (1, 20, 20, 3)]
    np.testing.assert_array_equal(y_true, [label for _, label in examples])
    expected = np.concatenate([serve(image[None]).numpy() for image, _ in examples])
    np.testing.assert_allclose(probabilities, expected, rtol=1e-5, atol=1e-6)


def test_predict_split_errors(model):
    serve = export.serving_function(model, IMAGE_SIZE)
    dataset, _ = mixed_size_dataset([(8, 8)])
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        evaluation.predict_split(serve, dataset, batch_size=0)
    with pytest.raises(ValueError, match="no examples"):
        evaluation.predict_split(serve, dataset.take(0), batch_size=4)
    gray = tf.data.Dataset.from_tensors({"image": tf.zeros([8, 8, 1], tf.uint8),
                                         "label": tf.constant(0, tf.int64)})
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        evaluation.predict_split(serve, gray, batch_size=4)


def test_evaluate_dataset_matches_metrics_of_predictions(exported):
    classifier = evaluation.load_saved_model(exported)
    dataset, examples = mixed_size_dataset([(24, 24)] * 6 + [(12, 30)] * 4, seed=3)
    result = evaluation.evaluate_dataset(classifier.predict_fn, dataset, CLASS_NAMES, batch_size=4)
    y_true, probabilities = evaluation.predict_split(classifier.predict_fn, dataset, batch_size=4)
    assert result == metrics.classification_metrics(y_true, probabilities.argmax(1), CLASS_NAMES,
                                                    probabilities)
    assert result["num_examples"] == len(examples)
    assert result["roc_auc"] is not None
    with pytest.raises(ValueError, match="predicts 2 classes but the dataset has 3"):
        evaluation.evaluate_dataset(classifier.predict_fn, dataset, ("a", "b", "c"), batch_size=4)


def write_image_folder(folder: pathlib.Path) -> list[pathlib.Path]:
    (folder / "sub").mkdir(parents=True)
    paths = [folder / "b.png", folder / "a.jpg", folder / "sub" / "c.PNG"]
    for index, path in enumerate(paths):
        image = random_images(index, 1, 20 + 5 * index, 25)[0]
        encoded = (tf.io.encode_png(image) if path.suffix.lower() == ".png"
                   else tf.io.encode_jpeg(image))
        path.write_bytes(encoded.numpy())
    (folder / "readme.txt").write_text("not an image")
    return sorted(paths)


def test_predict_images(exported, tmp_path):
    paths = write_image_folder(tmp_path / "images")
    classifier = evaluation.load_saved_model(exported)
    result = evaluation.predict_images(classifier, tmp_path / "images", batch_size=8)
    assert [p["path"] for p in result["predictions"]] == [str(p) for p in paths]
    for path, prediction in zip(paths, result["predictions"]):
        # Files decode like training data: accurate JPEG DCT (prepare.decode_image).
        image = prepare.decode_image(path.read_bytes()).numpy()
        expected = classifier.predict_fn(image[None]).numpy()[0]
        assert list(prediction["probabilities"]) == list(CLASS_NAMES)
        np.testing.assert_allclose(list(prediction["probabilities"].values()), expected, rtol=1e-6)
        assert prediction["class"] == CLASS_NAMES[int(expected.argmax())]
    json.dumps(result)


def test_predict_images_errors(exported, tmp_path):
    classifier = evaluation.load_saved_model(exported)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        evaluation.predict_images(classifier, tmp_path / "missing", batch_size=8)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="holds no image files"):
        evaluation.predict_images(classifier, tmp_path / "empty", batch_size=8)
    write_image_folder(tmp_path / "broken")
    (tmp_path / "broken" / "zz_truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ValueError, match="zz_truncated.jpg"):
        evaluation.predict_images(classifier, tmp_path / "broken", batch_size=8)


def run_clis(*commands: tuple[str, ...]) -> list[subprocess.CompletedProcess]:
    """`python -m augbal_tf.evaluate` with each argument list, the processes side by side."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    processes = [subprocess.Popen([sys.executable, "-m", "augbal_tf.evaluate", *args], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env) for args in commands]
    done = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=300)
            done.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    finally:
        for process in processes:
            process.kill()  # A no-op once it exited; never leaves a process behind.
            process.wait()
    return done


@pytest.mark.slow
def test_cli_predicts_images_and_reports_errors(exported, tmp_path):
    write_image_folder(tmp_path / "images")
    output = tmp_path / "out" / "predictions.json"
    done, missing = run_clis(
        (f"--saved_model={exported}", f"--images={tmp_path / 'images'}", f"--output={output}"),
        (f"--saved_model={tmp_path / 'nope'}", f"--images={tmp_path / 'images'}", f"--output={tmp_path / 'x.json'}"))
    assert done.returncode == 0, done.stderr
    result = json.loads(output.read_text())
    assert len(result["predictions"]) == 3 and result["class_names"] == list(CLASS_NAMES)
    assert "3 images predicted" in done.stdout

    assert missing.returncode != 0
    assert "nope does not exist" in missing.stderr
    assert not (tmp_path / "x.json").exists()


# --- End to end: a tiny real training run, then the evaluate command on its export ---

E2E_CLASSES = ("tshirt_top", "pullover")


@pytest.fixture(scope="module")
def trained_run(tiny_run_config, tiny_run):
    """tests/conftest.py's tiny run (2 epochs, 20 test images per class; shared with test_train)."""
    workdir, run_metrics = tiny_run
    assert tuple(tiny_run_config.data.classes) == E2E_CLASSES
    return tiny_run_config, pathlib.Path(workdir), run_metrics


@pytest.mark.slow
def test_cli_on_the_exported_model_reproduces_metrics_json(trained_run, tmp_path):
    _, workdir, run_metrics = trained_run
    output = tmp_path / "test.json"
    done, bad_split = run_clis(
        (f"--flagfile={workdir / 'flags.txt'}", f"--saved_model={workdir / 'export'}", "--split=test",
         f"--output={output}"),
        (f"--flagfile={workdir / 'flags.txt'}", f"--saved_model={workdir / 'export'}", "--split=bogus",
         f"--output={tmp_path / 'bogus.json'}"))
    assert done.returncode == 0, done.stderr
    result = json.loads(output.read_text())
    # Same object, same numbers, to the last bit (roc_auc included).
    assert result == run_metrics["test"]
    assert result["num_examples"] == 40 and result["roc_auc"] is not None
    assert set(result["per_class"]) == set(E2E_CLASSES)

    assert bad_split.returncode != 0
    assert "split 'bogus' is not in dataset variant" in bad_split.stderr
    assert "'test'" in bad_split.stderr  # lists the available splits
    assert not (tmp_path / "bogus.json").exists()


@pytest.mark.slow
def test_evaluate_split_rejects_a_variant_with_other_classes(trained_run):
    import dataclasses
    from augbal_datasets.augbal import prepare
    from augbal_tf import config as config_lib
    config, workdir, _ = trained_run
    classifier = evaluation.load_saved_model(workdir / "export")
    swapped = config_lib.replace(config, classes=tuple(reversed(E2E_CLASSES)))
    builder = prepare.prepare_variant(swapped.data, config.data_dir)
    if tuple(builder.info.features["label"].names) == E2E_CLASSES:
        pytest.skip("the builder orders classes itself; reversed --classes gives the same labels")
    with pytest.raises(ValueError, match="differ from the SavedModel's"):
        evaluation.evaluate_split(classifier, builder, "test", batch_size=8)
