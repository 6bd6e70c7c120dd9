"""Dataset build throughput: the augbal tfds builder vs the paper-style file pipeline.

Workload (issue 4): intel_scene_mini, buildings vs sea, imbalance ratio 8, one
augmentation, oversample_augment. The augbal builder writes train / validation /
test TFRecords with provenance and metadata; the paper-style pipeline does the same
sampling with plain files: it copies the kept originals and the test images into
class folders and, for each generated image, reads a minority original with
cv2.imread, applies the Albumentations transform and saves it with cv2.imwrite as
JPEG. Both get the same counts (the builder's plan: majority after the validation
carve, minority = majority // 8). Everything runs in this process after a warm-up
round (interpreter and library start-up excluded); pipelines alternate within each
round, the time is the median over rounds, and peak RSS (this process plus its
children, sampled every 20 ms) is the highest over rounds, also shown as growth
over the RSS at the start of the run.

    python benchmarks/build_throughput.py [--rounds 3] [--augmentation HorizontalFlip]

Writes benchmarks/results/build_throughput.md (and .json).
"""

import argparse
import json
import os
import pathlib
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import cv2  # noqa: E402
import psutil  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "intel_scene_mini"
RESULTS = REPO / "benchmarks" / "results"
BEAM_OPTIONS = ["--runner=FnApiRunner", "--direct_num_workers=2",
                "--direct_running_mode=multi_processing"]


class PeakRss:
    """Samples RSS of this process and its children in a thread; `.peak_mib` after exit."""

    def __init__(self, interval: float = 0.02):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._process = psutil.Process()

    def _rss(self) -> int:
        total = self._process.memory_info().rss
        for child in self._process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            self._stop.wait(self.interval)

    def __enter__(self):
        self.start = self.peak = self._rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def peak_mib(self) -> float:
        return self.peak / 2**20

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.start) / 2**20


def builder_config(augmentation: str) -> dict:
    return dict(source="manual", classes=["buildings", "sea"], minority="sea", imbalance_ratio=8,
                strategy="oversample_augment", augmentation=augmentation, validation_per_class=0.1)


def run_builder(config: dict, out_dir: pathlib.Path, mode: str) -> int:
    """Builds the variant; returns the number of images written."""
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

    from augbal_datasets.augbal import augbal_dataset_builder  # pylint: disable=import-outside-toplevel
    num_workers = 1 if mode == "in-process" else None
    if mode == "auto-jpeg":
        config = dict(config, encoding="jpeg")
    builder = augbal_dataset_builder.Builder(config=augbal_dataset_builder.AugbalConfig(**config),
                                             data_dir=str(out_dir), num_workers=num_workers)
    download_config = tfds.download.DownloadConfig(manual_dir=str(DATA))
    if mode == "beam":
        import apache_beam as beam  # pylint: disable=import-outside-toplevel
        download_config.beam_options = beam.options.pipeline_options.PipelineOptions(BEAM_OPTIONS)
    builder.download_and_prepare(download_config=download_config)
    return sum(split.num_examples for split in builder.info.splits.values())


def paper_plan(metadata: dict) -> dict:
    """The counts the paper-style pipeline reproduces, taken from the builder's plan."""
    return {"majority": metadata["majority_count"], "minority": metadata["minority_count"],
            "test": metadata["test_per_class"], "validation": metadata["validation_per_class"]}


def run_paper_style(plan: dict, augmentation: str, out_dir: pathlib.Path, seed: int = 0) -> int:
    """Copies originals, augments minority images one file at a time, cv2.imwrite JPEG."""
    import albumentations as A  # pylint: disable=import-outside-toplevel
    import numpy as np  # pylint: disable=import-outside-toplevel
    transform = getattr(A, augmentation)(p=1.0)
    rng = np.random.default_rng(seed)
    written = 0
    train_root = DATA / "seg_train" / "seg_train"
    test_root = DATA / "seg_test" / "seg_test"
    for name in ("buildings", "sea"):
        files = sorted((train_root / name).iterdir())
        files = [files[i] for i in rng.permutation(len(files))]
        kept = files[plan["validation"]:][:plan["majority"]]
        if name == "sea":
            kept = kept[:plan["minority"]]
        for split, chosen in (("train", kept), ("validation", files[:plan["validation"]]),
                              ("test", sorted((test_root / name).iterdir())[:plan["test"]])):
            target = out_dir / split / name
            target.mkdir(parents=True, exist_ok=True)
            for path in chosen:
                shutil.copyfile(path, target / path.name)
                written += 1
        if name == "sea":
            target = out_dir / "train" / name
            for index in range(plan["majority"] - plan["minority"]):
                path = kept[index % len(kept)]
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                augmented = transform(image=image)["image"]
                cv2.imwrite(str(target / f"{path.stem}_aug{index}.jpg"), augmented)
                written += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--augmentation", default="HorizontalFlip")
    parser.add_argument("--modes", default="paper-style,in-process,auto,auto-jpeg,beam",
                        help="comma list of paper-style, in-process, auto (threads), auto-jpeg, "
                             "beam")
    args = parser.parse_args()
    if not (DATA / "seg_train").is_dir():
        sys.exit(f"intel_scene_mini not found at {DATA}")
    modes = args.modes.split(",")
    config = builder_config(args.augmentation)

    # Warm-up (untimed): imports, TF start-up, the builder's plan for the paper-style counts.
    with tempfile.TemporaryDirectory() as tmp:
        from augbal_datasets.augbal import prepare  # pylint: disable=import-outside-toplevel
        builder = prepare.prepare_variant(config, tmp, DATA)
        plan = paper_plan(dict(builder.info.metadata))
        run_paper_style(plan, args.augmentation, pathlib.Path(tmp) / "paper")

    times = {mode: [] for mode in modes}
    peaks = {mode: 0.0 for mode in modes}
    growths = {mode: 0.0 for mode in modes}
    images = {}
    for round_index in range(args.rounds):
        # Rotate the order so background load on a shared machine hits every mode alike.
        order = modes[round_index % len(modes):] + modes[:round_index % len(modes)]
        for mode in order:
            with tempfile.TemporaryDirectory() as tmp:
                with PeakRss() as rss:
                    start = time.perf_counter()
                    if mode == "paper-style":
                        images[mode] = run_paper_style(plan, args.augmentation, pathlib.Path(tmp))
                    else:
                        images[mode] = run_builder(config, pathlib.Path(tmp), mode)
                    times[mode].append(time.perf_counter() - start)
                peaks[mode] = max(peaks[mode], rss.peak_mib)
                growths[mode] = max(growths[mode], rss.growth_mib)
            print(f"round {round_index + 1} {mode}: {times[mode][-1]:.2f} s", flush=True)

    reference = statistics.median(times["paper-style"]) if "paper-style" in times else None
    rows = []
    for mode in modes:
        seconds = statistics.median(times[mode])
        rate = images[mode] / seconds
        ratio = (rate / (images["paper-style"] / reference)) if reference else float("nan")
        rows.append({"mode": mode, "images": images[mode], "median_seconds": round(seconds, 3),
                     "images_per_second": round(rate, 1), "ratio_vs_paper_style": round(ratio, 2),
                     "peak_rss_mib": round(peaks[mode], 1),
                     "peak_rss_growth_mib": round(growths[mode], 1),
                     "seconds": [round(t, 3) for t in times[mode]]})
    header = (f"# Build throughput (intel_scene_mini buildings vs sea, ratio 8, {args.augmentation}, "
              f"oversample_augment)\n\n{platform.platform()}, {os.cpu_count()} CPUs, Python "
              f"{platform.python_version()}; {args.rounds} rounds after a warm-up; plan {plan}.\n\n"
              "| pipeline | images written | median s | images/s | ratio vs paper-style | peak RSS MiB | "
              "RSS growth MiB |\n|---|---|---|---|---|---|---|\n")
    table = header + "".join(
        f"| {r['mode']} | {r['images']} | {r['median_seconds']} | {r['images_per_second']} | "
        f"{r['ratio_vs_paper_style']} | {r['peak_rss_mib']} | {r['peak_rss_growth_mib']} |\n"
        for r in rows)
    notes = ("\npaper-style: file copies + Albumentations + cv2.imwrite JPEG (no splits file, "
             "no provenance, no metadata). in-process: augbal builder, num_workers=1. auto: "
             "augbal builder with its thread pool. auto-jpeg: the same, writing generated images "
             "as JPEG (quality 95) like the paper-style pipeline (default png is lossless). beam: "
             "augbal builder through Beam "
             "(FnApiRunner, 2 worker processes, multi_processing; includes worker start-up).\n"
             "Peak RSS: this process (TensorFlow already loaded by the warm-up) plus its children "
             "(Beam workers), highest over rounds; growth: peak minus the RSS when the run "
             "started. The machine is shared (2 CPUs, other jobs running): rounds vary.\n")
    print(table + notes)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "build_throughput.md").write_text(table + notes)
    (RESULTS / "build_throughput.json").write_text(json.dumps(
        {"augmentation": args.augmentation, "rounds": args.rounds, "plan": plan, "rows": rows},
        indent=2) + "\n")


if __name__ == "__main__":
    main()
