"""Image bytes in, checked HxWx3 uint8 RGB out (and back to bytes).

Conversions (documented in README.md): grayscale -> RGB by repeating the channel,
RGBA/gray+alpha -> RGB by dropping alpha (no blending: the colour under a
transparent pixel is kept), 16-bit -> 8-bit by `value >> 8` (exact top byte).
A file that fails to decode, is truncated (also when OpenCV would "half-decode"
it and fill the rest grey), or is not an image raises `ImageError` naming it.
"""

import dataclasses

import cv2
import numpy as np

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_SOS = b"\xff\xda"
_JPEG_EOI = b"\xff\xd9"
_PNG_IEND = b"IEND\xaeB`\x82"
_OTHER_MAGIC = {b"BM": "bmp", b"GIF8": "gif", b"II*\x00": "tiff", b"MM\x00*": "tiff"}


class ImageError(ValueError):
    """A source file that is not a readable, complete image."""


@dataclasses.dataclass(frozen=True)
class DecodedImage:
    """A decoded source image.

    Attributes:
      rgb: HxWx3 uint8 RGB pixels.
      format: 'jpeg', 'png', 'webp', 'bmp', 'gif', 'tiff' or 'array'.
      converted: True when the pixels are not the file's own 8-bit RGB (gray, alpha,
        16-bit): then the original bytes cannot be stored unchanged.
    """

    rgb: np.ndarray
    format: str
    converted: bool


def sniff_format(data: bytes) -> str | None:
    """The image format from the magic bytes, or None when it is not an image we read."""
    if data.startswith(_JPEG_MAGIC):
        return "jpeg"
    if data.startswith(_PNG_MAGIC):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    for magic, name in _OTHER_MAGIC.items():
        if data.startswith(magic):
            return name
    return None


def check_complete(data: bytes, name: str) -> str:
    """Checks that `data` is a whole image file; returns its format.

    libjpeg decodes a truncated JPEG with only a warning and fills the missing rows
    grey, so decoding alone cannot tell; a complete JPEG ends its last scan with an
    EOI marker and a complete PNG has its IEND chunk.

    Raises:
      ImageError: naming `name` when the file is empty, not an image, or truncated.
    """
    if not data:
        raise ImageError(f"{name}: empty file")
    image_format = sniff_format(data)
    if image_format is None:
        raise ImageError(f"{name}: not an image (unrecognised header {data[:8]!r}); "
                         "expected JPEG, PNG, WebP, BMP, GIF or TIFF")
    if image_format == "jpeg":
        last_scan = data.rfind(_JPEG_SOS)
        if last_scan < 0 or data.rfind(_JPEG_EOI) < last_scan:
            raise ImageError(f"{name}: truncated JPEG (no end-of-image marker after the last scan)")
    elif image_format == "png" and _PNG_IEND not in data:
        raise ImageError(f"{name}: truncated PNG (no IEND chunk at the end)")
    return image_format


def decode(data: bytes, name: str) -> DecodedImage:
    """Decodes and converts one image file to RGB uint8.

    Args:
      data: the file's bytes.
      name: the file's name, used in errors.

    Raises:
      ImageError: if the file is truncated, corrupt or not an image.
    """
    image_format = check_complete(data, name)
    # IMREAD_UNCHANGED keeps 16-bit depth and alpha (converted below, on purpose) and
    # ignores EXIF orientation exactly like tf.image.decode_image does at read time.
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.size == 0:
        raise ImageError(f"{name}: corrupt {image_format} data (the decoder could not read it)")
    rgb, converted = to_rgb(pixels, name, bgr=True)
    return DecodedImage(rgb=rgb, format=image_format, converted=converted)


def probe(data: bytes, name: str) -> tuple[int, int, str, bool]:
    """Checks that a file decodes completely; returns (height, width, format, converted).

    Same checks as `decode` without building the RGB array (the scan only needs
    to know that the file is whole and what it holds).
    """
    image_format = check_complete(data, name)
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.size == 0:
        raise ImageError(f"{name}: corrupt {image_format} data (the decoder could not read it)")
    if pixels.dtype not in (np.uint8, np.uint16) or pixels.ndim not in (2, 3):
        raise ImageError(f"{name}: unsupported image ({pixels.dtype}, shape {pixels.shape})")
    converted = pixels.dtype != np.uint8 or pixels.ndim == 2 or pixels.shape[2] != 3
    return pixels.shape[0], pixels.shape[1], image_format, converted


def to_rgb(pixels: np.ndarray, name: str, bgr: bool) -> tuple[np.ndarray, bool]:
    """Converts gray / gray+alpha / colour / colour+alpha, 8 or 16 bit, to RGB uint8.

    Args:
      pixels: HxW or HxWxC array (C in 1..4), uint8 or uint16.
      name: used in errors.
      bgr: whether colour channels are in OpenCV's BGR order.

    Returns:
      (rgb, converted): converted is True unless the input already was 8-bit colour.
    """
    converted = False
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
        converted = True
    elif pixels.dtype != np.uint8:
        raise ImageError(f"{name}: unsupported pixel type {pixels.dtype}; expected 8 or 16 bit")
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4):
        raise ImageError(f"{name}: unsupported image shape {pixels.shape}")
    channels = pixels.shape[2]
    if channels in (1, 2):
        return np.ascontiguousarray(np.repeat(pixels[:, :, :1], 3, axis=2)), True
    if channels == 4:
        pixels, converted = pixels[:, :, :3], True
    if bgr:
        pixels = pixels[:, :, ::-1]
    return np.ascontiguousarray(pixels), converted


def resize(rgb: np.ndarray, size: int) -> np.ndarray:
    """Resizes to size x size: area averaging to shrink, bilinear to enlarge."""
    if rgb.shape[0] == size and rgb.shape[1] == size:
        return rgb
    shrinking = rgb.shape[0] * rgb.shape[1] > size * size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(rgb, (size, size), interpolation=interpolation)


def encode(rgb: np.ndarray, encoding: str) -> bytes:
    """Encodes RGB uint8 pixels as PNG (lossless) or JPEG (quality 95)."""
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    if encoding == "png":
        ok, buffer = cv2.imencode(".png", bgr)
    elif encoding == "jpeg":
        ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    else:
        raise ValueError(f"encoding must be 'png' or 'jpeg', got {encoding!r}")
    if not ok:
        raise RuntimeError(f"OpenCV failed to encode a {rgb.shape} image as {encoding}")
    return buffer.tobytes()
