"""Image decoding and conversion: gray, RGBA and 16-bit become RGB uint8; broken files fail."""

import cv2
import numpy as np
import pytest

from augbal_datasets.augbal import images


def _png(array):
    ok, buffer = cv2.imencode(".png", array)
    assert ok
    return buffer.tobytes()


def test_grayscale_repeats_the_channel():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    decoded = images.decode(_png(gray), "gray.png")
    assert decoded.converted and decoded.rgb.shape == (3, 4, 3)
    for channel in range(3):
        np.testing.assert_array_equal(decoded.rgb[:, :, channel], gray)


def test_rgba_drops_alpha_and_swaps_to_rgb():
    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 10, 20, 30, 0
    decoded = images.decode(_png(bgra), "a.png")
    assert decoded.converted
    np.testing.assert_array_equal(decoded.rgb[0, 0], [30, 20, 10])


def test_16_bit_keeps_the_top_byte():
    bgr16 = np.full((2, 3, 3), 0xABCD, np.uint16)
    bgr16[..., 2] = 0x1234
    decoded = images.decode(_png(bgr16), "deep.png")
    assert decoded.converted and decoded.rgb.dtype == np.uint8
    np.testing.assert_array_equal(decoded.rgb[0, 0], [0x12, 0xAB, 0xAB])


def test_8_bit_colour_is_not_converted():
    bgr = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    decoded = images.decode(_png(bgr), "c.png")
    assert not decoded.converted
    np.testing.assert_array_equal(decoded.rgb, bgr[:, :, ::-1])


def test_encode_png_round_trips():
    rgb = np.random.default_rng(1).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(images.decode(images.encode(rgb, "png"), "x").rgb, rgb)


@pytest.mark.parametrize("data, match", [
    (b"", "empty file"),
    (b"GIF7 nope", "not an image"),
    (_png(np.zeros((4, 4, 3), np.uint8))[:-20], "truncated PNG"),
])
def test_broken_files_name_the_file(data, match):
    with pytest.raises(images.ImageError, match=f"bad.img: {match}"):
        images.decode(data, "bad.img")


def test_resize_to_store_size():
    rgb = np.zeros((20, 10, 3), np.uint8)
    assert images.resize(rgb, 8).shape == (8, 8, 3)
    assert images.resize(rgb, 32).shape == (32, 32, 3)
