"""Where a ResNet18 training step spends its time: per-op self times, Keras against PyTorch.

    python benchmarks/train_step_profile.py [--size=150] [--batch_size=32] [--steps=3]
        [--variants=keras-float32,keras-bfloat16,keras-bfloat16-deterministic,torch-bfloat16-channels_last]

Profiles, after warm-up steps, `--steps` training steps of each variant of
benchmarks/train_throughput.py (the same Trainer step and the same PyTorch loop):
Keras through the TF profiler (the host trace's op events, grouped by op type,
their self time), PyTorch through `torch.profiler` (`self_cpu_time_total` per op).
Prints each variant's top ops (ms per step, share of the step) and writes
benchmarks/results/train_step_profile.{md,json}. Run with `ONEDNN_VERBOSE=1` to see
which oneDNN kernels (e.g. `avx512_core_amx` vs `avx512_core`) each op ran.
"""

import argparse
import collections
import json
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import train_throughput  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "train_step_profile"
VARIANTS = ("keras-float32", "keras-bfloat16", "keras-bfloat16-deterministic", "torch-float32-channels_last",
            "torch-bfloat16-channels_last")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=150)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3, help="profiled steps per variant")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--top", type=int, default=12, help="ops listed per variant")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--output", default=str(RESULTS))
    return parser.parse_args()


def build(name: str, size: int, batch_size: int):
    framework, precision, *rest = name.split("-")
    rng = np.random.default_rng(0)
    if framework == "keras":
        return train_throughput.KerasVariant(size, batch_size, False, rng, precision,
                                             deterministic="deterministic" in rest)
    return train_throughput.TorchVariant(size, batch_size, "channels_last" in rest, rng, precision)


def _xplane_op_times(logdir: str) -> dict[str, float]:
    """Self microseconds per TF op type from the host plane of the newest trace under `logdir`."""
    path = max(pathlib.Path(logdir).rglob("*.xplane.pb"), key=lambda p: p.stat().st_mtime)
    space = xplane_pb2.XSpace()
    space.ParseFromString(path.read_bytes())
    times = collections.defaultdict(float)
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        for line in plane.lines:
            # Op events are "name:Type" TraceMes; on a thread they nest (a function call op holds
            # the ops it runs), so self time = duration minus the children's durations.
            events = sorted(((event.offset_ps, event.offset_ps + event.duration_ps,
                              plane.event_metadata[event.metadata_id].name) for event in line.events),
                            key=lambda item: (item[0], -item[1]))
            stack = []  # [op type or None, start, end, children's time]

            def pop() -> None:
                op_type, begin, finish, children = stack.pop()
                if op_type is not None:
                    times[op_type] += (finish - begin - children) / 1e6  # ps -> us
                if stack:
                    stack[-1][3] += finish - begin

            for begin, finish, name in events:
                while stack and stack[-1][2] <= begin:
                    pop()
                op_type = name.rsplit(":", 1)[1] if ":" in name and "::" not in name else None
                stack.append([op_type, begin, finish, 0])
            while stack:
                pop()
    return dict(times)


def profile_keras(variant, steps: int) -> tuple[dict[str, float], float]:
    logdir = tempfile.mkdtemp(prefix="train_step_profile_")
    options = tf.profiler.experimental.ProfilerOptions(host_tracer_level=2, python_tracer_level=0)
    tf.profiler.experimental.start(logdir, options=options)
    start = time.perf_counter()
    variant.run(steps)
    seconds = time.perf_counter() - start
    tf.profiler.experimental.stop()
    return _xplane_op_times(logdir), seconds


def profile_torch(variant, steps: int) -> tuple[dict[str, float], float]:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        start = time.perf_counter()
        variant.run(steps)
        seconds = time.perf_counter() - start
    return {event.key: event.self_cpu_time_total for event in profiler.key_averages()}, seconds


def main() -> None:
    args = parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    torch.set_num_threads(args.threads)
    results = {"environment": {"size": args.size, "batch_size": args.batch_size, "steps": args.steps,
                               "threads": args.threads, "load_average_at_start": os.getloadavg(),
                               "tensorflow": tf.__version__, "torch": torch.__version__,
                               "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS")},
               "variants": {}}
    for name in args.variants.split(","):
        variant = build(name, args.size, args.batch_size)
        variant.run(args.warmup)
        profiler = profile_keras if name.startswith("keras") else profile_torch
        op_us, seconds = profiler(variant, args.steps)
        step_ms = 1000 * seconds / args.steps
        total_ms = sum(op_us.values()) / 1000 / args.steps
        ops = sorted(((op, us / 1000 / args.steps) for op, us in op_us.items()), key=lambda item: -item[1])
        results["variants"][name] = {"step_ms": step_ms, "op_self_ms_per_step": dict(ops),
                                     "op_total_ms_per_step": total_ms}
        print(f"\n{name}: {step_ms:.0f} ms/step wall ({args.batch_size / seconds * args.steps:.1f} images/s "
              f"under the profiler), op self time {total_ms:.0f} ms/step (both threads' ops summed)")
        for op, ms in ops[:args.top]:
            print(f"  {op:45s} {ms:8.1f} ms  {100 * ms / total_ms:5.1f}%")
    results["environment"]["load_average_at_end"] = os.getloadavg()
    output = pathlib.Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [f"# Training step profile (benchmarks/train_step_profile.py)\n",
             f"{args.size} px, batch {args.batch_size}, {args.steps} profiled steps per variant, "
             f"{args.threads} threads; load average {results['environment']['load_average_at_start'][0]:.1f} "
             f"at start, {results['environment']['load_average_at_end'][0]:.1f} at end.\n"]
    for name, value in results["variants"].items():
        lines += [f"\n## {name}: {value['step_ms']:.0f} ms/step wall, op self time "
                  f"{value['op_total_ms_per_step']:.0f} ms/step\n", "| op | ms/step | share |", "|---|---|---|"]
        for op, ms in list(value["op_self_ms_per_step"].items())[:args.top]:
            lines.append(f"| {op} | {ms:.1f} | {100 * ms / value['op_total_ms_per_step']:.1f}% |")
    output.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {output.with_suffix('.md')}")


if __name__ == "__main__":
    main()
