"""RandAugment, TrivialAugmentWide and AugMix: torchvision's tables, draw distributions,
pixel semantics against Pillow, contracts and parameter errors."""

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps
from scipy import stats

import augstatic
from augstatic import policies as P
from augstatic.core import to_float, to_uint8
from augstatic.functional import policy_ops as F

# The tables as read from torchvision's public source, pytorch/vision
# torchvision/transforms/v2/_auto_augment.py at commit 0152ce41c5aa5927e6c25cfbddc658da73498d84
# (_AUGMENTATION_SPACE of RandAugment, TrivialAugmentWide and AugMix, in source order):
# "linspace(a, b)" is torch.linspace(a, b, num_bins), "W"/"H" the image width/height,
# "posterize(t, s)" is (t - arange(num_bins) / ((num_bins - 1) / s)).round().int().
SOURCE_RANDAUGMENT = [
    ("Identity", None, False), ("ShearX", "linspace(0.0, 0.3)", True),
    ("ShearY", "linspace(0.0, 0.3)", True), ("TranslateX", "linspace(0.0, 150.0 / 331.0 * W)", True),
    ("TranslateY", "linspace(0.0, 150.0 / 331.0 * H)", True), ("Rotate", "linspace(0.0, 30.0)", True),
    ("Brightness", "linspace(0.0, 0.9)", True), ("Color", "linspace(0.0, 0.9)", True),
    ("Contrast", "linspace(0.0, 0.9)", True), ("Sharpness", "linspace(0.0, 0.9)", True),
    ("Posterize", "posterize(8, 4)", False), ("Solarize", "linspace(1.0, 0.0)", False),
    ("AutoContrast", None, False), ("Equalize", None, False),
]
SOURCE_TRIVIALAUGMENT_WIDE = [
    ("Identity", None, False), ("ShearX", "linspace(0.0, 0.99)", True),
    ("ShearY", "linspace(0.0, 0.99)", True), ("TranslateX", "linspace(0.0, 32.0)", True),
    ("TranslateY", "linspace(0.0, 32.0)", True), ("Rotate", "linspace(0.0, 135.0)", True),
    ("Brightness", "linspace(0.0, 0.99)", True), ("Color", "linspace(0.0, 0.99)", True),
    ("Contrast", "linspace(0.0, 0.99)", True), ("Sharpness", "linspace(0.0, 0.99)", True),
    ("Posterize", "posterize(8, 6)", False), ("Solarize", "linspace(1.0, 0.0)", False),
    ("AutoContrast", None, False), ("Equalize", None, False),
]
SOURCE_AUGMIX = [  # _PARTIAL_AUGMENTATION_SPACE, then the all_ops additions
    ("ShearX", "linspace(0.0, 0.3)", True), ("ShearY", "linspace(0.0, 0.3)", True),
    ("TranslateX", "linspace(0.0, W / 3.0)", True), ("TranslateY", "linspace(0.0, H / 3.0)", True),
    ("Rotate", "linspace(0.0, 30.0)", True), ("Posterize", "posterize(4, 4)", False),
    ("Solarize", "linspace(1.0, 0.0)", False), ("AutoContrast", None, False),
    ("Equalize", None, False), ("Brightness", "linspace(0.0, 0.9)", True),
    ("Color", "linspace(0.0, 0.9)", True), ("Contrast", "linspace(0.0, 0.9)", True),
    ("Sharpness", "linspace(0.0, 0.9)", True),
]


def _as_source(space):
    """Writes an augstatic table row in the notation of the SOURCE_* lists."""
    rows = []
    for op, (spec, signed) in space.items():
        text = None
        if spec is not None:
            kind, first, second = spec
            if kind == "posterize":
                text = f"posterize({first}, {second})"
            elif isinstance(second, tuple):
                side = "W" if second[0] == "width" else "H"
                factor = {150.0 / 331.0: "150.0 / 331.0 * ", 1.0 / 3.0: None}[second[1]]
                text = (f"linspace({first}, {factor}{side})" if factor
                        else f"linspace({first}, {side} / 3.0)")
            else:
                text = f"linspace({first}, {second})"
        rows.append((op, text, signed))
    return rows


@pytest.mark.parametrize("space,source", [
    (P.RANDAUGMENT_SPACE, SOURCE_RANDAUGMENT),
    (P.TRIVIALAUGMENT_WIDE_SPACE, SOURCE_TRIVIALAUGMENT_WIDE),
    (P.AUGMIX_SPACE, SOURCE_AUGMIX)], ids=["RandAugment", "TrivialAugmentWide", "AugMix"])
def test_tables_equal_torchvision_source(space, source):
    assert _as_source(space) == source


def test_augmix_partial_space_is_the_first_nine_rows():
    assert _as_source(P.AUGMIX_PARTIAL_SPACE) == SOURCE_AUGMIX[:9]


# Golden bins printed by torch 2.14.1 / torchvision 0.29.1 (CPU) from the lambdas above.
TORCH_SOLARIZE_31 = [
    1.0, 0.9666666388511658, 0.9333333373069763, 0.8999999761581421, 0.8666666746139526,
    0.8333333134651184, 0.800000011920929, 0.7666666507720947, 0.7333333492279053,
    0.699999988079071, 0.6666666269302368, 0.6333333253860474, 0.5999999642372131,
    0.5666666626930237, 0.5333333015441895, 0.5, 0.46666669845581055, 0.4333333671092987,
    0.40000003576278687, 0.36666667461395264, 0.3333333432674408, 0.30000001192092896,
    0.2666666805744171, 0.23333334922790527, 0.20000001788139343, 0.1666666716337204,
    0.13333334028720856, 0.10000000894069672, 0.06666667014360428, 0.03333333507180214, 0.0]
TORCH_POSTERIZE = {
    ("randaugment", 31): [8, 8, 8, 8, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6, 6, 5, 5, 5, 5, 5,
                          5, 5, 5, 4, 4, 4, 4],
    ("trivialaugmentwide", 31): [8, 8, 8, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 5, 5, 5, 5, 5, 4, 4, 4, 4,
                                 4, 3, 3, 3, 3, 3, 2, 2, 2],
    ("augmix", 10): [4, 4, 3, 3, 2, 2, 1, 1, 0, 0],
}
TORCH_AUGMIX_TRANSLATE_X_W150 = [0.0, 5.55555534362793, 11.11111068725586, 16.66666603088379,
                                 22.22222137451172, 27.77777862548828, 33.333335876464844,
                                 38.88888931274414, 44.44444274902344, 50.0]


def test_magnitude_bins_equal_torch_values():
    bins = P.magnitudes(P.RANDAUGMENT_SPACE["Solarize"][0], 31, 150, 150)
    assert bins.dtype == np.float32 and bins.tolist() == TORCH_SOLARIZE_31
    for (name, count), expected in TORCH_POSTERIZE.items():
        space = {"randaugment": P.RANDAUGMENT_SPACE, "augmix": P.AUGMIX_SPACE,
                 "trivialaugmentwide": P.TRIVIALAUGMENT_WIDE_SPACE}[name]
        assert P.magnitudes(space["Posterize"][0], count, 1, 1).tolist() == expected
    assert P.magnitudes(P.AUGMIX_SPACE["TranslateX"][0], 10, 224, 150).tolist() == \
        TORCH_AUGMIX_TRANSLATE_X_W150
    for spec, value in [(("linspace", 0.0, 0.3), 0.09000000357627869),
                        (("linspace", 0.0, 0.9), 0.26999998092651367),
                        (("linspace", 0.0, 30.0), 9.0)]:
        assert float(P.magnitudes(spec, 31, 1, 1)[9]) == value


def test_translate_bins_depend_on_the_image_size():
    # torch: RandAugment TranslateX bin 9 of 31 at width 150, TranslateY at height 224.
    x_spec, y_spec = P.RANDAUGMENT_SPACE["TranslateX"][0], P.RANDAUGMENT_SPACE["TranslateY"][0]
    assert float(P.magnitudes(x_spec, 31, 224, 150)[9]) == 20.392749786376953
    assert float(P.magnitudes(y_spec, 31, 224, 150)[9]) == 30.45317268371582
    plans = [augstatic.create("RandAugment", num_ops=1).sample(np.random.default_rng(s), (224, 150, 3))
             for s in range(400)]
    seen = {op: abs(m) for ((op, m),) in plans if op in ("TranslateX", "TranslateY")}
    assert seen == {"TranslateX": pytest.approx(20.392749786376953),
                    "TranslateY": pytest.approx(30.45317268371582)}


def _bin_index(bins, magnitude):
    matches = np.flatnonzero(bins == np.float32(abs(magnitude)))
    assert matches.size, magnitude
    return int(matches[0])


def test_trivialaugment_distribution():
    policy = augstatic.create("TrivialAugmentWide")
    rng = np.random.default_rng(0)
    plans = [policy.sample(rng, (40, 40, 3))[0] for _ in range(14000)]
    ops = list(P.TRIVIALAUGMENT_WIDE_SPACE)
    counts = np.array([sum(op == name for op, _ in plans) for name in ops])
    assert stats.chisquare(counts).pvalue > 1e-3
    rotate_bins = P.magnitudes(P.TRIVIALAUGMENT_WIDE_SPACE["Rotate"][0], 31, 40, 40)
    rotations = [m for op, m in plans if op == "Rotate"]
    indices = np.bincount([_bin_index(rotate_bins, m) for m in rotations], minlength=31)
    assert stats.chisquare(indices).pvalue > 1e-3
    negative = sum(m < 0 for m in rotations)
    assert stats.binomtest(negative, sum(m != 0 for m in rotations), 0.5).pvalue > 1e-3
    assert all(m >= 0 for op, m in plans if op in ("Posterize", "Solarize"))  # unsigned ops


def test_randaugment_distribution_and_fixed_magnitude():
    policy = augstatic.create("RandAugment", num_ops=2, magnitude=9)
    rng = np.random.default_rng(1)
    plans = [policy.sample(rng, (40, 40, 3)) for _ in range(7000)]
    assert all(len(plan) == 2 for plan in plans)
    ops = [op for plan in plans for op, _ in plan]
    counts = np.array([ops.count(name) for name in P.RANDAUGMENT_SPACE])
    assert stats.chisquare(counts).pvalue > 1e-3
    for plan in plans[:500]:
        for op, magnitude in plan:
            spec, signed = P.RANDAUGMENT_SPACE[op]
            expected = 0.0 if spec is None else float(P.magnitudes(spec, 31, 40, 40)[9])
            assert abs(magnitude) == expected and (signed or magnitude >= 0)
    shears = [m for plan in plans for op, m in plan if op == "ShearX"]
    assert stats.binomtest(sum(m < 0 for m in shears), len(shears), 0.5).pvalue > 1e-3


def test_augmix_distribution():
    policy = augstatic.create("AugMix", severity=3)
    rng = np.random.default_rng(2)
    plans = [policy.sample(rng, (40, 40, 3)) for _ in range(3000)]
    depths = np.bincount([len(chain) for _, _, chains in plans for chain in chains])
    assert depths[0] == 0 and len(depths) == 4 and stats.chisquare(depths[1:]).pvalue > 1e-3
    ops = [op for _, _, chains in plans for chain in chains for op, _ in chain]
    counts = np.array([ops.count(name) for name in P.AUGMIX_SPACE])
    assert stats.chisquare(counts).pvalue > 1e-3
    shear_bins = P.magnitudes(P.AUGMIX_SPACE["ShearX"][0], 10, 40, 40)
    indices = [_bin_index(shear_bins, m) for _, _, chains in plans for chain in chains
               for op, m in chain if op == "ShearX"]
    assert max(indices) == 2 and stats.chisquare(np.bincount(indices)).pvalue > 1e-3
    originals = np.array([original for original, _, _ in plans])
    totals = originals + np.array([weights.sum() for _, weights, _ in plans])
    np.testing.assert_allclose(totals, 1.0, atol=1e-5)
    # Beta(1, 1) is uniform: the original's weight is U(0, 1).
    assert stats.kstest(originals, "uniform").pvalue > 1e-3
    depth_two = augstatic.create("AugMix", chain_depth=2, mixture_width=4, all_ops=False)
    _, weights, chains = depth_two.sample(rng, (40, 40, 3))
    assert len(chains) == 4 and len(weights) == 4 and all(len(c) == 2 for c in chains)
    assert all(op in P.AUGMIX_PARTIAL_SPACE for c in chains for op, _ in c)


# Pillow equivalents of torchvision's op dispatch at a magnitude m (AutoAugment's PIL code).
def _pillow_op(image, op, m):
    pil = Image.fromarray(image)
    nearest = {"resample": Image.NEAREST, "fillcolor": 0}
    if op == "Identity":
        return pil
    if op in ("ShearX", "ShearY", "TranslateX", "TranslateY"):
        coefficients = {"ShearX": (1, m, 0, 0, 1, 0), "ShearY": (1, 0, 0, m, 1, 0),
                        "TranslateX": (1, 0, -int(m), 0, 1, 0),
                        "TranslateY": (1, 0, 0, 0, 1, -int(m))}[op]
        return pil.transform(pil.size, Image.AFFINE, coefficients, **nearest)
    if op == "Rotate":
        return pil.rotate(m, **nearest)
    if op in ("Brightness", "Color", "Contrast", "Sharpness"):
        return getattr(ImageEnhance, op)(pil).enhance(1.0 + m)
    if op == "Posterize":
        return ImageOps.posterize(pil, int(m))
    if op == "Solarize":
        return ImageOps.solarize(pil, int(np.ceil(np.float32(255.0 * m))))
    return getattr(ImageOps, {"AutoContrast": "autocontrast", "Equalize": "equalize"}[op])(pil)


@pytest.mark.parametrize("name", ["RandAugment", "TrivialAugmentWide"])
def test_one_op_policies_match_pillow(intel_scene_mini, name):
    import cv2
    path = sorted((intel_scene_mini / "seg_train" / "seg_train" / "glacier").glob("*.jpg"))[1]
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    params = {"num_ops": 1} if name == "RandAugment" else {}
    policy = augstatic.create(name, **params)
    seen = set()
    for seed in range(120):
        ((op, m),) = policy.sample(np.random.default_rng(seed), image.shape)
        seen.add(op)
        ours = policy(image, rng=seed)
        diff = np.abs(ours.astype(np.int16) - np.asarray(_pillow_op(image, op, m), np.int16))
        # Tolerances of test_augstatic_policy_ops_pillow: <= 1 level for the blends and
        # autocontrast, <= 0.5% of pixels for the nearest warps.
        assert diff.max() <= 1 or (diff > 0).mean() <= 0.005, (op, m)
    assert seen == set(P.RANDAUGMENT_SPACE)


def test_policy_ops_equal_the_registered_transforms():
    image = np.random.default_rng(3).integers(0, 256, (30, 34, 3), dtype=np.uint8)
    for op, m in [("ShearX", -0.2), ("ShearY", 0.3), ("TranslateX", -7.9), ("TranslateY", 5.2),
                  ("Brightness", 0.27), ("Color", -0.5), ("Contrast", 0.6), ("Sharpness", -0.9)]:
        transform = augstatic.create(op)
        np.testing.assert_array_equal(P.apply_op(image, op, m, 0), transform.apply(image, m), op)
    np.testing.assert_array_equal(P.apply_op(image, "AutoContrast", 0.0, 0),
                                  augstatic.create("AutoContrast")(image))
    np.testing.assert_array_equal(P.apply_op(image, "Identity", 0.0, 0), image)


def test_fast_float32_paths_equal_the_exact_emulation_of_torch_arithmetic():
    # color/contrast take the floored gray from OpenCV's float32 transform and redo only grays
    # near an integer with the float64 emulation of torch's fused multiply-adds (checked against
    # torchvision 0.29.1 by benchmarks/augstatic_policies.py --peer=torchvision); here: fast ==
    # emulation on every one of the 2^24 colours, and color's table on 1M of them.
    codes = np.arange(1 << 24, dtype=np.uint32)
    pixels = np.stack([codes >> 16, (codes >> 8) & 255, codes & 255], axis=1).astype(np.uint8)
    image = pixels.reshape(4096, 4096, 3)
    exact_gray = np.floor(F._gray_exact(pixels)).reshape(image.shape[:2])
    np.testing.assert_array_equal(F._gray_floor_plus_one(image), exact_gray + 1)
    chosen = np.random.default_rng(10).integers(0, 1 << 24, 1 << 20)
    pixels, exact_gray = pixels[chosen], exact_gray.reshape(-1)[chosen]
    image = pixels.reshape(-1, 256, 3)
    for factor in (0.01, 0.1, 0.5, 0.73, 1.27, 1.99):
        blended = F._blend_exact(pixels, factor, np.repeat(exact_gray.reshape(-1, 1), 3, axis=1))
        expected = np.clip(blended, 0, 255).astype(np.uint8).reshape(image.shape)
        np.testing.assert_array_equal(F.color(image, factor), expected)


def test_augmix_is_the_truncated_weighted_mix_of_its_chains():
    image = np.random.default_rng(4).integers(0, 256, (24, 28, 3), dtype=np.uint8)
    policy = augstatic.create("AugMix")
    original, weights, chains = policy.sample(np.random.default_rng(5), image.shape)
    mix = np.float32(original) * image.astype(np.float32)
    for weight, chain in zip(weights, chains):
        aug = image
        for op, m in chain:
            aug = P.apply_op(aug, op, m, 1)
        mix = mix + np.float32(weight) * aug.astype(np.float32)
    expected = np.floor(mix).astype(np.uint8)
    np.testing.assert_array_equal(policy(image, rng=np.random.default_rng(5)), expected)


@pytest.mark.parametrize("name", ["RandAugment", "TrivialAugmentWide", "AugMix"])
def test_float_and_grayscale_contract(name):
    policy = augstatic.create(name)
    rng = np.random.default_rng(6)
    image = rng.integers(0, 256, (33, 41, 3), dtype=np.uint8)
    as_float = image.astype(np.float32) / 255.0
    out = policy(as_float, rng=7)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, to_float(policy(to_uint8(as_float), rng=7)))
    gray = image[:, :, 0].copy()
    np.testing.assert_array_equal(policy(gray, rng=8), policy(gray[:, :, None], rng=8)[:, :, 0])


def test_names_and_params_for_provenance():
    assert augstatic.create("randaugment", num_ops=1).params == {
        "num_ops": 1, "magnitude": 9, "num_magnitude_bins": 31, "interpolation": "nearest",
        "p": 1.0}
    assert augstatic.create("trivial_augment_wide").params == {
        "num_magnitude_bins": 31, "interpolation": "nearest", "p": 1.0}
    assert augstatic.create("AugMix").params == {
        "severity": 3, "mixture_width": 3, "chain_depth": -1, "alpha": 1.0, "all_ops": True,
        "interpolation": "linear", "p": 1.0}
    assert augstatic.lookup("augmix") is P.AugMix


@pytest.mark.parametrize("name,params,argument", [
    ("RandAugment", {"num_ops": -1}, "num_ops"),
    ("RandAugment", {"num_ops": 1.5}, "num_ops"),
    ("RandAugment", {"magnitude": 31}, "magnitude"),
    ("RandAugment", {"magnitude": 5, "num_magnitude_bins": 5}, "magnitude"),
    ("RandAugment", {"num_magnitude_bins": 1}, "num_magnitude_bins"),
    ("RandAugment", {"interpolation": "cubic"}, "interpolation"),
    ("RandAugment", {"p": 2.0}, "p"),
    ("TrivialAugmentWide", {"num_magnitude_bins": "31"}, "num_magnitude_bins"),
    ("AugMix", {"severity": 0}, "severity"),
    ("AugMix", {"severity": 11}, "severity"),
    ("AugMix", {"mixture_width": 0}, "mixture_width"),
    ("AugMix", {"chain_depth": 0}, "chain_depth"),
    ("AugMix", {"chain_depth": -2}, "chain_depth"),
    ("AugMix", {"alpha": 0.0}, "alpha"),
    ("AugMix", {"alpha": float("nan")}, "alpha"),
    ("AugMix", {"all_ops": "yes"}, "all_ops"),
    ("RandAugment", {"magnitdue": 3}, "magnitdue"),
    ("ShearX", {"magnitude_range": (0.5, 0.1)}, "magnitude_range"),
    ("Brightness", {"magnitude_range": (-1.5, 0.5)}, "magnitude_range"),
    ("TranslateX", {"fill": 300}, "fill"),
    ("ShearY", {"interpolation": "area"}, "interpolation"),
])
def test_bad_parameters_name_the_parameter(name, params, argument):
    with pytest.raises(ValueError, match=argument):
        augstatic.create(name, **params)


def test_zero_ops_is_a_copy():
    image = np.random.default_rng(9).integers(0, 256, (8, 9, 3), dtype=np.uint8)
    out = augstatic.create("RandAugment", num_ops=0)(image, rng=0)
    np.testing.assert_array_equal(out, image)
    assert not np.shares_memory(out, image)
