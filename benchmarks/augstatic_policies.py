"""augstatic policy ops and policies vs a peer: Keras 3 preprocessing layers or torchvision v2.

Single-threaded (OpenCV threads 0, OMP/BLAS threads 1, TF intra/inter-op threads 1, torch
threads 1) on real Intel Scene photos at 150 px and resized to 224 px. Each row runs augstatic
and the peer in the same process, interleaved image by image with the input warm in cache
(the harness of benchmarks/augstatic_vs_albumentations.py); ratio = augstatic rate / peer rate.

Rows: the 14 ops of RandAugment at a fixed magnitude (RandAugment's bin 9 of 31, positive
sign), through the dispatcher the policies use (augstatic.policies.apply_op vs torchvision's
_AutoAugmentBase._apply_image_or_video_transform), then RandAugment, TrivialAugmentWide and
AugMix with their defaults.

  --peer=keras (default; the main venv): keras.layers.RandAugment and AugMix for the policies,
    the nearest Keras layer for each op (RandomShear, RandomTranslation, RandomRotation,
    RandomBrightness, RandomColorDegeneration, RandomContrast, RandomSharpness,
    RandomPosterization, Solarization, AutoContrast, Equalization), each compiled with
    tf.function and fed the uint8 HxWx3 image. Keras's ops are not torchvision's (different
    magnitude ranges and formulas): a speed reference only.
  --peer=torchvision (a separate venv with torch 2.14.1 / torchvision 0.29.1, never the main
    one): torchvision v2 on contiguous uint8 CHW tensors (converted untimed), plus an exactness
    check per row: max |difference| and the fraction of pixels differing between augstatic and
    torchvision for the same ops and magnitudes (policies: augstatic's drawn plans replayed
    through torchvision's dispatcher).

    python benchmarks/augstatic_policies.py [--peer keras|torchvision] [--rounds 9]

Writes benchmarks/results/augstatic_policies.<peer>.md (and .json).
"""

import os

# Threading must be pinned before numpy/OpenCV/TF/torch load their thread pools.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                  "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_variable] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the torchvision venv does not install augbal

import cv2  # noqa: E402
import numpy as np  # noqa: E402

import augstatic  # noqa: E402
from augstatic import policies as P  # noqa: E402
from augstatic_vs_albumentations import load_photos, measure  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
OPS = list(P.RANDAUGMENT_SPACE)
POLICIES = ["RandAugment", "TrivialAugmentWide", "AugMix"]
FIXED_BIN = 9  # RandAugment's default magnitude


def fixed_magnitude(op: str, size: int) -> float:
    """RandAugment's bin 9 of 31 for `op` on a size x size image (0 without a magnitude)."""
    bins = P.magnitudes(P.RANDAUGMENT_SPACE[op][0], 31, size, size)
    return 0.0 if bins is None else float(bins[FIXED_BIN])


def keras_peers(size: int) -> dict:
    """row -> a compiled callable on one uint8 HxWx3 image (Keras 3 layers on TensorFlow)."""
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    L, vr = keras.layers, (0, 255)
    m = {op: fixed_magnitude(op, size) for op in OPS}
    layers = {
        "ShearX": L.RandomShear(x_factor=m["ShearX"], y_factor=0.0, seed=0),
        "ShearY": L.RandomShear(x_factor=0.0, y_factor=m["ShearY"], seed=0),
        "TranslateX": L.RandomTranslation(0.0, m["TranslateX"] / size, fill_mode="constant", seed=0),
        "TranslateY": L.RandomTranslation(m["TranslateY"] / size, 0.0, fill_mode="constant", seed=0),
        "Rotate": L.RandomRotation(m["Rotate"] / 360.0, fill_mode="constant", seed=0),
        "Brightness": L.RandomBrightness(m["Brightness"], value_range=vr, seed=0),
        "Color": L.RandomColorDegeneration(m["Color"], value_range=vr, seed=0),
        "Contrast": L.RandomContrast(m["Contrast"], value_range=vr, seed=0),
        "Sharpness": L.RandomSharpness(m["Sharpness"], value_range=vr, seed=0),
        "Posterize": L.RandomPosterization(factor=(int(m["Posterize"]), int(m["Posterize"])),
                                           value_range=vr, seed=0),
        "Solarize": L.Solarization(threshold_factor=(m["Solarize"], m["Solarize"]),
                                   value_range=vr, seed=0),
        "AutoContrast": L.AutoContrast(value_range=vr),
        "Equalize": L.Equalization(value_range=vr),
        "RandAugment": L.RandAugment(value_range=vr, num_ops=2, seed=0),
        "TrivialAugmentWide": None,
        "AugMix": L.AugMix(value_range=vr, seed=0),
    }
    signature = [tf.TensorSpec((size, size, 3), tf.uint8)]
    peers, notes = {}, {}
    for row, layer in layers.items():
        if layer is None:
            notes[row] = "no Keras layer"
            continue
        function = tf.function(lambda x, layer=layer: layer(x, training=True),
                               input_signature=signature)
        peers[row] = lambda image, function=function: function(image).numpy()
        notes[row] = f"keras.layers.{type(layer).__name__}"
    return peers, notes


def torchvision_peers(size: int) -> tuple[dict, dict]:
    """row -> callable on a contiguous uint8 CHW tensor (torchvision v2, one thread)."""
    import torch
    from torchvision.transforms import v2

    torch.set_num_threads(1)
    if torch.get_num_interop_threads() != 1:
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # only settable once per process (before parallel work)
            pass
    dispatcher = v2.RandAugment()
    nearest = v2.InterpolationMode.NEAREST
    peers, notes = {}, {}
    for op in OPS:
        magnitude = fixed_magnitude(op, size)
        peers[op] = (lambda x, op=op, magnitude=magnitude: dispatcher._apply_image_or_video_transform(
            x, op, magnitude, interpolation=nearest, fill=dispatcher._fill))
        notes[op] = f"v2 dispatcher: {op} at {magnitude:g}"
    for name in POLICIES:
        policy = getattr(v2, name)()
        peers[name] = policy
        notes[name] = f"torchvision.transforms.v2.{name}()"
    return peers, notes


def ours_rows(size: int) -> dict:
    """row -> augstatic callable on one uint8 HxWx3 image (one reused Generator)."""
    rng = np.random.default_rng(0)
    rows = {}
    for op in OPS:
        magnitude = fixed_magnitude(op, size)
        rows[op] = lambda image, op=op, m=magnitude: P.apply_op(image, op, m, cv2.INTER_NEAREST)
    for name in POLICIES:
        rows[name] = lambda image, t=augstatic.create(name): t(image, rng)
    return rows


def exactness(name: str, size: int, images) -> tuple[int, float]:
    """Max |augstatic - torchvision| and the largest fraction of pixels differing (per image)."""
    import torch
    from torchvision.transforms import v2

    def tensor(image):
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))

    worst, fraction = 0, 0.0
    for index, image in enumerate(images[:16]):
        if name in OPS:
            dispatcher = v2.RandAugment()
            magnitude = fixed_magnitude(name, size)
            ours = P.apply_op(image, name, magnitude, cv2.INTER_NEAREST)
            ref = dispatcher._apply_image_or_video_transform(
                tensor(image), name, magnitude, interpolation=v2.InterpolationMode.NEAREST,
                fill=dispatcher._fill).numpy().transpose(1, 2, 0)
        else:
            policy = augstatic.create(name)
            plan = policy.sample(np.random.default_rng(index), image.shape)
            ours = policy.apply(image, plan)
            ref = _replay(name, plan, tensor(image))
        diff = np.abs(ours.astype(np.int16) - ref.astype(np.int16))
        worst, fraction = max(worst, int(diff.max())), max(fraction, float((diff > 0).mean()))
    return worst, fraction


def _replay(name, plan, x):
    """torchvision's pixels for an augstatic plan (same ops, magnitudes and AugMix weights)."""
    import torch
    from torchvision.transforms import v2

    dispatcher = v2.RandAugment()
    mode = v2.InterpolationMode.BILINEAR if name == "AugMix" else v2.InterpolationMode.NEAREST

    def run(image, ops):
        for op, magnitude in ops:
            image = dispatcher._apply_image_or_video_transform(image, op, magnitude,
                                                               interpolation=mode,
                                                               fill=dispatcher._fill)
        return image

    if name != "AugMix":
        return run(x, plan).numpy().transpose(1, 2, 0)
    original, weights, chains = plan
    mix = torch.tensor(original) * x
    for weight, chain in zip(weights, chains):
        mix.add_(torch.tensor(weight) * run(x, chain))
    return mix.to(torch.uint8).numpy().transpose(1, 2, 0)


class _Pair(tuple):
    """(numpy image, peer input): `max()` touches the numpy image as the harness expects."""

    def max(self):
        return self[0].max()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer", choices=["keras", "torchvision"], default="keras")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds per row")
    parser.add_argument("--min_seconds", type=float, default=0.2,
                        help="approximate seconds of both libraries together per round")
    parser.add_argument("--images", type=int, default=64, help="real photos used")
    parser.add_argument("--min_images", type=int, default=24, help="images per round at least")
    parser.add_argument("--sizes", nargs="*", type=int, default=[150, 224])
    parser.add_argument("--rows", nargs="*", default=None, help="subset of rows (ops, policies)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    cv2.setNumThreads(0)
    photos = load_photos(args.images)
    sets = {size: photos if size == 150 else np.stack(
        [cv2.resize(p, (size, size), interpolation=cv2.INTER_LINEAR) for p in photos])
        for size in args.sizes}
    names = args.rows or OPS + POLICIES
    results = {name: {"name": name} for name in names}
    for size in args.sizes:
        peers, notes = (keras_peers(size) if args.peer == "keras" else torchvision_peers(size))
        cv2.setNumThreads(0)  # in case an import changed it
        ours = ours_rows(size)
        images = list(sets[size])
        peer_inputs = images
        if args.peer == "torchvision":
            import torch
            peer_inputs = [torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1)))
                           for im in images]
        for name in names:
            row = results[name]
            row["peer"] = notes.get(name, "")
            if name not in peers:
                row[size] = {"augstatic": measure(ours[name], ours[name], images, 3,
                                                  args.min_seconds, args.min_images)[0]}
                print(f"{name:20s} {size:4d}  augstatic {row[size]['augstatic']:9.0f}/s  (no peer)",
                      flush=True)
                continue
            # measure() feeds both callables the same item: pair numpy and tensor by index.
            pairs = [_Pair(pair) for pair in zip(images, peer_inputs)]
            mine, theirs = measure(lambda pair, f=ours[name]: f(pair[0]),
                                   lambda pair, f=peers[name]: f(pair[1]),
                                   pairs, args.rounds, args.min_seconds, args.min_images)
            row[size] = {"augstatic": mine, "peer": theirs, "ratio": mine / theirs}
            if args.peer == "torchvision":
                row[size]["max_diff"], row[size]["fraction_differing"] = exactness(name, size, images)
            print(f"{name:20s} {size:4d}  augstatic {mine:9.0f}/s  {args.peer} {theirs:9.0f}/s  "
                  f"ratio {mine / theirs:6.2f}", flush=True)

    rows = [results[name] for name in names]
    table = render(rows, args)
    print()
    print(table)
    out = pathlib.Path(args.out or RESULTS / f"augstatic_policies.{args.peer}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    out.with_suffix(".json").write_text(json.dumps({"rows": rows, "environment": environment(args)},
                                                   indent=1, default=str))
    print(f"wrote {out}")
    return 0


def environment(args) -> dict:
    env = {"python": platform.python_version(), "numpy": np.__version__, "opencv": cv2.__version__,
           "cpu": platform.processor() or platform.machine(),
           "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}
    if args.peer == "keras":
        import keras
        import tensorflow as tf
        env.update(keras=keras.__version__, tensorflow=tf.__version__)
    else:
        import torch
        import torchvision
        env.update(torch=torch.__version__, torchvision=torchvision.__version__,
                   torch_cpu_capability=torch.backends.cpu.get_cpu_capability())
    return env


def render(rows, args) -> str:
    """Markdown table: rates side by side, ratios (and exactness for torchvision)."""
    peer, sizes = args.peer, args.sizes
    exact = peer == "torchvision"
    columns = []
    for s in sizes:
        columns += [f"augstatic {s} img/s", f"{peer} {s} img/s", f"ratio {s}"]
        if exact:
            columns += [f"max diff {s}", f"pixels differing {s}"]
    lines = ["| row | " + " | ".join(columns) + " |", "|" + "---|" * (1 + len(columns))]
    for row in rows:
        cells = [row["name"]]
        for s in sizes:
            cell = row[s]
            if "peer" not in cell:
                cells += [f"{cell['augstatic']:.0f}", "n/a", "n/a"] + (["n/a", "n/a"] if exact else [])
                continue
            cells += [f"{cell['augstatic']:.0f}", f"{cell['peer']:.0f}", f"{cell['ratio']:.2f}"]
            if exact:
                cells += [str(cell["max_diff"]), f"{100 * cell['fraction_differing']:.2f}%"]
        lines.append("| " + " | ".join(cells) + " |")
    ratios = {s: [r[s]["ratio"] for r in rows if "ratio" in r[s]] for s in sizes}
    geo = {s: math.exp(statistics.fmean(math.log(v) for v in ratios[s])) for s in sizes if ratios[s]}
    lines.append("| **geometric mean of ratios** | " + " | ".join(
        f" |  | **{geo.get(s, float('nan')):.2f}**" + (" |  | " if exact else "") for s in sizes) + " |")
    env = environment(args)
    versions = ", ".join(f"{k} {v}" for k, v in env.items() if k not in ("cpu", "date_utc"))
    notes = [
        "",
        f"Single-threaded, {args.images} real Intel Scene photos (150 px, and resized to 224 px), "
        f"{args.rounds} interleaved rounds of at least {args.min_images} images and about "
        f"{args.min_seconds} s, input warm in cache; each image's time is its mean over rounds "
        "without the 2 fastest and 2 slowest; ratio = augstatic rate / peer rate. "
        f"Ops at RandAugment's bin {FIXED_BIN} of 31 (positive sign), nearest interpolation; "
        "policies with their defaults. augstatic is called on uint8 HxWx3 numpy arrays with one "
        "reused Generator.",
        f"Environment: {versions}, {env['date_utc']} UTC.",
        "",
        "Peers:",
        "",
    ]
    notes += [f"- {row['name']}: {row.get('peer') or 'none'}" for row in rows]
    if peer == "keras":
        notes += ["", "Keras layers are compiled with tf.function (fixed input signature) and get "
                  "the uint8 image; their ops differ from torchvision's (ranges and formulas), "
                  "so these rows compare speed only."]
    else:
        notes += ["", "torchvision gets contiguous uint8 CHW tensors (converted untimed). Exactness: "
                  "16 images per row; ops at the fixed magnitude, policies replaying augstatic's "
                  "plans through torchvision's dispatcher (AugMix with its weights)."]
    return "\n".join(lines + notes) + "\n"


if __name__ == "__main__":
    sys.exit(main())
