"""augstatic vs Albumentations 2.0.8 or AlbumentationsX 2.5.1: images per second for every paper transform.

Single-threaded (OpenCV threads 0, OMP/BLAS threads 1) on real Intel Scene photos at 150x150
and resized to 512x512. Both libraries run the same transform with the same parameters in the
same process, interleaved image by image (alternating which goes first, input warm in cache
for both) so that load from other processes on a shared machine hits both alike. Each image
is timed in every round; its time is the mean over rounds without the 2 fastest and 2 slowest, a
rate is images over the sum of those times; ratio = augstatic rate / Albumentations rate. Also reports augstatic
`apply_batch` on batches of 64 (a 50 MB batch at 512x512 cannot stay in cache: cold input).

    python benchmarks/augstatic_vs_albumentations.py [--rounds 15] [--names Blur ...]
    /work/venv-albx/bin/python benchmarks/augstatic_vs_albumentations.py --peer=albumentationsx
    python benchmarks/augstatic_vs_albumentations.py --combine

AlbumentationsX (AGPL-3.0) is a benchmark reference in its own virtual environment only (with
PYTHONPATH pointing at this checkout for augstatic), never a dependency. Every peer output is
materialised (`np.ascontiguousarray`) inside the timed call: AlbumentationsX returns flips as
views. MedianBlur is timed at each kernel size of its range separately (both libraries draw the
size uniformly from 3, 5, 7 and the cost swings about 250x between them at 512 px, so random draws
made the ratio a count of 7s); its rate is over the mean time of the three sizes.

Writes benchmarks/results/augstatic_vs_<peer>.md (and .json); `--combine` writes the table with a
column per peer (augstatic_vs_albumentations_peers.md) from both .json files.
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

# Transforms whose cost swings by orders of magnitude with a drawn parameter (OpenCV's median
# filter switches to a far slower algorithm at kernel size 7): timed at each value of the
# parameter (augstatic name, peer name, values) and rated over the mean time of the values,
# which both libraries draw uniformly.
FIXED_DRAWS = {"MedianBlur": ("blur_limit", (3, 5, 7))}

# Transforms where both libraries end in the same single OpenCV call (target ratio >= 0.95).
# (JpegCompression, Downscale and CLAHE: the same short sequence of OpenCV calls.)
SINGLE_CALL_TIES = {"Blur", "MedianBlur", "MotionBlur", "Sharpen", "Emboss", "HorizontalFlip",
                    "ToSepia", "JpegCompression", "Downscale", "CLAHE"}


def _specs():
    """paper name -> (Albumentations class, 2.0.8 parameters, description)."""
    nearest = {"downscale": cv2.INTER_NEAREST, "upscale": cv2.INTER_NEAREST}
    std = (math.sqrt(10) / 255, math.sqrt(50) / 255)
    linear, reflect = cv2.INTER_LINEAR, cv2.BORDER_REFLECT_101
    holes8 = {"num_holes_range": (8, 8), "hole_height_range": (8, 8), "hole_width_range": (8, 8), "fill": 0}
    holes1_8 = {"num_holes_range": (1, 8), "hole_height_range": (1, 8), "hole_width_range": (1, 8), "fill": 0}
    return {
        "Blur": ("Blur", {"blur_limit": (3, 7)}, ""),
        "CLAHE": ("CLAHE", {"clip_limit": (1, 4), "tile_grid_size": (8, 8)}, ""),
        "ChannelDropout": ("ChannelDropout", {"channel_drop_range": (1, 1), "fill": 0}, ""),
        "ChannelShuffle": ("ChannelShuffle", {}, ""),
        "ColorJitter": ("ColorJitter", {"brightness": 0.2, "contrast": 0.2, "saturation": 0.2, "hue": 0.2}, ""),
        "Downscale": ("Downscale", {"scale_range": (0.25, 0.25), "interpolation_pair": nearest}, "nearest/nearest"),
        "Emboss": ("Emboss", {"alpha": (0.2, 0.5), "strength": (0.2, 0.7)}, ""),
        "FancyPCA": ("FancyPCA", {"alpha": 0.1}, ""),
        "GaussNoise": ("GaussNoise", {"std_range": std, "mean_range": (0, 0), "per_channel": True},
                       "std_range=(sqrt(10)/255, sqrt(50)/255) for var_limit=(10, 50)"),
        "GaussianBlur": ("GaussianBlur", {"blur_limit": (3, 7), "sigma_limit": (0.8, 1.4)},
                         "2.0.8 cannot derive sigma from the kernel (sigma 0 gives a black image)"),
        "GlassBlur": ("GlassBlur", {"sigma": 0.7, "max_delta": 4, "iterations": 2, "mode": "fast"}, ""),
        "HueSaturationValue": ("HueSaturationValue", {"hue_shift_limit": 20, "sat_shift_limit": 30,
                                                      "val_shift_limit": 20}, ""),
        "ISONoise": ("ISONoise", {"color_shift": (0.01, 0.05), "intensity": (0.1, 0.5)}, ""),
        "InvertImg": ("InvertImg", {}, ""),
        "MedianBlur": ("MedianBlur", {"blur_limit": (3, 7)}, ""),
        "MotionBlur": ("MotionBlur", {"blur_limit": (3, 7)}, ""),
        "MultiplicativeNoise": ("MultiplicativeNoise", {"multiplier": (0.9, 1.1), "per_channel": False,
                                                        "elementwise": False}, ""),
        "Posterize": ("Posterize", {"num_bits": 4}, ""),
        "RGBShift": ("RGBShift", {"r_shift_limit": 20, "g_shift_limit": 20, "b_shift_limit": 20}, ""),
        "Sharpen": ("Sharpen", {"alpha": (0.2, 0.5), "lightness": (0.5, 1.0)}, ""),
        "Solarize": ("Solarize", {"threshold_range": (0.5, 0.5)}, "for threshold=128"),
        "Superpixels": ("Superpixels", {"p_replace": (0.1, 0.1), "n_segments": (100, 100), "max_size": 128,
                                        "interpolation": linear}, ""),
        "ToGray": ("ToGray", {"num_output_channels": 3}, ""),
        "ToSepia": ("ToSepia", {}, ""),
        "VerticalFlip": ("VerticalFlip", {}, ""),
        "HorizontalFlip": ("HorizontalFlip", {}, ""),
        "Transpose": ("Transpose", {}, ""),
        "OpticalDistortion": ("OpticalDistortion", {"distort_limit": 0.05, "interpolation": linear,
                                                    "border_mode": reflect},
                              "no shift_limit (augstatic also shifts the centre by 0.05)"),
        "GridDistortion": ("GridDistortion", {"num_steps": 5, "distort_limit": 0.3, "interpolation": linear,
                                              "border_mode": reflect}, ""),
        "JpegCompression": ("ImageCompression", {"quality_range": (99, 100), "compression_type": "jpeg"}, ""),
        "Cutout": ("CoarseDropout", holes8, ""),
        "CoarseDropout": ("CoarseDropout", holes1_8, ""),
        "GridDropout": ("GridDropout", {"ratio": 0.5, "fill": 0}, ""),
    }


# AlbumentationsX 2.5.1 renamed these parameters (the values mean the same) ...
_X_RENAMES = {"blur_limit": "blur_range", "clip_limit": "clip_range", "strength": "strength_range",
              "sigma_limit": "sigma_range", "color_shift": "color_shift_range", "intensity": "intensity_range",
              "lightness": "lightness_range", "distort_limit": "distort_range", "p_replace": "p_replace_range",
              "n_segments": "n_segments_range", "hue_shift_limit": "hue_shift_range",
              "sat_shift_limit": "sat_shift_range", "val_shift_limit": "val_shift_range",
              "r_shift_limit": "r_shift_range", "g_shift_limit": "g_shift_range", "b_shift_limit": "b_shift_range",
              "brightness": "brightness_range", "contrast": "contrast_range", "saturation": "saturation_range",
              "hue": "hue_range"}
_X_RENAMED_ALPHA = {"Emboss", "Sharpen"}  # FancyPCA keeps `alpha`


def _x_value(key: str, value):
    """... and takes ranges where 2.0.8 took a symmetric limit x (or a factor jitter x)."""
    if not isinstance(value, (int, float)):
        return value
    if key in ("brightness", "contrast", "saturation"):
        return (1 - value, 1 + value)
    return (-value, value)


def peer_mapping(peer: str, fixed: dict | None = None):
    """paper name -> (peer transform, how its parameters map); `fixed` overrides 2.0.8 parameters."""
    import albumentations as A

    out = {}
    for name, (cls, params, note) in _specs().items():
        params = {**params, **((fixed or {}).get(name, {}))}
        if peer == "albumentationsx":
            renamed = {}
            for key, value in params.items():
                if key == "alpha" and name in _X_RENAMED_ALPHA:
                    renamed["alpha_range"] = value
                elif key in _X_RENAMES:
                    renamed[_X_RENAMES[key]] = _x_value(key, value)
                else:
                    renamed[key] = value
            if name == "Posterize":
                renamed["num_bits"] = (params["num_bits"], params["num_bits"])
            params = renamed
        text = f"{cls}({', '.join(f'{k}={v!r}' for k, v in params.items())})" + (f"; {note}" if note else "")
        out[name] = (getattr(A, cls)(**params, p=1), text)
    return out


def load_photos(count: int, split: str = "seg_train") -> np.ndarray:
    """`count` real 150x150 RGB photos, spread over the classes, as an Nx150x150x3 array."""
    paths = sorted((DATA / split / split).glob("*/*.jpg"))
    if not paths:
        sys.exit(f"error: no photos under {DATA}/{split}/{split}; is intel_scene_mini there?")
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


PEERS = {"albumentations": "Albumentations", "albumentationsx": "AlbumentationsX"}


def _measure_row(name, peer, reference, sets, rng, args):
    """The row of one transform: rates, ratio and apply_batch per size."""
    ours_transform = augstatic.create(name)
    row = {"name": name, "tie": name in SINGLE_CALL_TIES}
    for size in args.sizes:
        images = list(sets[size])
        if name in FIXED_DRAWS:
            key, values = FIXED_DRAWS[name]
            ours_s = theirs_s = 0.0
            for value in values:  # the same parameter for both, each value timed alike
                fixed = {name: {key: (value, value)}}
                ours_fixed = augstatic.create(name, **{key: (value, value)})
                theirs_fixed = peer_mapping(peer, fixed)[name][0]
                theirs_fixed.set_random_seed(0)
                ours, theirs = measure(lambda im, t=ours_fixed: t(im, rng),
                                       lambda im, t=theirs_fixed: np.ascontiguousarray(t(image=im)["image"]),
                                       images, args.rounds, args.min_seconds, args.min_images)
                ours_s += 1.0 / ours / len(values)
                theirs_s += 1.0 / theirs / len(values)
            ours, theirs = 1.0 / ours_s, 1.0 / theirs_s
        else:
            ours, theirs = measure(lambda im: ours_transform(im, rng),
                                   lambda im: np.ascontiguousarray(reference(image=im)["image"]),
                                   images, args.rounds, args.min_seconds, args.min_images)
        row[size] = {"augstatic": ours, "peer": theirs, "ratio": ours / theirs,
                     "batch64": measure_batch(ours_transform, sets[size], rng, args.rounds)}
        print(f"{name:20s} {size:4d}  augstatic {ours:9.0f}/s  {peer} {theirs:9.0f}/s  "
              f"ratio {ours / theirs:5.2f}  apply_batch {row[size]['batch64']:9.0f}/s", flush=True)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer", choices=sorted(PEERS), default="albumentations",
                        help="albumentations (2.0.8, the dev extra) or albumentationsx (2.5.1, own venv)")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds per transform")
    parser.add_argument("--min_seconds", type=float, default=0.2,
                        help="approximate seconds of both libraries together per round")
    parser.add_argument("--images", type=int, default=64, help="real photos used")
    parser.add_argument("--min_images", type=int, default=24, help="images per round at least")
    parser.add_argument("--names", nargs="*", default=None, help="subset of paper transforms")
    parser.add_argument("--sizes", nargs="*", type=int, default=[150, 512])
    parser.add_argument("--photos", choices=("seg_train", "seg_test"), default="seg_train",
                        help="which intel_scene_mini photos (seg_test: other photos than the table's)")
    parser.add_argument("--out", default=None, help="default: benchmarks/results/augstatic_vs_<peer>.md")
    parser.add_argument("--merge", action="store_true",
                        help="replace only the measured rows of an existing result (with --names)")
    parser.add_argument("--combine", action="store_true",
                        help="only write the table with a column per peer from both .json results")
    args = parser.parse_args(argv)
    if args.combine:
        return combine()

    cv2.setNumThreads(0)
    warnings.filterwarnings("ignore")
    import albumentations  # noqa: F401  (imported here: a benchmark-only dependency)
    cv2.setNumThreads(0)  # in case the import changed it
    expected = "AlbumentationsX" if args.peer == "albumentationsx" else "Albumentations 2"
    if (args.peer == "albumentationsx") != _is_x():
        sys.exit(f"error: --peer={args.peer} but this environment has {_peer_version()}; run "
                 f"{'/work/venv-albx/bin/python' if args.peer == 'albumentationsx' else 'the dev venv'} "
                 f"(expected {expected})")
    mapping = peer_mapping(args.peer)
    names = args.names or list(augstatic.PAPER_TRANSFORMS)
    photos = load_photos(args.images, args.photos)
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
        rows.append({**_measure_row(name, args.peer, reference, sets, rng, args), "mapping": mapped})

    out = pathlib.Path(args.out or RESULTS / f"augstatic_vs_{args.peer}.md")
    if args.merge and out.with_suffix(".json").is_file():
        # Rows measured again (after a fix) replace theirs; the others keep their measurement.
        stamp = f"{time.strftime('%H:%M', time.gmtime())} UTC, load {os.getloadavg()[0]:.1f}"
        fresh = {row["name"]: {**row, "remeasured": stamp} for row in rows}
        stored = json.loads(out.with_suffix(".json").read_text())["rows"]
        stored = [{(int(k) if k.isdigit() else k): v for k, v in row.items()} for row in stored]
        rows = [fresh.pop(row["name"], row) for row in stored] + list(fresh.values())
    table = render(rows, args)
    print()
    print(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    out.with_suffix(".json").write_text(json.dumps({"peer": args.peer, "rows": rows, "environment": environment(),
                                                    "sizes": args.sizes}, indent=1, default=str))
    print(f"wrote {out}")
    return 0


def _is_x() -> bool:
    from importlib import metadata

    try:
        metadata.version("albumentationsx")
        return True
    except metadata.PackageNotFoundError:
        return False


def _peer_version() -> str:
    import albumentations

    return f"{'AlbumentationsX' if _is_x() else 'Albumentations'} {albumentations.__version__}"


def environment() -> dict:
    return {"python": platform.python_version(), "numpy": np.__version__, "opencv": cv2.__version__,
            "peer": _peer_version(), "cpu": platform.processor() or platform.machine(),
            "cv2_threads": cv2.getNumThreads(), "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            "load_average": " ".join(f"{v:.2f}" for v in os.getloadavg())}


def render(rows, args) -> str:
    """Markdown table: rates side by side, ratio, apply_batch, geometric means, mapping."""
    sizes = args.sizes
    peer = PEERS[args.peer]
    header = "| transform | " + " | ".join(
        f"augstatic {s} img/s | {peer} {s} img/s | ratio {s} | apply_batch(64) {s} img/s"
        for s in sizes) + " |"
    lines = [header, "|" + "---|" * (1 + 4 * len(sizes))]
    for row in rows:
        cells = [row["name"] + (" (tie)" if row["tie"] else "") + (" *" if row.get("remeasured") else "")]
        for s in sizes:
            cell = row[s]
            cells += [f"{cell['augstatic']:.0f}", f"{cell['peer']:.0f}", f"{cell['ratio']:.2f}",
                      f"{cell['batch64']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    geo = {s: math.exp(statistics.fmean(math.log(r[s]["ratio"]) for r in rows)) for s in sizes}
    lines.append("| **geometric mean of ratios** | " + " | ".join(
        f" |  | **{geo[s]:.2f}** | " for s in sizes) + " |")
    env = environment()
    notes = [
        "",
        f"Single-threaded (cv2.setNumThreads(0), OMP/BLAS threads 1), {args.images} real Intel Scene "
        f"photos ({args.photos}), {args.rounds} rounds of at least {args.min_images} images and about "
        f"{args.min_seconds} s, the libraries alternating image by image with the input warm in "
        "cache; each image's time is its mean over rounds without the 2 fastest and 2 slowest, a rate "
        "is images / sum of those times, ratio = augstatic rate / peer rate. MedianBlur: each kernel "
        "size 3, 5, 7 timed alike, rate over the mean of their times (both draw them uniformly). "
        f"augstatic is called as `t(image, rng)` with one reused Generator; {peer} as "
        "`np.ascontiguousarray(t(image=image)['image'])`. `(tie)`: both end in the same OpenCV "
        "call(s), noise floor 0.95.",
        f"Environment: Python {env['python']}, numpy {env['numpy']}, OpenCV {env['opencv']}, "
        f"{env['peer']}, {env['date_utc']} UTC, load average at the end {env['load_average']} (2 cores, shared).",
        "",
    ]
    again = [f"{row['name']} ({row['remeasured']})" for row in rows if row.get("remeasured")]
    if again:
        notes += [f"`*`: measured again after a fix, in a separate run (--merge): {', '.join(again)}.", ""]
    notes += [
        f"{env['peer']} equivalents:",
        "",
    ]
    notes += [f"- {row['name']}: `{row['mapping']}`" for row in rows]
    return "\n".join(lines + notes) + "\n"


def combine() -> int:
    """The table with a column per peer, from augstatic_vs_<peer>.json of both peers."""
    results = {}
    for peer in PEERS:
        path = RESULTS / f"augstatic_vs_{peer}.json"
        if not path.is_file():
            sys.exit(f"error: {path} is missing; run the benchmark with --peer={peer} first")
        results[peer] = json.loads(path.read_text())
    sizes = [s for s in results["albumentations"]["sizes"] if s in results["albumentationsx"]["sizes"]]
    by_name = {peer: {row["name"]: row for row in data["rows"]} for peer, data in results.items()}
    names = [n for n in by_name["albumentations"] if n in by_name["albumentationsx"]]
    header = "| transform | " + " | ".join(
        f"vs Albumentations 2.0.8 {s} | vs AlbumentationsX 2.5.1 {s} | vs the faster {s}" for s in sizes) + " |"
    lines = [header, "|" + "---|" * (1 + 3 * len(sizes))]
    short = []
    for name in names:
        cells = [name + (" (tie)" if name in SINGLE_CALL_TIES else "")]
        for s in sizes:
            ratios = [by_name[peer][name][str(s)]["ratio"] for peer in PEERS]
            worst = min(ratios)
            cells += [f"{r:.2f}" for r in ratios] + [f"**{worst:.2f}**" if worst < (
                0.95 if name in SINGLE_CALL_TIES else 1.0) else f"{worst:.2f}"]
            if worst < (0.95 if name in SINGLE_CALL_TIES else 1.0):
                short.append(f"{name} {s}")
        lines.append("| " + " | ".join(cells) + " |")
    envs = {peer: data["environment"] for peer, data in results.items()}
    lines += ["", "Ratio = augstatic images/s / the peer's, each peer measured interleaved with augstatic in its "
              "own run (benchmarks/results/augstatic_vs_<peer>.md); bold: below the target (1.0, ties 0.95). "
              + "; ".join(f"{e['peer']}: {e['date_utc']} UTC, load {e['load_average']}" for e in envs.values()) + ".",
              "Below target: " + (", ".join(short) or "none") + "."]
    out = RESULTS / "augstatic_vs_albumentations_peers.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
