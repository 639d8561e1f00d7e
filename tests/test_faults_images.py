"""Inference image input: a 16-bit image gives the same gray pixels as a file, a PIL image or an array."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_lightning.data.synthetic import generate_faces
from fer_lightning.inference.images import read_image, to_gray


@pytest.fixture
def face8() -> np.ndarray:
    return generate_faces(1, seed=3).images[0]


def test_a_16_bit_image_is_scaled_the_same_on_every_path(tmp_path: Path, face8: np.ndarray) -> None:
    path = tmp_path / "face16.png"
    Image.fromarray(face8.astype(np.uint16) * 257).save(path)  # the same picture at 16 bits
    assert Image.open(path).mode.startswith("I;16")
    from_disk = to_gray(path)
    np.testing.assert_array_equal(from_disk, face8)
    np.testing.assert_array_equal(to_gray(Image.open(path)), face8)  # was clipped to {0, 255}
    np.testing.assert_array_equal(to_gray(face8.astype(np.uint16) * 257), face8)
    assert read_image(path).dtype == np.uint8  # what the drawing code receives


def test_pil_colour_and_gray_images_match_the_file(tmp_path: Path, face8: np.ndarray) -> None:
    rgb = np.stack([face8, np.roll(face8, 3, axis=0), 255 - face8], axis=-1)
    for mode, array in (("L", face8), ("RGB", rgb)):
        path = tmp_path / f"face_{mode}.png"
        Image.fromarray(array, mode).save(path)
        np.testing.assert_array_equal(to_gray(Image.open(path)), to_gray(path))
    rgba = Image.open(tmp_path / "face_RGB.png").convert("RGBA")
    np.testing.assert_array_equal(to_gray(rgba), to_gray(tmp_path / "face_RGB.png"))


def test_other_dtypes_are_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match="expected a uint8 or uint16 image, got dtype float32"):
        to_gray(np.zeros((48, 48), np.float32))
