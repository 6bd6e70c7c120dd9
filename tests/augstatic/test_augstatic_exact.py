"""Exact (golden) tests for deterministic transforms and deterministic parts of random ones."""

import cv2
import numpy as np
import pytest

import augstatic
from augstatic.functional import blur as fblur
from augstatic.functional import dropout as fdropout

RNG = np.random.default_rng(1234)
IMAGE = RNG.integers(0, 256, size=(23, 31, 3), dtype=np.uint8)
RAMP = np.arange(256, dtype=np.uint8).reshape(16, 16)


def test_flips_and_transpose_match_numpy():
    np.testing.assert_array_equal(augstatic.create("HorizontalFlip")(IMAGE), IMAGE[:, ::-1])
    np.testing.assert_array_equal(augstatic.create("VerticalFlip")(IMAGE), IMAGE[::-1])
    np.testing.assert_array_equal(augstatic.create("Transpose")(IMAGE), IMAGE.transpose(1, 0, 2))
    gray = IMAGE[:, :, :1]
    np.testing.assert_array_equal(augstatic.create("Transpose")(gray), gray.transpose(1, 0, 2))


def test_invert_uint8_and_float():
    np.testing.assert_array_equal(augstatic.create("InvertImg")(IMAGE), 255 - IMAGE)
    as_float = IMAGE.astype(np.float32) / 255
    np.testing.assert_allclose(augstatic.create("InvertImg")(as_float), 1 - as_float, atol=1e-7)


def test_solarize_inverts_values_at_or_above_threshold():
    out = augstatic.create("Solarize")(RAMP)
    expected = np.where(RAMP >= 128, 255 - RAMP, RAMP)
    np.testing.assert_array_equal(out, expected)
    assert out.ravel()[127] == 127 and out.ravel()[128] == 127 and out.ravel()[255] == 0
    out = augstatic.create("Solarize", threshold=200)(RAMP)
    assert out.ravel()[199] == 199 and out.ravel()[200] == 55


def test_posterize_keeps_top_bits():
    np.testing.assert_array_equal(augstatic.create("Posterize")(RAMP), RAMP & 0xF0)
    np.testing.assert_array_equal(augstatic.create("Posterize", num_bits=1)(RAMP), RAMP & 0x80)
    np.testing.assert_array_equal(augstatic.create("Posterize", num_bits=8)(RAMP), RAMP)


def test_to_gray_equal_channels_and_luma_golden():
    out = augstatic.create("ToGray")(IMAGE)
    assert (out[:, :, 0] == out[:, :, 1]).all() and (out[:, :, 1] == out[:, :, 2]).all()
    pixels = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]], dtype=np.uint8)
    np.testing.assert_array_equal(augstatic.create("ToGray")(pixels)[0, :, 0], [76, 150, 29, 255])


def test_to_gray_is_opencvs_luma_on_every_colour():
    # All 2^24 colours as one 4096x4096 image, and a float32 image: OpenCV's RGB2GRAY in 3 channels.
    colours = np.arange(2**24, dtype=np.uint32)
    rgb = np.stack([colours >> 16, (colours >> 8) & 255, colours & 255], -1).astype(np.uint8).reshape(4096, 4096, 3)
    gray = augstatic.create("ToGray")(rgb)
    np.testing.assert_array_equal(gray[..., 0], cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    image = RNG.random((9, 7, 3), dtype=np.float32)
    expected = image @ np.array([0.299, 0.587, 0.114], np.float32)
    np.testing.assert_allclose(augstatic.create("ToGray")(image), np.repeat(expected[..., None], 3, -1), atol=1e-6)


def test_to_sepia_golden():
    pixel = np.array([[[100, 150, 200]]], dtype=np.uint8)
    expected = np.clip(np.rint(np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168],
                                         [0.272, 0.534, 0.131]]) @ [100, 150, 200]), 0, 255)
    np.testing.assert_array_equal(augstatic.create("ToSepia")(pixel)[0, 0], expected)


def test_channel_shuffle_is_a_permutation_of_channels():
    for seed in range(6):
        out = augstatic.create("ChannelShuffle")(IMAGE, rng=seed)
        matches = [[np.array_equal(out[:, :, i], IMAGE[:, :, j]) for j in range(3)] for i in range(3)]
        assert sorted(row.index(True) for row in matches) == [0, 1, 2]


def test_channel_dropout_zeroes_exactly_one_channel():
    image = np.full((8, 8, 3), 200, dtype=np.uint8)
    for seed in range(6):
        out = augstatic.create("ChannelDropout")(image, rng=seed)
        zero = [int((out[:, :, c] == 0).all()) for c in range(3)]
        kept = [int((out[:, :, c] == 200).all()) for c in range(3)]
        assert sum(zero) == 1 and sum(kept) == 2


def test_cutout_holes_are_8x8_blocks():
    transform = augstatic.create("Cutout")
    holes = transform.sample(np.random.default_rng(0), (64, 64, 3))
    assert holes.shape == (8, 4)
    np.testing.assert_array_equal(holes[:, 2] - holes[:, 0], 8)
    np.testing.assert_array_equal(holes[:, 3] - holes[:, 1], 8)
    white = np.full((64, 64, 3), 255, dtype=np.uint8)
    out = transform(white, rng=np.random.default_rng(0))
    expected = fdropout.fill_holes(white, holes, 0)
    np.testing.assert_array_equal(out, expected)
    assert 64 <= (out[:, :, 0] == 0).sum() <= 8 * 64


def test_coarse_dropout_hole_counts_and_sizes_within_limits():
    transform = augstatic.create("CoarseDropout")
    rng = np.random.default_rng(3)
    counts = set()
    for _ in range(200):
        holes = transform.sample(rng, (150, 150, 3))
        counts.add(len(holes))
        sizes = np.concatenate([holes[:, 2] - holes[:, 0], holes[:, 3] - holes[:, 1]])
        assert sizes.min() >= 1 and sizes.max() <= 8
        assert holes[:, :2].min() >= 0 and holes[:, 2:].max() <= 150
    assert counts == set(range(1, 9))


def test_grid_dropout_drops_ratio_of_each_cell_side():
    white = np.full((150, 150, 3), 255, dtype=np.uint8)
    out = augstatic.create("GridDropout")(white, rng=0)
    # 10 x 10 cells of 15 px, one hole of int(15 * 0.5) = 7 px per side in each.
    assert (out[:, :, 0] == 0).sum() == 100 * 7 * 7
    for row in range(0, 150, 15):
        for col in range(0, 150, 15):
            assert (out[row:row + 15, col:col + 15, 0] == 0).sum() == 49


def test_jpeg_compression_at_quality_99_to_100_is_nearly_lossless():
    ys, xs = np.mgrid[0:64, 0:64]
    smooth = np.stack([xs * 4, ys * 4, (xs + ys) * 2], axis=-1).astype(np.uint8)
    out = augstatic.create("JpegCompression")(smooth, rng=0)
    assert np.abs(out.astype(int) - smooth).mean() < 1.5
    low = augstatic.create("JpegCompression", quality_range=(5, 5))(smooth, rng=0)
    assert np.abs(low.astype(int) - smooth).mean() > np.abs(out.astype(int) - smooth).mean()


def test_downscale_quarter_nearest_gives_4x4_blocks():
    out = augstatic.create("Downscale")(IMAGE[:, :, :].repeat(2, 0)[:16, :16], rng=0)
    blocks = out.reshape(4, 4, 4, 4, 3)
    assert (blocks == blocks[:, :1, :, :1]).all()


def test_equalize_stretches_a_narrow_histogram():
    narrow = (100 + np.arange(64 * 64) % 11).astype(np.uint8).reshape(64, 64)
    out = augstatic.create("Equalize")(narrow)
    assert out.min() < 30 and out.max() == 255


def test_rotate_90_on_square_matches_rot90():
    square = IMAGE[:23, :23]
    out = augstatic.create("Rotate", limit=(90, 90))(square, rng=0)
    np.testing.assert_array_equal(out, np.rot90(square))


@pytest.mark.parametrize("name, params", [
    ("ElasticTransform", {"alpha": 0.0}),
    ("RandomResizedCrop", {"scale": (1.0, 1.0), "ratio": (31 / 23, 31 / 23)}),
    ("MultiplicativeNoise", {"multiplier": (1.0, 1.0)}),
    ("RGBShift", {"r_shift_limit": 0, "g_shift_limit": 0, "b_shift_limit": 0}),
    ("Superpixels", {"p_replace": 0.0}),
    ("FancyPCA", {"alpha": 0.0}),
])
def test_zero_strength_is_identity(name, params):
    out = augstatic.create(name, **params)(IMAGE, rng=0)
    assert np.abs(out.astype(int) - IMAGE).max() <= 1


def test_optical_distortion_fixed_point_maps_match_float_maps():
    from augstatic.functional import geometric as fgeometric
    ys, xs = np.mgrid[0:40, 0:50]
    smooth = np.stack([xs * 5, ys * 6, xs + ys], axis=-1).astype(np.uint8)
    height, width = smooth.shape[:2]
    camera = np.array([[width, 0, width / 2 + 1.5], [0, height, height / 2 - 2.0], [0, 0, 1]],
                      dtype=np.float32)
    map_x, map_y = cv2.initUndistortRectifyMap(camera, np.array([0.05, 0.05, 0, 0, 0], np.float32),
                                               None, None, (width, height), cv2.CV_32FC1)
    reference = cv2.remap(smooth, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    maps = fgeometric.optical_distortion_maps(height, width, 0.05, 1.5, -2.0)
    out = fgeometric.remap(smooth, *maps, cv2.INTER_LINEAR, cv2.BORDER_REFLECT_101)
    assert np.abs(out.astype(int) - reference).max() <= 2


def test_grid_distortion_axis_is_monotonic_and_inside_the_image():
    from augstatic.functional import geometric as fgeometric
    rng = np.random.default_rng(0)
    for size in (31, 150, 512):
        steps = fgeometric.normalize_grid_steps(size, 5, 1 + rng.uniform(-0.3, 0.3, 6))
        coords = fgeometric.grid_distortion_axis(size, 5, steps)
        assert coords[0] == 0 and coords.max() <= size and (np.diff(coords) >= -1e-4).all()


def test_motion_kernel_normalised_line():
    for direction in (-1.0, 0.0, 0.5, 1.0):
        kernel = fblur.motion_kernel(7, 30.0, direction, (0.0, 0.0))
        assert kernel.shape == (7, 7)
        assert abs(kernel.sum() - 1.0) < 1e-6 and (kernel >= 0).all()
    horizontal = fblur.motion_kernel(5, 0.0, 0.0, (0.0, 0.0))
    np.testing.assert_allclose(horizontal[2], 0.2)
    assert horizontal.sum() == pytest.approx(1.0)


def test_sharpen_and_emboss_kernels_golden():
    np.testing.assert_allclose(fblur.sharpen_kernel(0.5, 1.0),
                               [[-.5, -.5, -.5], [-.5, 5.0, -.5], [-.5, -.5, -.5]])
    np.testing.assert_allclose(fblur.emboss_kernel(1.0, 0.5),
                               [[-1.5, -.5, 0], [-.5, 1, .5], [0, .5, 1.5]])
    # The kernel sums to 1 - alpha + alpha * lightness: lightness 1 keeps flat areas.
    flat = np.full((9, 9, 3), 90, dtype=np.uint8)
    np.testing.assert_array_equal(augstatic.create("Sharpen", lightness=(1, 1))(flat, rng=0), flat)
    darker = augstatic.create("Sharpen", alpha=(0.5, 0.5), lightness=(0.5, 0.5))(flat, rng=0)
    assert (darker == 68).all()  # 90 * (1 - 0.5 + 0.5 * 0.5) = 67.5, rounded half to even


def test_blur_kernel_3_matches_box_filter():
    out = augstatic.create("Blur", blur_limit=3)(IMAGE, rng=0)
    np.testing.assert_array_equal(out, cv2.blur(IMAGE, (3, 3)))
    out = augstatic.create("MedianBlur", blur_limit=5)(IMAGE, rng=0)
    np.testing.assert_array_equal(out, cv2.medianBlur(IMAGE, 5))


def test_vectorised_batch_paths_equal_per_image_calls():
    batch = RNG.integers(0, 256, size=(5, 12, 12, 3), dtype=np.uint8)
    for name in ("HorizontalFlip", "VerticalFlip", "Transpose", "InvertImg", "Solarize",
                 "Posterize", "ToGray", "ToSepia"):
        transform = augstatic.create(name, p=0.6)
        out = transform.apply_batch(batch, rng=np.random.default_rng(2))
        rng = np.random.default_rng(2)
        np.testing.assert_array_equal(out, np.stack([transform(im, rng) for im in batch]), err_msg=name)


def test_shape_changing_transform_with_p_below_one_rejects_non_square_batches():
    batch = RNG.integers(0, 256, size=(6, 12, 14, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="Transpose"):
        augstatic.create("Transpose", p=0.5).apply_batch(batch, rng=0)
    assert augstatic.create("Transpose").apply_batch(batch, rng=0).shape == (6, 14, 12, 3)


@pytest.mark.parametrize("shape", [(200, 200, 3), (203, 331, 3), (360, 350), (400, 320, 1)])
def test_gaussian_blur_of_derived_sigma_is_opencvs_bytes_on_large_images(shape):
    # Large images take the separable float32 path with a tie-breaking delta (fblur.gaussian_blur);
    # it must give cv2.GaussianBlur's bytes. Content with many exact halves: random values, a
    # ramp of odd steps and a saturated patch.
    rng = np.random.default_rng(sum(shape))
    image = rng.integers(0, 256, size=shape, dtype=np.uint8)
    image[:40] = (np.arange(shape[1]) * 3 % 256).astype(np.uint8).reshape((1, -1) + (1,) * (len(shape) - 2))
    image[-30:, -30:] = 255
    for ksize in (3, 5, 7):
        expected = cv2.GaussianBlur(image, (ksize, ksize), 0).reshape(shape)
        np.testing.assert_array_equal(fblur.gaussian_blur(image, ksize, 0.0), expected, err_msg=str(ksize))
    transform = augstatic.create("GaussianBlur")
    out = transform(image, np.random.default_rng(0))
    ksize = transform.sample(np.random.default_rng(0), shape)[0]
    np.testing.assert_array_equal(out, cv2.GaussianBlur(image, (ksize, ksize), 0).reshape(shape))


@pytest.mark.parametrize("factor", [0.1, 0.73, 1.0, 1.27, 1.9, 5.5, 10.5, 11.0])
def test_color_is_torchs_blend_with_the_floored_gray_for_every_factor(factor):
    # The per-factor table must equal torch's fused float32 blend, computed element by element
    # (large factors included: values there exceed 2000, where float32 rounding is coarse).
    from augstatic.functional import policy_ops as fpolicy  # pylint: disable=import-outside-toplevel

    image = np.random.default_rng(7).integers(0, 256, size=(37, 29, 3), dtype=np.uint8)
    gray = np.repeat(fpolicy._gray_floor_plus_one(image).reshape(-1) - 1.0, 3)  # pylint: disable=protected-access
    blended = fpolicy._blend_exact(image.reshape(-1), factor, gray)  # pylint: disable=protected-access
    expected = np.clip(blended, 0, 255).astype(np.uint8).reshape(image.shape)
    np.testing.assert_array_equal(fpolicy.color(image, factor), expected)


def test_multiply_through_a_byte_table_is_convert_scale_abs_for_many_factors():
    # Large uint8 images map through a 256-entry table (StringZilla) instead of one
    # cv2.convertScaleAbs pass: the bytes must be OpenCV's, every level, every factor drawn.
    from augstatic.functional import pixel as fpixel  # pylint: disable=import-outside-toplevel

    image = np.tile(np.arange(256, dtype=np.uint8), 3 * 128).reshape(128, 256, 3)
    image[:64] = np.random.default_rng(11).integers(0, 256, size=(64, 256, 3), dtype=np.uint8)
    for factor in np.random.default_rng(12).uniform(0.0, 3.0, size=200).tolist() + [0.0, 1.0, 0.5]:
        expected = cv2.convertScaleAbs(image, alpha=factor)
        np.testing.assert_array_equal(fpixel.multiply(image, factor), expected, err_msg=str(factor))
    out = augstatic.create("MultiplicativeNoise")(image, rng=0)
    factor = augstatic.create("MultiplicativeNoise").sample(np.random.default_rng(0), image.shape)
    np.testing.assert_array_equal(out, cv2.convertScaleAbs(image, alpha=float(factor[0])))
