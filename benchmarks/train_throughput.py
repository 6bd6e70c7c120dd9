"""Training throughput: our Keras ResNet18 + head against the same model in PyTorch.

    python benchmarks/train_throughput.py [--repeats=5] [--steps=3] [--sizes=150,224]
        [--jit_steps=0] [--input_images=0]

Times, side by side in one process and round-robin (every repeat runs every
variant once, so load from other processes hits all variants alike):
  * keras: `augbal_tf.trainer.Trainer.train_epoch` (the real training step:
    default strategy, Adam 3e-4, batch 64) in float32 and under the mixed_bfloat16
    policy, each with TF op determinism off and on (on is the training default; it
    is set before each variant's run since it is process-wide), and float32 with
    `--jit_compile` (determinism off: XLA has no deterministic MaxPool gradient;
    `--jit_steps=0` skips it);
  * torch: the same ResNet18 + head (benchmarks/torch_resnet18.py) in a plain
    training loop (Adam 3e-4, NLL on LogSoftmax), NCHW and channels_last, in
    float32 and under `torch.autocast("cpu", dtype=torch.bfloat16)`;
  * input: the tf.data pipeline alone (`augbal_tf.input_pipeline.SplitPipeline`
    over the train split of a real prepared augbal variant of Intel Scene:
    read the stored PNGs, decode, shuffle, resize, normalise, batch), without
    and with the decoded-image cache (`--input_images=0` skips it).
Both frameworks get the same number of threads. Reports the median images/s of
`--repeats` repeats of `--steps` steps each, after warm-up steps; ratios are
medians of per-repeat ratios (Keras against the faster PyTorch layout at the same
precision, and against Keras float32). GFLOP/s = images/s x 3 x forward FLOPs per
image (backward ~ 2x forward), forward FLOPs counted from the conv and dense shapes
(`resnet18_forward_flops`); peak = cores x clock x FLOPs/cycle (`cpu_peak_gflops`
states the assumptions). Writes benchmarks/results/train_throughput.{md,json}.
"""

import argparse
import atexit
import datetime
import json
import os
import pathlib
import platform
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import torch_resnet18  # noqa: E402

from augbal_tf import config as config_lib  # noqa: E402
from augbal_tf import input_pipeline  # noqa: E402
from augbal_tf import model as model_lib  # noqa: E402
from augbal_tf import precision as precision_lib  # noqa: E402
from augbal_tf import trainer as trainer_lib  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "benchmarks" / "results" / "train_throughput"
NUM_CLASSES = 2


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="150,224", help="model input sizes, comma-separated")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per variant (>= 5)")
    parser.add_argument("--steps", type=int, default=3, help="training steps per timed repeat")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before timing")
    parser.add_argument("--jit_steps", type=int, default=1,
                        help="steps per timed repeat of the jit variant (XLA on CPU is slow)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="intra-op threads for both frameworks")
    parser.add_argument("--input_images", type=int, default=512,
                        help="real images in the input-pipeline measurement (built into a temporary "
                             "augbal variant)")
    parser.add_argument("--data", default=str(REPO_ROOT.parent / "shared" / "data" / "intel_scene_mini"),
                        help="intel_scene_mini folder (input-pipeline measurement)")
    parser.add_argument("--output", default=str(RESULTS), help="results path without extension")
    return parser.parse_args()


def set_determinism(deterministic: bool) -> None:
    """Op determinism is process-wide: set before every run (kernels may read it when built or run)."""
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    else:
        from tensorflow.python.framework import config as tf_config  # pylint: disable=g-import-not-at-top
        tf_config.disable_op_determinism()


def trainer_with_policy(config, policy: str) -> trainer_lib.Trainer:
    """A Trainer whose model has the Keras dtype `policy` (until --precision reaches the Trainer)."""
    original = model_lib.create_model

    def create_model(*args, **kwargs):
        return original(*args, **{**kwargs, "dtype": policy})

    model_lib.create_model = create_model  # The Trainer looks create_model up when built.
    try:
        return trainer_lib.Trainer(config, tf.distribute.get_strategy(), NUM_CLASSES, None)
    finally:
        model_lib.create_model = original


class KerasVariant:
    """Our Trainer's real train step on a fixed batch, repeated `steps` times per epoch."""

    def __init__(self, image_size: int, batch_size: int, jit_compile: bool, rng: np.random.Generator,
                 precision: str = "float32", deterministic: bool = False):
        self.name = (f"keras {precision} {'jit' if jit_compile else 'no-jit'}"
                     f"{' deterministic' if deterministic else ''}")
        self.jit_compile, self.precision, self.deterministic = jit_compile, precision, deterministic
        # XLA has no deterministic MaxPool gradient: jit needs op determinism off (as the train flags).
        config = config_lib.make(source="sample", image_size=image_size, batch_size=batch_size,
                                 jit_compile=jit_compile, deterministic=deterministic, epochs=1)
        self.trainer = trainer_with_policy(config, precision_lib.keras_policy(precision))
        images = rng.standard_normal((batch_size, image_size, image_size, 3), dtype=np.float32)
        labels = rng.integers(0, NUM_CLASSES, batch_size)
        self.batch = (tf.constant(images), tf.constant(labels, tf.int64))
        self.epoch = 0

    def run(self, steps: int) -> None:
        set_determinism(self.deterministic)
        self.epoch += 1
        self.trainer.train_epoch(tf.data.Dataset.from_tensors(self.batch).repeat(steps), self.epoch)


class TorchVariant:
    """The same model in a plain PyTorch training loop."""

    def __init__(self, image_size: int, batch_size: int, channels_last: bool, rng: np.random.Generator,
                 precision: str = "float32"):
        self.name = f"torch {precision} {'channels_last' if channels_last else 'NCHW'}"
        self.precision = precision
        torch.manual_seed(0)
        self.model = torch_resnet18.ResNet18Classifier(NUM_CLASSES)
        assert torch_resnet18.num_trainable_parameters(self.model) == 11_440_194
        images = torch.from_numpy(rng.standard_normal((batch_size, 3, image_size, image_size),
                                                      dtype=np.float32))
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
            images = images.contiguous(memory_format=torch.channels_last)
        self.images = images
        self.labels = torch.from_numpy(rng.integers(0, NUM_CLASSES, batch_size))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=3e-4)
        self.loss = torch.nn.NLLLoss()
        self.model.train()

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.optimizer.zero_grad(set_to_none=True)
            # PyTorch's CPU mixed precision: convolutions and matmuls in bfloat16, weights float32.
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bfloat16"):
                log_probabilities = self.model(self.images)
            loss = self.loss(log_probabilities.float(), self.labels)
            loss.backward()
            self.optimizer.step()
            loss.detach().item()  # Our Trainer also reads the loss back every step.


def prepared_train_split(data: pathlib.Path, count: int, data_dir: str) -> tf.data.Dataset:
    """Encoded train examples of a real prepared augbal variant (Intel Scene, PNG, 150x150)."""
    if not (data / "seg_train" / "seg_train").is_dir():
        raise FileNotFoundError(f"intel_scene_mini not found at {data} (pass --data)")
    config = config_lib.make(
        data_dir=data_dir, manual_dir=str(data), source="manual", classes=("buildings", "sea"),
        train_per_class=count // 2, test_per_class=1, validation_per_class=0, selection="test",
        sampling="balanced")
    return input_pipeline.load_variant(config).encoded("train")


class InputVariant:
    """`SplitPipeline.epoch` iterated alone: the images/s the pipeline can supply."""

    def __init__(self, encoded: tf.data.Dataset, image_size: int, batch_size: int, cache: bool):
        self.name = f"input pipeline {'cached' if cache else 'uncached'}"
        num_examples = int(encoded.reduce(0, lambda count, _: count + 1))
        self.pipeline = input_pipeline.SplitPipeline(encoded, num_examples, image_size, batch_size,
                                                     cache=cache)
        self.epoch = 0
        self.run_epoch()  # Fills the cache (when on) and warms up tf.data.

    def run_epoch(self) -> int:
        self.epoch += 1
        count = 0
        for images, _ in self.pipeline.epoch(seed=0, epoch=self.epoch):
            count += int(images.shape[0])
        return count


def resnet18_forward_flops(image_size: int, num_classes: int = NUM_CLASSES, head_width: int = 512) -> int:
    """Forward FLOPs of one image (2 per multiply-add) from the conv and dense shapes alone.

    BatchNorm, ReLU, pooling and additions (< 1% of the total) are not counted.
    """
    def conv(size, in_channels, out_channels, kernel, stride, pad):
        out = (size + 2 * pad - kernel) // stride + 1
        return out, 2 * out * out * kernel * kernel * in_channels * out_channels

    size, flops = conv(image_size, 3, 64, 7, 2, 3)
    size = (size + 2 - 3) // 2 + 1  # 3x3 max pool, stride 2, pad 1.
    in_channels = 64
    for stage, filters in enumerate(model_lib.STAGE_FILTERS):
        for index in range(model_lib.RESNET_SPECS["resnet18"][stage]):
            stride = 2 if stage > 0 and index == 0 else 1
            if stride != 1 or in_channels != filters:
                flops += conv(size, in_channels, filters, 1, stride, 0)[1]
            out, first = conv(size, in_channels, filters, 3, stride, 1)
            flops += first + conv(out, filters, filters, 3, 1, 1)[1]
            size, in_channels = out, filters
    return flops + 2 * (in_channels * head_width + head_width * num_classes)


def _cpuinfo_field(name: str) -> str:
    with open("/proc/cpuinfo", encoding="utf-8") as file:
        for line in file:
            key, _, value = line.partition(":")
            if key.strip() == name:
                return value.strip()
    return ""


def cpu_peak_gflops(threads: int) -> dict:
    """Peak GFLOP/s of `threads` cores: cores x GHz x FLOPs per cycle per core.

    Assumed: the clock is the TSC rate (/proc/cpuinfo bogomips / 2; a VM shows no turbo
    clock). FLOPs/cycle per core: Intel AVX-512 FP32 = 2 FMA ports x 16 lanes x 2 = 64,
    AMX BF16 = 1024 (Intel's figure for Sapphire Rapids: a 16x32 by 32x16 tile product in
    16 cycles), AVX512-BF16 without AMX = 128 (VDPBF16PS: 2 FLOPs per bf16 pair, twice the
    FP32 lanes); AMD Zen 4 (family 25 with AVX-512) runs 512-bit ops on two 256-bit FMA
    pipes: FP32 32, BF16 64; Zen 5 (family 26) has full 512-bit pipes: 64 and 128.
    """
    ghz = float(_cpuinfo_field("bogomips") or 0) / 2000.0
    flags = precision_lib.cpu_flags()
    vendor, family = _cpuinfo_field("vendor_id"), _cpuinfo_field("cpu family")
    float32 = 32 if vendor == "AuthenticAMD" and family == "25" or "avx512f" not in flags else 64
    bfloat16 = 1024 if "amx_bf16" in flags else 2 * float32 if "avx512_bf16" in flags else float32
    return {"ghz_assumed": ghz, "cores": threads, "cpu": _cpuinfo_field("model name"),
            "vendor": vendor, "family": family, "float32_flops_per_cycle": float32,
            "bfloat16_flops_per_cycle": bfloat16,
            "float32": threads * ghz * float32, "bfloat16": threads * ghz * bfloat16}


def time_call(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def environment(args: argparse.Namespace) -> dict:
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "load_average_at_start": os.getloadavg(),
            "tensorflow": tf.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "threads": args.threads,
            "batch_size": args.batch_size,
            "repeats": args.repeats, "steps_per_repeat": args.steps, "jit_steps_per_repeat": args.jit_steps,
            "warmup_steps": args.warmup}


def main() -> None:
    args = parse_args()
    if args.repeats < 5:
        raise SystemExit(f"--repeats={args.repeats} is too few; the targets use the median of >= 5")
    sizes = [int(size) for size in args.sizes.split(",")]
    # Same threads for both frameworks, set before either runtime starts.
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)

    results = {"environment": environment(args), "training": {}, "input": {}}
    results["environment"]["forward_flops"] = {str(size): resnet18_forward_flops(size) for size in sizes}
    results["environment"]["peak_gflops"] = cpu_peak_gflops(args.threads)
    data_dir = tempfile.mkdtemp(prefix="train_throughput_tfds_")
    atexit.register(shutil.rmtree, data_dir, ignore_errors=True)  # also on errors
    encoded = (prepared_train_split(pathlib.Path(args.data), args.input_images, data_dir)
               if args.input_images else None)
    for size in sizes:
        # The default training run has op determinism on: measured beside the non-deterministic rows.
        variants = [KerasVariant(size, args.batch_size, False, rng, precision, deterministic)
                    for precision in ("float32", "bfloat16") for deterministic in (False, True)]
        if args.jit_steps:
            variants.append(KerasVariant(size, args.batch_size, True, rng))
        variants += [TorchVariant(size, args.batch_size, channels_last, rng, precision)
                     for precision in ("float32", "bfloat16") for channels_last in (False, True)]
        inputs = ([InputVariant(encoded, size, args.batch_size, cache=cache) for cache in (False, True)]
                  if encoded is not None else [])
        # XLA on CPU runs ~10x slower: fewer steps keep the jit variant's share of time sane.
        steps = {variant.name: args.jit_steps if getattr(variant, "jit_compile", False) else args.steps
                 for variant in variants}
        for variant in variants:
            print(f"[{size}px] warm-up {variant.name} ...", flush=True)
            variant.run(min(args.warmup, steps[variant.name]))
        train_rates = {variant.name: [] for variant in variants}
        input_rates = {variant.name: [] for variant in inputs}
        for repeat in range(args.repeats):
            for variant in variants:
                seconds = time_call(variant.run, steps[variant.name])
                train_rates[variant.name].append(steps[variant.name] * args.batch_size / seconds)
            for variant in inputs:
                start = time.perf_counter()
                count = variant.run_epoch()
                input_rates[variant.name].append(count / (time.perf_counter() - start))
            print(f"[{size}px] repeat {repeat + 1}/{args.repeats}: "
                  + ", ".join(f"{name} {rates[-1]:.1f}" for name, rates in
                              {**train_rates, **input_rates}.items()) + " images/s", flush=True)
        results["training"][size] = {name: {"median": statistics.median(rates), "runs": rates}
                                     for name, rates in train_rates.items()}
        results["input"][size] = {name: {"median": statistics.median(rates), "runs": rates}
                                  for name, rates in input_rates.items()}
    results["environment"]["load_average_at_end"] = os.getloadavg()
    table = format_table(results, sizes)
    print("\n" + table)
    output = pathlib.Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    env = results["environment"]
    header = (f"# Training throughput (benchmarks/train_throughput.py)\n\n"
              f"{env['date']}; TF {env['tensorflow']}, torch {env['torch']}; {env['cpu_count']} CPUs, "
              f"{env['threads']} threads each; batch {env['batch_size']}; median of {env['repeats']} "
              f"repeats x {env['steps_per_repeat']} steps ({env['jit_steps_per_repeat']} for jit); "
              "load average "
              f"{env['load_average_at_start'][0]:.1f} at start, {env['load_average_at_end'][0]:.1f} "
              "at end (other processes share the CPU).\n\n")
    output.with_suffix(".md").write_text(header + table + "\n")
    print(f"wrote {output.with_suffix('.md')} and {output.with_suffix('.json')}")


def format_table(results: dict, sizes: list[int]) -> str:
    peak = results["environment"]["peak_gflops"]
    lines = ["| size | variant | images/s (median) | min..max | vs faster torch, same precision (per-repeat "
             "ratios) | vs keras float32 no-jit (per-repeat) | GFLOP/s | % of peak |",
             "|---|---|---|---|---|---|---|---|"]
    for size in sizes:
        training = results["training"][size]
        # Train step FLOPs = 3x forward (backward: gradients of inputs and of weights).
        step_flops = 3 * results["environment"]["forward_flops"][str(size)]
        baseline = np.asarray(training["keras float32 no-jit"]["runs"])
        for name, value in training.items():
            precision = "bfloat16" if "bfloat16" in name else "float32"
            torch_names = [other for other in training if other.startswith(f"torch {precision}")]
            # Ratios within one repeat cancel load drift from other processes between repeats.
            best_torch_runs = np.max([training[other]["runs"] for other in torch_names], axis=0)
            runs = np.asarray(value["runs"])
            gflops = value["median"] * step_flops / 1e9
            lines.append(f"| {size} | {name} | {value['median']:.1f} | {runs.min():.1f}..{runs.max():.1f} | "
                         f"{statistics.median(runs / best_torch_runs):.2f}x | "
                         f"{statistics.median(runs / baseline):.2f}x | {gflops:.0f} | "
                         f"{100 * gflops / peak[precision]:.1f}% of {peak[precision]:.0f} |")
    lines += ["", "| size | input pipeline | images/s (median) | vs fastest training step |",
              "|---|---|---|---|"]
    for size in sizes:
        fastest_training = max(v["median"] for v in results["training"][size].values())
        for name, value in results["input"][size].items():
            lines.append(f"| {size} | {name} | {value['median']:.1f} | "
                         f"{value['median'] / fastest_training:.1f}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
