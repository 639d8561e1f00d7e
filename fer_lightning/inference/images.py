"""Image input/output for inference: decode files with one-line errors, convert to gray, write atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer_lightning.atomicio import atomic_open

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pnm"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})


class ImageReadError(ValueError):
    """A file that is missing or cannot be decoded as an image; the message is one line naming the file."""


def read_image(path: str | Path) -> np.ndarray:
    """BGR uint8 [H, W, 3] (OpenCV's order). Reads bytes first so non-ASCII paths work too."""
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise ImageReadError(f"{path}: cannot read file ({error.strerror or type(error).__name__})") from None
    if data.size == 0:
        raise ImageReadError(f"{path}: empty file")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    if image is None:
        raise ImageReadError(f"{path}: cannot decode image (not an image, truncated, or a format OpenCV cannot read)")
    return to_uint8(image)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """8-bit pixels: 16-bit ones (a file's, a PIL image's, an array's) scaled by 255/65535 as the FER-2013 readers."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16 or (image.dtype.kind in "iu" and image.size and 255 < image.max() <= 65535):
        return np.rint(image * (255.0 / 65535.0)).astype(np.uint8)
    if image.dtype.kind in "iu" and (not image.size or 0 <= image.min() <= image.max() <= 255):
        return image.astype(np.uint8)  # e.g. PIL's 32-bit mode "I" holding 8-bit values
    raise ValueError(f"expected a uint8 or uint16 image, got dtype {image.dtype}")


def to_gray(image: Any, channel_order: str = "bgr") -> np.ndarray:
    """uint8 [H, W] from a path, a PIL image, or a uint8/uint16 array [H, W], [H, W, 1|3|4] whose channels are in
    `channel_order` ("bgr": OpenCV, video frames; or "rgb"); ITU-R 601 luma, as the FER-2013 readers' PIL."""
    if isinstance(image, str | Path):
        image = read_image(image)
    elif not isinstance(image, np.ndarray) and hasattr(image, "convert"):  # PIL.Image: as a file's pixels would be
        gray = image.mode in ("L", "I") or image.mode.startswith("I;16")
        image, channel_order = np.asarray(image if gray else image.convert("RGB")), "rgb"
    image = to_uint8(np.asarray(image))
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return image.reshape(image.shape[:2])
    if image.ndim == 3 and image.shape[2] in (3, 4):
        rgb_first = channel_order.lower() == "rgb"
        code = {(3, False): cv2.COLOR_BGR2GRAY, (4, False): cv2.COLOR_BGRA2GRAY,
                (3, True): cv2.COLOR_RGB2GRAY, (4, True): cv2.COLOR_RGBA2GRAY}[(image.shape[2], rgb_first)]
        return cv2.cvtColor(image, code)
    raise ValueError(f"expected an image [H, W] or [H, W, 1|3|4], got shape {tuple(image.shape)}")


def to_bgr(image: np.ndarray) -> np.ndarray:
    """A 3-channel BGR copy to draw on."""
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image.copy()


def write_image(path: str | Path, image: np.ndarray) -> None:
    path = Path(path)
    ok, encoded = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise OSError(f"{path}: OpenCV could not encode the image as {path.suffix}")
    with atomic_open(path) as handle:
        handle.write(encoded.tobytes())
