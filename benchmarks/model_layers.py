"""The two model details behind the training speed, each against what it replaced.

    python benchmarks/model_layers.py [--repeats=7] [--threads=2]

Times forward + backward, side by side and round-robin in one process, on a
64x38x38x64 activation (ResNet18's first stage at 150 px, batch 64):
  * BatchNorm in training mode: Keras 3's `BatchNormalization` against
    `augbal_tf.model.FusedBatchNormalization` (TF's fused kernel);
  * a 3x3 stride-1 convolution: an explicit `ZeroPadding2D` + "valid" convolution
    (what the model did before) against "same" padding inside the convolution;
and a whole ResNet18 training step (batch 64, 150 px) with each BatchNorm. Prints
the median milliseconds of `--repeats` repeats and the speed-up ratios, and writes
benchmarks/results/model_layers.{md,json}.
"""

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from augbal_tf import config as config_lib  # noqa: E402
from augbal_tf import model as model_lib  # noqa: E402
from augbal_tf import trainer as trainer_lib  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "model_layers"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per variant (median)")
    parser.add_argument("--calls", type=int, default=10, help="layer calls per timed repeat")
    parser.add_argument("--steps", type=int, default=2, help="training steps per timed repeat")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="intra-op threads")
    parser.add_argument("--output", default=str(RESULTS), help="results path without extension")
    return parser.parse_args()


def layer_step(layer: keras.layers.Layer, inputs: tf.Tensor):
    """A compiled forward + backward pass of `layer` in training mode."""
    layer(inputs, training=True)  # Creates the variables.

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.square(layer(x, training=True)))
        return tape.gradient(loss, [x, *layer.trainable_variables])

    return lambda: step(inputs)[0].numpy()


class PaddedConv(keras.layers.Layer):
    """The previous stride-1 unit: ZeroPadding2D(1) + a "valid" 3x3 convolution."""

    def __init__(self, filters: int):
        super().__init__()
        self.pad = keras.layers.ZeroPadding2D(1)
        self.conv = keras.layers.Conv2D(filters, 3, padding="valid", use_bias=False)

    def call(self, inputs, training=False):
        return self.conv(self.pad(inputs))


def training_step(batchnorm_class, rng: np.random.Generator):
    """Our Trainer's real step on a fixed 64x150x150 batch, with `batchnorm_class` in every ConvBN."""
    original = model_lib.FusedBatchNormalization
    model_lib.FusedBatchNormalization = batchnorm_class  # ConvBN looks the class up when built.
    try:
        config = config_lib.make(source="sample", image_size=150, batch_size=64, deterministic=False, epochs=1)
        trainer = trainer_lib.Trainer(config, tf.distribute.get_strategy(), 2, None)
    finally:
        model_lib.FusedBatchNormalization = original
    images = rng.standard_normal((64, 150, 150, 3), dtype=np.float32)
    batch = (tf.constant(images), tf.constant(rng.integers(0, 2, 64), tf.int64))
    return lambda steps: trainer.train_epoch(tf.data.Dataset.from_tensors(batch).repeat(steps), 1)


def main() -> None:
    args = parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    rng = np.random.default_rng(0)
    activation = tf.constant(rng.standard_normal((64, 38, 38, 64), dtype=np.float32))
    pairs = {
        "BatchNorm (training)": (
            ("keras BatchNormalization", layer_step(keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5),
                                                    activation)),
            ("FusedBatchNormalization", layer_step(model_lib.FusedBatchNormalization(momentum=0.9, epsilon=1e-5),
                                                   activation))),
        "3x3 convolution, stride 1": (
            ("ZeroPadding2D + valid", layer_step(PaddedConv(64), activation)),
            ("same padding", layer_step(keras.layers.Conv2D(64, 3, padding="same", use_bias=False), activation))),
    }
    calls = {name: (lambda f=function: [f() for _ in range(args.calls)])
             for variants in pairs.values() for name, function in variants}
    steps = {name: training_step(cls, rng) for name, cls in
             (("step with keras BatchNormalization", keras.layers.BatchNormalization),
              ("step with FusedBatchNormalization", model_lib.FusedBatchNormalization))}
    for function in calls.values():
        function()  # Warm-up: tracing and first-call allocation.
    for step in steps.values():
        step(1)
    times = {name: [] for name in [*calls, *steps]}
    for repeat in range(args.repeats):
        for name, function in calls.items():
            start = time.perf_counter()
            function()
            times[name].append((time.perf_counter() - start) / args.calls * 1000)
        for name, step in steps.items():
            start = time.perf_counter()
            step(args.steps)
            times[name].append((time.perf_counter() - start) / args.steps * 1000)
        print(f"repeat {repeat + 1}/{args.repeats}: "
              + ", ".join(f"{name} {values[-1]:.1f} ms" for name, values in times.items()), flush=True)
    medians = {name: statistics.median(values) for name, values in times.items()}
    rows = [(what, old, new) for what, ((old, _), (new, _)) in pairs.items()]
    rows.append(("ResNet18 training step, 150 px, batch 64", *steps))
    lines = ["| what | before (ms, median) | after (ms, median) | speed-up |", "|---|---|---|---|"]
    for what, old, new in rows:
        lines.append(f"| {what} | {old}: {medians[old]:.1f} | {new}: {medians[new]:.1f} | "
                     f"{medians[old] / medians[new]:.2f}x |")
    table = "\n".join(lines)
    print("\n" + table)
    output = pathlib.Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(
        {"threads": args.threads, "repeats": args.repeats, "tensorflow": tf.__version__,
         "milliseconds": times}, indent=2) + "\n")
    output.with_suffix(".md").write_text(
        f"# Model layers (benchmarks/model_layers.py)\n\nTF {tf.__version__}; {os.cpu_count()} CPUs, "
        f"{args.threads} threads; median of {args.repeats} repeats; forward + backward in training "
        f"mode on a 64x38x38x64 activation; load average {os.getloadavg()[0]:.1f} at the end.\n\n"
        + table + "\n")
    print(f"wrote {output.with_suffix('.md')} and {output.with_suffix('.json')}")


if __name__ == "__main__":
    main()
