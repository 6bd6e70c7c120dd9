"""Online augmentation (#14) and online re-sampling (#13) in augbal_tf.input_pipeline and config."""

import json
import os
import pathlib
import signal
import subprocess
import sys

import augstatic
import numpy as np
import pytest
import tensorflow as tf

from augbal_tf import config as config_lib
from augbal_tf import input_pipeline
from augbal_tf import preprocessing
from augbal_tf import samplers

SIZE = 16


def _encoded_split(labels) -> tf.data.Dataset:
    """PNG images with a random texture each (seeded), so that every transform changes them."""
    rng = np.random.default_rng(123)
    images = rng.integers(0, 256, size=(len(labels), SIZE, SIZE, 3), dtype=np.uint8)
    return tf.data.Dataset.from_tensor_slices((images, np.asarray(labels, np.int64))).map(
        lambda image, label: (tf.io.encode_png(image), label)), images


def _pipeline(encoded, count, online=None, sampler="none", batch_size=5):
    return input_pipeline.SplitPipeline(encoded, count, image_size=SIZE, batch_size=batch_size, cache=True,
                                        online=online, sampler=sampler)


def _pixels(dataset) -> tuple[np.ndarray, np.ndarray]:
    images, labels = zip(*[(images.numpy(), labels.numpy()) for images, labels in dataset])
    return np.concatenate(images), np.concatenate(labels)


def _to_uint8(images: np.ndarray) -> np.ndarray:
    std, mean = np.array(preprocessing.IMAGENET_STD), np.array(preprocessing.IMAGENET_MEAN)
    return np.rint((images * std + mean) * 255.0).astype(np.int64)


def _online(name="RandAugment", classes=None, seed=7):
    return input_pipeline.OnlineAugmentation(augstatic.create(name), classes, seed)


def test_epoch_pixels_equal_across_builds_and_differ_between_epochs():
    labels = np.arange(12) % 3
    encoded, _ = _encoded_split(labels)
    first = _pixels(_pipeline(encoded, 12, _online()).epoch(seed=3, epoch=0))
    again = _pixels(_pipeline(encoded, 12, _online()).epoch(seed=3, epoch=0))
    second = _pixels(_pipeline(encoded, 12, _online()).epoch(seed=3, epoch=1))
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], second[0])


def test_augmented_pixels_are_the_transform_of_the_keyed_generator():
    # Independent reference: example k (index in the fixed order) of epoch e is
    # transform(image_k, default_rng(SeedSequence([seed, e, ONLINE_STREAM, k, 0]))).
    labels = np.arange(6) % 2
    encoded, images = _encoded_split(labels)
    online = _online("TrivialAugmentWide", seed=5)
    pipeline = input_pipeline.SplitPipeline(encoded, 6, image_size=SIZE, batch_size=6, cache=False, online=online)
    order = list(pipeline._decoded.shuffle(6, seed=input_pipeline.epoch_seed(1, 2, input_pipeline.SHUFFLE_STREAM),
                                           reshuffle_each_iteration=False).map(lambda k, i, l: k).as_numpy_iterator())
    actual, _ = _pixels(pipeline.epoch(seed=1, epoch=2))
    transform = augstatic.create("TrivialAugmentWide")
    for row, key in enumerate(order):
        rng = np.random.default_rng(np.random.SeedSequence([5, 2, input_pipeline.ONLINE_STREAM, int(key), 0]))
        expected = transform(images[key], rng=rng).astype(np.int64)
        assert np.abs(_to_uint8(actual[row]) - expected).max() <= 1


def test_minority_only_leaves_majority_pixels_untouched():
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    encoded, _ = _encoded_split(labels)
    plain, plain_labels = _pixels(_pipeline(encoded, 8).epoch(seed=0, epoch=0))
    augmented, aug_labels = _pixels(_pipeline(encoded, 8, _online(classes=(1,))).epoch(seed=0, epoch=0))
    np.testing.assert_array_equal(plain_labels, aug_labels)  # Same order: augmentation draws no shuffle.
    majority = plain_labels == 0
    np.testing.assert_array_equal(augmented[majority], plain[majority])
    assert all(not np.array_equal(augmented[i], plain[i]) for i in np.flatnonzero(~majority))


def test_resolve_minority_classes():
    base = dict(source="sample", classes=("tshirt_top", "pullover", "dress"))
    counts = np.array([10, 3, 3])
    names = ("tshirt_top", "pullover", "dress")
    config = config_lib.make(**base, online_augmentation="HorizontalFlip", online_classes="minority")
    assert input_pipeline.resolve_online_classes(config, names, counts) == (1, 2)
    config = config_lib.make(**base, minority=("dress",), online_augmentation="HorizontalFlip",
                             online_classes="minority")
    assert input_pipeline.resolve_online_classes(config, names, counts) == (2,)
    assert input_pipeline.resolve_online_classes(config_lib.replace(config, online_classes="all"),
                                                 names, counts) is None


def test_sampler_class_frequencies_determinism_and_duplicates_augmented_differently():
    labels = np.array([0] * 24 + [1] * 6)
    encoded, _ = _encoded_split(labels)
    pipeline = _pipeline(encoded, 30, sampler="class_balanced")
    _, drawn = _pixels(pipeline.epoch(seed=4, epoch=0))
    expected = labels[samplers.epoch_indices(labels, "class_balanced", 4, 0)]
    np.testing.assert_array_equal(drawn, expected)
    # Class-balanced: the minority's expected share is 1/2 (30 draws; 6 of 30 without it).
    counts = [np.bincount(_pixels(pipeline.epoch(seed=4, epoch=e))[1], minlength=2) for e in range(4)]
    assert 0.3 < np.mean([c[1] / 30 for c in counts]) < 0.7
    np.testing.assert_array_equal(_pixels(_pipeline(encoded, 30, sampler="class_balanced").epoch(4, 0))[1], drawn)

    # With online augmentation, the generator depends on the draw position: two draws of
    # one example get different augmentations.
    online = _online("RandAugment", seed=2)
    resampled = _pipeline(encoded, 30, online, sampler="class_balanced", batch_size=30)
    images, _ = _pixels(resampled.epoch(seed=4, epoch=0))
    indices = samplers.epoch_indices(labels, "class_balanced", 4, 0)
    repeated = np.flatnonzero(indices == np.bincount(indices).argmax())
    assert len(repeated) >= 2
    assert not np.array_equal(images[repeated[0]], images[repeated[1]])
    np.testing.assert_array_equal(_pixels(_pipeline(encoded, 30, online, sampler="class_balanced",
                                                    batch_size=30).epoch(4, 0))[0], images)


@pytest.mark.parametrize("fields, message", [
    ({"online_augmentation": "NoSuchAugmentation"}, "--online_augmentation='NoSuchAugmentation'"),
    ({"online_augmentation": "RandAugment", "online_augmentation_params": '{"bogus": 1}'}, "bogus"),
    ({"online_augmentation": "RandAugment", "online_augmentation_params": "{not json"},
     "--online_augmentation_params='{not json' is not valid JSON"),
    ({"online_augmentation": "RandAugment", "online_augmentation_params": "[1]"}, "must be a JSON object"),
    ({"online_augmentation_params": '{"num_ops": 1}'}, "--online_augmentation is empty"),
    ({"online_classes": "minority"}, "--online_classes=minority needs --online_augmentation"),
    ({"online_augmentation": "RandAugment", "online_classes": "rare"}, "--online_classes='rare'"),
    ({"sampler": "oversample"}, "--sampler='oversample' is not valid; allowed: none, class_balanced"),
])
def test_bad_online_settings_fail_naming_the_flag(fields, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("{", r"\{")):
        config_lib.make(source="sample", **fields)


def test_new_fields_at_default_keep_the_flags_hash():
    config = config_lib.make(source="sample")
    hashed = {key: value for key, value in config_lib.to_dict(config).items()
              if key not in config_lib.UNHASHED_FIELDS and not (
                  key in config_lib.HASHED_ONLY_WHEN_SET and value == config_lib.HASHED_ONLY_WHEN_SET[key])}
    assert not {"online_augmentation", "online_augmentation_params", "online_classes", "sampler"} & set(hashed)
    changed = config_lib.replace(config, online_augmentation="RandAugment")
    assert config_lib.flags_hash(changed) != config_lib.flags_hash(config)
    assert config_lib.flags_hash(config_lib.replace(config, sampler="square_root")) != config_lib.flags_hash(config)


def test_online_flags_round_trip_through_the_flagfile():
    import copy  # pylint: disable=g-import-not-at-top
    from absl import flags  # pylint: disable=g-import-not-at-top
    from augbal_tf import flags as flags_lib  # noqa: F401  pylint: disable=g-import-not-at-top

    def parse(*argv):
        values = copy.deepcopy(flags.FLAGS)
        values(["prog", *argv])
        return values

    config = config_lib.from_flags(parse("--source=sample", "--online_augmentation=RandAugment",
                                         '--online_augmentation_params={"num_ops": 3}', "--online_classes=minority",
                                         "--sampler=square_root"))
    assert (config.online_augmentation, config.online_classes, config.sampler) == (
        "RandAugment", "minority", "square_root")
    assert config_lib.online_params(config) == {"num_ops": 3}
    assert config_lib.online_transform(config).params["num_ops"] == 3
    lines = [line for line in config_lib.flag_lines(config, "/w") if not line.startswith("--workdir")]
    again = config_lib.from_flags(parse(*lines))
    assert again == config and config_lib.flags_hash(again) == config_lib.flags_hash(config)
    # Defaults: the empty strings survive the flagfile too.
    default = config_lib.from_flags(parse("--source=sample"))
    lines = [line for line in config_lib.flag_lines(default, "/w") if not line.startswith("--workdir")]
    assert config_lib.from_flags(parse(*lines)) == default


# --- kill and resume with online augmentation and re-sampling (subprocesses) ---

KILLING_TRAIN = pathlib.Path(__file__).with_name("killing_train.py")


def _start(flag_list, kill_after_epoch=None) -> subprocess.Popen:
    command = ([sys.executable, str(KILLING_TRAIN), f"--kill_after_epoch={kill_after_epoch}"]
               if kill_after_epoch is not None else [sys.executable, "-m", "augbal_tf.train"])
    return subprocess.Popen([*command, *flag_list], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def _wait(process: subprocess.Popen) -> subprocess.CompletedProcess:
    try:
        stdout, stderr = process.communicate(timeout=300)
    finally:
        process.kill()  # A no-op once it exited; never leaves a process behind.
        process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _train(flag_list, kill_after_epoch=None) -> subprocess.CompletedProcess:
    return _wait(_start(flag_list, kill_after_epoch))


def _parsed(flag_list):
    import copy  # pylint: disable=g-import-not-at-top
    from absl import flags  # pylint: disable=g-import-not-at-top
    from augbal_tf import flags as flags_lib  # noqa: F401  pylint: disable=g-import-not-at-top

    values = copy.deepcopy(flags.FLAGS)
    values(["train", *flag_list])
    return values


def _flags(data_dir, workdir):
    values = {"workdir": workdir, "data_dir": data_dir, "source": "sample", "classes": "tshirt_top,pullover",
              "train_per_class": 12, "test_per_class": 6, "validation_per_class": 4, "image_size": 32,
              "epochs": 2, "batch_size": 8, "patience": 0, "log_images": 0, "noexport": None,
              "online_augmentation": "RandAugment", "sampler": "square_root", "model": "resnet18"}
    return [f"--{key}" if value is None else f"--{key}={value}" for key, value in values.items()]


@pytest.mark.slow
def test_killed_and_resumed_run_with_randaugment_equals_an_uninterrupted_run(tmp_path):
    data_dir = str(tmp_path / "tfds")
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    # The variant first, so the reference and the run to kill, started side by side, do not both build it.
    input_pipeline.load_variant(config_lib.from_flags(_parsed(_flags(data_dir, reference))))
    running = _start(_flags(data_dir, reference))
    try:
        killed = _train(_flags(data_dir, interrupted), kill_after_epoch=1)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
        resumed = _train(_flags(data_dir, interrupted))
        assert resumed.returncode == 0, resumed.stderr[-3000:]
    except BaseException:
        running.kill()  # A failure above should not wait for the reference to finish.
        raise
    finally:
        result = _wait(running)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Resuming from the snapshot after epoch 1" in resumed.stderr
    expected, actual = (json.loads((path / "metrics.json").read_text()) for path in (reference, interrupted))
    strip = lambda history: [{k: v for k, v in entry.items() if k != "seconds"} for entry in history]  # noqa: E731
    assert strip(actual["history"]) == strip(expected["history"])
    for key in ("selected_epoch", "validation", "test", "online"):
        assert actual[key] == expected[key], key
    assert actual["online"]["online_augmentation"] == "RandAugment"
    assert actual["online"]["online_classes_resolved"] == ["tshirt_top", "pullover"]
    assert actual["online"]["sampler"] == "square_root"
    assert (reference / "best.weights.h5").read_bytes() != b""
    from augbal_tf import model as model_lib  # pylint: disable=g-import-not-at-top
    models = [model_lib.create_model("resnet18", 2, 32) for _ in range(2)]
    models[0].load_weights(str(reference / "best.weights.h5"))
    models[1].load_weights(str(interrupted / "best.weights.h5"))
    for before, after in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_array_equal(after, before)


# --- a mirrored run sees the one-device pixels (subprocess: the CPU split is per process) ---

_MIRRORED_CHILD = """
import sys
import numpy as np
from augbal_tf import distribution
distribution.configure_cpu_devices(2)
strategy = distribution.create_strategy("mirrored")
import test_online_augmentation as t
from augbal_tf import input_pipeline
encoded, _ = t._encoded_split(np.arange(13) % 3)
pipeline = input_pipeline.SplitPipeline(encoded, 13, image_size=t.SIZE, batch_size=4, cache=True,
                                        replicas=strategy.num_replicas_in_sync, online=t._online(),
                                        sampler="square_root")
parts = []
for images, labels in strategy.experimental_distribute_dataset(pipeline.epoch(seed=3, epoch=1)):
    for replica, (x, y) in enumerate(zip(strategy.experimental_local_results(images),
                                         strategy.experimental_local_results(labels))):
        parts.append((x.numpy(), y.numpy(), np.full(len(y), replica)))
np.savez(sys.argv[1], images=np.concatenate([p[0] for p in parts]), labels=np.concatenate([p[1] for p in parts]),
         replicas=np.concatenate([p[2] for p in parts]), in_sync=strategy.num_replicas_in_sync)
"""


def test_a_mirrored_pipeline_on_two_cpus_sees_the_one_device_pixels(tmp_path):
    # Pixels are augmented in tf.data before distribution, keyed by (seed, epoch, key, draw): each
    # replica's sub-batch is a slice of the one-device batch. The mirrored pipeline drops the last
    # example (13 = 3 x 4 + 1: one example cannot feed 2 replicas), the one-device one keeps it.
    out = tmp_path / "mirrored.npz"
    child = subprocess.run([sys.executable, "-c", _MIRRORED_CHILD, str(out)], capture_output=True, text=True,
                           timeout=300, check=False, cwd=pathlib.Path(__file__).parent,
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
                                "PYTHONPATH": os.pathsep.join([str(pathlib.Path(__file__).parent),
                                                               os.environ.get("PYTHONPATH", "")])})
    assert child.returncode == 0, child.stderr[-3000:]
    mirrored = np.load(out)
    assert int(mirrored["in_sync"]) == 2
    np.testing.assert_array_equal(mirrored["replicas"], [0] * 2 + [1] * 2 + [0] * 2 + [1] * 2 + [0] * 2 + [1] * 2)
    encoded, _ = _encoded_split(np.arange(13) % 3)
    one_device = _pipeline(encoded, 13, _online(), sampler="square_root", batch_size=4)
    images, labels = _pixels(one_device.epoch(seed=3, epoch=1))
    assert len(labels) == 13
    np.testing.assert_array_equal(mirrored["labels"], labels[:12])
    np.testing.assert_array_equal(mirrored["images"], images[:12])
    # Online augmentation changed them (not a trivially equal identity pipeline).
    plain, _ = _pixels(_pipeline(encoded, 13, sampler="square_root", batch_size=4).epoch(seed=3, epoch=1))
    assert not np.array_equal(plain[:12], images[:12])


def test_minority_only_after_random_oversampling_resolves_the_class_with_fewer_real_images(tmp_path):
    # After oversample_random both classes have 16 training images; the minority is the one with 4 real ones.
    from augbal_tf import train  # pylint: disable=g-import-not-at-top

    config = config_lib.make(source="sample", classes=("tshirt_top", "pullover"), train_per_class=16,
                             imbalance_ratio=4, strategy="oversample_random", test_per_class=4,
                             validation_per_class=4, image_size=32, batch_size=8, epochs=1, patience=0,
                             log_images=0, head_width=8, export=False, data_dir=str(tmp_path / "tfds"),
                             online_augmentation="HorizontalFlip", online_classes="minority")
    metrics = train.train_and_evaluate(config, str(tmp_path / "run"))
    assert sorted(metrics["train_counts"]) == [16, 16] and sorted(metrics["shot_counts"]) == [4, 16]
    assert metrics["online"]["online_classes"] == "minority"
    assert metrics["online"]["online_classes_resolved"] == [config.data.classes[int(np.argmin(metrics["shot_counts"]))]]
