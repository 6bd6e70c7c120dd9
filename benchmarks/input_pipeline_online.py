"""Images/s of the training input pipeline with online augmentation (#14) against none.

    python benchmarks/input_pipeline_online.py [--images=400] [--repeats=3] [--size=150]
        [--augmentation=RandAugment] [--parallel=1,2,0]

Iterates `augbal_tf.input_pipeline.SplitPipeline.epoch` alone (decoded-image cache on,
as in training) over the train split of a real prepared augbal variant of Intel Scene
(../shared/data/intel_scene_mini, 150x150), batch 64, one epoch per repeat after a
warm-up epoch that fills the cache. Variants, round-robin per repeat so that load from
other processes hits them alike: no online augmentation; `--augmentation` online on every
image with tf.numpy_function at each `--parallel` value (0: AUTOTUNE); and the same with
`--sampler=class_balanced`. The training step's rate to compare with comes from
benchmarks/results/train_throughput.md (the target: pipeline >= 2x the step).
Writes benchmarks/results/input_pipeline_online.{json,md}.
"""

import datetime
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
import augstatic  # noqa: E402
import tensorflow as tf  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from train_throughput import prepared_train_split  # noqa: E402  (the same prepared variant)

from augbal_tf import input_pipeline  # noqa: E402

flags.DEFINE_integer("images", 400, "Training images (half buildings, half sea).")
flags.DEFINE_integer("repeats", 3, "Timed epochs per variant.")
flags.DEFINE_integer("size", 150, "Model input side.")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
flags.DEFINE_string("augmentation", "RandAugment", "augstatic name applied online.")
flags.DEFINE_list("parallel", ["1", "2", "0"], "num_parallel_calls of the augmentation map (0: AUTOTUNE).")
flags.DEFINE_string("data", str(REPO.parent / "shared" / "data" / "intel_scene_mini"), "intel_scene_mini.")
flags.DEFINE_string("output", str(REPO / "benchmarks" / "results" / "input_pipeline_online"), "Output stem.")
FLAGS = flags.FLAGS


def _variants(encoded, count):
    transform = augstatic.create(FLAGS.augmentation)
    online = input_pipeline.OnlineAugmentation(transform, None, seed=0)
    variants = {"none": input_pipeline.SplitPipeline(encoded, count, FLAGS.size, FLAGS.batch_size, cache=True)}
    for value in (int(v) for v in FLAGS.parallel):
        label = "AUTOTUNE" if value == 0 else str(value)
        variants[f"{FLAGS.augmentation} parallel {label}"] = input_pipeline.SplitPipeline(
            encoded, count, FLAGS.size, FLAGS.batch_size, cache=True, online=online,
            online_parallel_calls=value or None)
    variants[f"{FLAGS.augmentation} AUTOTUNE + class_balanced"] = input_pipeline.SplitPipeline(
        encoded, count, FLAGS.size, FLAGS.batch_size, cache=True, online=online, sampler="class_balanced")
    return variants


def _epoch_rate(pipeline, epoch) -> float:
    start, count = time.perf_counter(), 0
    for images, _ in pipeline.epoch(seed=0, epoch=epoch):
        count += int(images.shape[0])
    return count / (time.perf_counter() - start)


def main(argv) -> None:
    del argv
    with tempfile.TemporaryDirectory() as data_dir:
        encoded = prepared_train_split(pathlib.Path(FLAGS.data), FLAGS.images, data_dir)
        count = int(encoded.reduce(0, lambda n, _: n + 1))
        variants = _variants(encoded, count)
        load_start = os.getloadavg()[0]
        for pipeline in variants.values():
            _epoch_rate(pipeline, 0)  # Warm-up: fills the cache.
        rates = {name: [] for name in variants}
        for repeat in range(FLAGS.repeats):
            for name, pipeline in variants.items():
                rates[name].append(_epoch_rate(pipeline, repeat + 1))
        load_end = os.getloadavg()[0]
    header = (f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}; TF {tf.__version__}; "
              f"{os.cpu_count()} CPUs; {count} Intel Scene train images at {FLAGS.size} px, batch "
              f"{FLAGS.batch_size}, cache on; median of {FLAGS.repeats} epochs; load average {load_start:.1f} at "
              f"start, {load_end:.1f} at end.")
    lines = ["# Training input pipeline with online augmentation (benchmarks/input_pipeline_online.py)", "",
             header, "", "| pipeline | images/s (median) | min..max |", "|---|---|---|"]
    for name, values in rates.items():
        lines.append(f"| {name} | {statistics.median(values):.1f} | {min(values):.1f}..{max(values):.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    pathlib.Path(FLAGS.output + ".json").write_text(json.dumps(
        {"header": header, "images_per_second": rates}, indent=2))
    pathlib.Path(FLAGS.output + ".md").write_text(text)


if __name__ == "__main__":
    app.run(main)
