"""augstatic vs Albumentations 2.0.8: images per second for every paper transform.

Single-threaded (OpenCV threads 0, OMP/BLAS threads 1) on real Intel Scene photos at 150x150
and resized to 512x512. Both libraries run the same transform with the same parameters in the
same process, interleaved image by image (alternating which goes first, input warm in cache
for both) so that load from other processes on a shared machine hits both alike. Each image
is timed in every round; its time is the mean over rounds without the 2 fastest and 2 slowest, a
rate is images over the sum of those times; ratio = augstatic rate / Albumentations rate. Also reports augstatic
`apply_batch` on batches of 64 (a 50 MB batch at 512x512 cannot stay in cache: cold input).

    python benchmarks/augstatic_vs_albumentations.py [--rounds 15] [--names Blur ...]

Writes benchmarks/results/augstatic_vs_albumentations.md (and .json).
"""

import os

# Threading must be pinned before numpy/OpenCV load their thread pools.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                  "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_variable] = "1"
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

import augstatic  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "intel_scene_mini"
RESULTS = REPO / "benchmarks" / "results"

# Transforms whose cost swings by orders of magnitude with the drawn parameters (OpenCV's
# median filter switches to a far slower algorithm at kernel size 7): their rates need many
# more draws than the default, and a plain mean (trimming would drop the costly draws).
IMAGES_PER_ROUND = {"MedianBlur": 400}

# Transforms where both libraries end in the same single OpenCV call (target ratio >= 0.95).
# (JpegCompression, Downscale and CLAHE: the same short sequence of OpenCV calls.)
SINGLE_CALL_TIES = {"Blur", "MedianBlur", "MotionBlur", "Sharpen", "Emboss", "HorizontalFlip",
                    "ToSepia", "JpegCompression", "Downscale", "CLAHE"}


def albumentations_mapping():
    """paper name -> (Albumentations 2.0.8 transform, how its parameters map)."""
    import albumentations as A

    nearest = {"downscale": cv2.INTER_NEAREST, "upscale": cv2.INTER_NEAREST}
    std = (math.sqrt(10) / 255, math.sqrt(50) / 255)
    linear, reflect = cv2.INTER_LINEAR, cv2.BORDER_REFLECT_101
    return {
        "Blur": (A.Blur(blur_limit=(3, 7), p=1), "Blur(blur_limit=(3, 7))"),
        "CLAHE": (A.CLAHE(clip_limit=(1, 4), tile_grid_size=(8, 8), p=1), "CLAHE(clip_limit=(1, 4))"),
        "ChannelDropout": (A.ChannelDropout(channel_drop_range=(1, 1), fill=0, p=1),
                           "ChannelDropout(channel_drop_range=(1, 1), fill=0)"),
        "ChannelShuffle": (A.ChannelShuffle(p=1), "ChannelShuffle()"),
        "ColorJitter": (A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.2, p=1),
                        "ColorJitter(0.2, 0.2, 0.2, 0.2)"),
        "Downscale": (A.Downscale(scale_range=(0.25, 0.25), interpolation_pair=nearest, p=1),
                      "Downscale(scale_range=(0.25, 0.25), nearest/nearest)"),
        "Emboss": (A.Emboss(alpha=(0.2, 0.5), strength=(0.2, 0.7), p=1),
                   "Emboss(alpha=(0.2, 0.5), strength=(0.2, 0.7))"),
        "FancyPCA": (A.FancyPCA(alpha=0.1, p=1), "FancyPCA(alpha=0.1)"),
        "GaussNoise": (A.GaussNoise(std_range=std, mean_range=(0, 0), per_channel=True, p=1),
                       "GaussNoise(std_range=(sqrt(10)/255, sqrt(50)/255)) for var_limit=(10, 50)"),
        "GaussianBlur": (A.GaussianBlur(blur_limit=(3, 7), sigma_limit=(0.8, 1.4), p=1),
                         "GaussianBlur(blur_limit=(3, 7), sigma_limit=(0.8, 1.4)); 2.0.8 cannot "
                         "derive sigma from the kernel (sigma 0 gives a black image)"),
        "GlassBlur": (A.GlassBlur(sigma=0.7, max_delta=4, iterations=2, mode="fast", p=1),
                      "GlassBlur(sigma=0.7, max_delta=4, iterations=2, mode='fast')"),
        "HueSaturationValue": (A.HueSaturationValue(20, 30, 20, p=1), "HueSaturationValue(20, 30, 20)"),
        "ISONoise": (A.ISONoise(color_shift=(0.01, 0.05), intensity=(0.1, 0.5), p=1),
                     "ISONoise(color_shift=(0.01, 0.05), intensity=(0.1, 0.5))"),
        "InvertImg": (A.InvertImg(p=1), "InvertImg()"),
        "MedianBlur": (A.MedianBlur(blur_limit=(3, 7), p=1), "MedianBlur(blur_limit=(3, 7))"),
        "MotionBlur": (A.MotionBlur(blur_limit=(3, 7), p=1), "MotionBlur(blur_limit=(3, 7))"),
        "MultiplicativeNoise": (A.MultiplicativeNoise(multiplier=(0.9, 1.1), per_channel=False,
                                                      elementwise=False, p=1),
                                "MultiplicativeNoise(multiplier=(0.9, 1.1))"),
        "Posterize": (A.Posterize(num_bits=4, p=1), "Posterize(num_bits=4)"),
        "RGBShift": (A.RGBShift(20, 20, 20, p=1), "RGBShift(20, 20, 20)"),
        "Sharpen": (A.Sharpen(alpha=(0.2, 0.5), lightness=(0.5, 1.0), p=1),
                    "Sharpen(alpha=(0.2, 0.5), lightness=(0.5, 1.0))"),
        "Solarize": (A.Solarize(threshold_range=(0.5, 0.5), p=1),
                     "Solarize(threshold_range=(0.5, 0.5)) for threshold=128"),
        "Superpixels": (A.Superpixels(p_replace=(0.1, 0.1), n_segments=(100, 100), max_size=128,
                                      interpolation=linear, p=1),
                        "Superpixels(p_replace=0.1, n_segments=100, max_size=128)"),
        "ToGray": (A.ToGray(num_output_channels=3, p=1), "ToGray(num_output_channels=3)"),
        "ToSepia": (A.ToSepia(p=1), "ToSepia()"),
        "VerticalFlip": (A.VerticalFlip(p=1), "VerticalFlip()"),
        "HorizontalFlip": (A.HorizontalFlip(p=1), "HorizontalFlip()"),
        "Transpose": (A.Transpose(p=1), "Transpose()"),
        "OpticalDistortion": (A.OpticalDistortion(distort_limit=0.05, interpolation=linear,
                                                  border_mode=reflect, p=1),
                              "OpticalDistortion(distort_limit=0.05, reflect_101); 2.0.8 has no "
                              "shift_limit (augstatic also shifts the centre by 0.05)"),
        "GridDistortion": (A.GridDistortion(num_steps=5, distort_limit=0.3, interpolation=linear,
                                            border_mode=reflect, p=1),
                           "GridDistortion(num_steps=5, distort_limit=0.3, reflect_101)"),
        "JpegCompression": (A.ImageCompression(quality_range=(99, 100), compression_type="jpeg", p=1),
                            "ImageCompression(quality_range=(99, 100))"),
        "Cutout": (A.CoarseDropout(num_holes_range=(8, 8), hole_height_range=(8, 8),
                                   hole_width_range=(8, 8), fill=0, p=1),
                   "CoarseDropout(num_holes_range=(8, 8), hole_*_range=(8, 8))"),
        "CoarseDropout": (A.CoarseDropout(num_holes_range=(1, 8), hole_height_range=(1, 8),
                                          hole_width_range=(1, 8), fill=0, p=1),
                          "CoarseDropout(num_holes_range=(1, 8), hole_*_range=(1, 8))"),
        "GridDropout": (A.GridDropout(ratio=0.5, fill=0, p=1), "GridDropout(ratio=0.5)"),
    }


def load_photos(count: int) -> np.ndarray:
    """`count` real 150x150 RGB photos, spread over the classes, as an Nx150x150x3 array."""
    paths = sorted((DATA / "seg_train" / "seg_train").glob("*/*.jpg"))
    if not paths:
        sys.exit(f"error: no photos under {DATA}/seg_train/seg_train; is intel_scene_mini there?")
    chosen = [paths[i] for i in np.linspace(0, len(paths) - 1, count).astype(int)]
    photos = []
    for path in chosen:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        if image.shape[:2] != (150, 150):
            image = cv2.resize(image, (150, 150), interpolation=cv2.INTER_AREA)
        photos.append(image)
    return np.stack(photos)


def _paired_pass(ours, theirs, images) -> tuple[list, list]:
    """Per-image seconds of each library over `images`, interleaved image by image.

    The libraries alternate on every image (which goes first alternates too), so load from
    other processes on a shared machine hits both alike. Before each timed call the input is
    read once (untimed), so both start with it warm in cache, as after decoding in a real
    pipeline: otherwise whichever library runs first on an image pays the RAM fetch, which
    on this machine costs more than a whole 3x3 blur.
    """
    clock = time.perf_counter
    ours_t, theirs_t = [], []
    for index, image in enumerate(images):
        for turn in ((0, 1) if index % 2 == 0 else (1, 0)):
            image.max()  # touch: bring the input into cache, untimed
            start = clock()
            if turn == 0:
                ours(image)
                ours_t.append(clock() - start)
            else:
                theirs(image)
                theirs_t.append(clock() - start)
    return ours_t, theirs_t


def measure(ours, theirs, images, rounds: int, min_seconds: float, min_images: int,
            trim: bool = True):
    """Images per second of each library: `rounds` interleaved passes over the same images.

    Each image's time is the mean of its `rounds` timings without the 2 fastest and 2 slowest
    (trimmed against bursts of load from other processes; the mean keeps the random
    parameters' cost mix); a library's rate is the number of images over the sum of those
    times. A pass holds at least `min_images` images and takes about `min_seconds` for both
    libraries together.
    """
    ours_t, theirs_t = _paired_pass(ours, theirs, images[:4])
    per_image = (sum(ours_t) + sum(theirs_t)) / 4
    count = max(min_images, math.ceil(min_seconds / max(per_image, 1e-9)))
    work = [images[i % len(images)] for i in range(count)]
    ours_runs, theirs_runs = [], []
    for _ in range(rounds):
        ours_t, theirs_t = _paired_pass(ours, theirs, work)
        ours_runs.append(ours_t)
        theirs_runs.append(theirs_t)
    return count / _total(ours_runs, trim), count / _total(theirs_runs, trim)


def _total(runs, trim: bool) -> float:
    """Sum over images of the per-image mean over rounds (without the 2 fastest and 2 slowest
    when `trim`)."""
    times = np.sort(np.asarray(runs), axis=0)
    if trim and times.shape[0] > 4:
        times = times[2:-2]
    return float(times.mean(axis=0).sum())


def measure_batch(transform, images, rng, rounds: int) -> float:
    """Median images/s of apply_batch over batches of 64."""
    batch = np.ascontiguousarray(images[:64])
    transform.apply_batch(batch, rng)
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        transform.apply_batch(batch, rng)
        rates.append(len(batch) / (time.perf_counter() - start))
    return statistics.median(rates)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds per transform")
    parser.add_argument("--min_seconds", type=float, default=0.2,
                        help="approximate seconds of both libraries together per round")
    parser.add_argument("--images", type=int, default=64, help="real photos used")
    parser.add_argument("--min_images", type=int, default=24, help="images per round at least")
    parser.add_argument("--names", nargs="*", default=None, help="subset of paper transforms")
    parser.add_argument("--sizes", nargs="*", type=int, default=[150, 512])
    parser.add_argument("--out", default=str(RESULTS / "augstatic_vs_albumentations.md"))
    args = parser.parse_args(argv)

    cv2.setNumThreads(0)
    warnings.filterwarnings("ignore")
    import albumentations  # noqa: F401  (imported here: a benchmark-only dependency)
    cv2.setNumThreads(0)  # in case the import changed it
    mapping = albumentations_mapping()
    names = args.names or list(augstatic.PAPER_TRANSFORMS)
    photos = load_photos(args.images)
    sets = {150: photos}
    for size in args.sizes:
        if size != 150:
            sets[size] = np.stack([cv2.resize(p, (size, size), interpolation=cv2.INTER_LINEAR)
                                   for p in photos])

    rng = np.random.default_rng(0)
    rows = []
    for name in names:
        reference, mapped = mapping[name]
        reference.set_random_seed(0)
        ours_transform = augstatic.create(name)
        row = {"name": name, "albumentations": mapped, "tie": name in SINGLE_CALL_TIES}
        for size in args.sizes:
            images = list(sets[size])
            ours, theirs = measure(lambda im: ours_transform(im, rng),
                                   lambda im: reference(image=im)["image"],
                                   images, args.rounds, args.min_seconds,
                                   IMAGES_PER_ROUND.get(name, args.min_images),
                                   trim=name not in IMAGES_PER_ROUND)
            row[size] = {"augstatic": ours, "albumentations": theirs, "ratio": ours / theirs,
                         "batch64": measure_batch(ours_transform, sets[size], rng, args.rounds)}
            print(f"{name:20s} {size:4d}  augstatic {row[size]['augstatic']:9.0f}/s  "
                  f"albumentations {row[size]['albumentations']:9.0f}/s  ratio {row[size]['ratio']:5.2f}  "
                  f"apply_batch {row[size]['batch64']:9.0f}/s", flush=True)
        rows.append(row)

    table = render(rows, args)
    print()
    print(table)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    out.with_suffix(".json").write_text(json.dumps({"rows": rows, "environment": environment()},
                                                   indent=1, default=str))
    print(f"wrote {out}")
    return 0


def environment() -> dict:
    import albumentations
    return {"python": platform.python_version(), "numpy": np.__version__, "opencv": cv2.__version__,
            "albumentations": albumentations.__version__, "cpu": platform.processor() or platform.machine(),
            "cv2_threads": cv2.getNumThreads(), "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}


def render(rows, args) -> str:
    """Markdown table: rates side by side, ratio, apply_batch, geometric means, mapping."""
    sizes = args.sizes
    header = "| transform | " + " | ".join(
        f"augstatic {s} img/s | albumentations {s} img/s | ratio {s} | apply_batch(64) {s} img/s"
        for s in sizes) + " |"
    lines = [header, "|" + "---|" * (1 + 4 * len(sizes))]
    for row in rows:
        cells = [row["name"] + (" (tie)" if row["tie"] else "")]
        for s in sizes:
            cell = row[s]
            cells += [f"{cell['augstatic']:.0f}", f"{cell['albumentations']:.0f}", f"{cell['ratio']:.2f}",
                      f"{cell['batch64']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    geo = {s: math.exp(statistics.fmean(math.log(r[s]["ratio"]) for r in rows)) for s in sizes}
    lines.append("| **geometric mean of ratios** | " + " | ".join(
        f" |  | **{geo[s]:.2f}** | " for s in sizes) + " |")
    env = environment()
    notes = [
        "",
        f"Single-threaded (cv2.setNumThreads(0), OMP/BLAS threads 1), {args.images} real Intel Scene "
        f"photos, {args.rounds} rounds of at least {args.min_images} images and about "
        f"{args.min_seconds} s, the libraries alternating image by image with the input warm in "
        "cache; each image's time is its mean over rounds without the 2 fastest and 2 slowest, a rate "
        "is images / sum of those times (MedianBlur: 400 images per round and an untrimmed mean, "
        "as its cost swings about 100x with the drawn kernel size), ratio = augstatic rate / "
        "Albumentations rate. "
        "augstatic is called as `t(image, rng)` with one reused Generator; Albumentations as "
        "`t(image=image)['image']`. `(tie)`: both end in the same OpenCV call(s), noise floor 0.95.",
        f"Environment: Python {env['python']}, numpy {env['numpy']}, OpenCV {env['opencv']}, "
        f"Albumentations {env['albumentations']}, {env['date_utc']} UTC.",
        "",
        "Albumentations 2.0.8 equivalents:",
        "",
    ]
    notes += [f"- {row['name']}: `{row['albumentations']}`" for row in rows]
    return "\n".join(lines + notes) + "\n"


if __name__ == "__main__":
    sys.exit(main())
