"""The vendored MTCNN's fast paths compute the numbers of the plain calls they replace: area averages read off
integral tables equal `interpolate(mode="area")` bit for bit, chunked convolutions equal one call on all crops."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch.nn.functional import interpolate

from fer_lightning.inference.mtcnn import MTCNN, _area_means, _area_resized, _integral, _normalised


def _images(count: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, height, width), dtype=np.uint8)


def _area(pixels: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """The plain call: uint8 [N, H, W] -> float32 [N, 1, *size]."""
    return interpolate(torch.from_numpy(pixels.astype(np.float32))[:, None], size=size, mode="area")


@pytest.mark.parametrize("size", [(1, 1), (7, 9), (29, 40), (61, 83), (62, 84), (150, 200)])  # down, same, up
def test_area_resized_equals_interpolate_area_bit_for_bit(size: tuple[int, int]) -> None:
    images = _images(2, 61, 83)
    tables = np.stack([_integral(image) for image in images])
    assert torch.equal(_area_resized(tables, size), _area(images, size))


@pytest.mark.parametrize("size", [24, 48])
def test_area_means_equal_interpolate_area_on_each_region_bit_for_bit(size: int) -> None:
    images = _images(2, 120, 160)
    tables = np.stack([_integral(image) for image in images])
    rng = np.random.default_rng(1)
    top, left = rng.integers(0, 120, 300), rng.integers(0, 160, 300)
    height, width, owner = rng.integers(1, 121 - top), rng.integers(1, 161 - left), rng.integers(0, 2, 300)
    expected = torch.cat([_area(images[k, None, t : t + h, x : x + w], (size, size))
                          for k, t, x, h, w in zip(owner, top, left, height, width, strict=True)])
    assert torch.equal(_area_means(tables, owner, top, left, height, width, size), expected)
    assert _area_means(tables, *(np.zeros(0, int),) * 5, size).shape == (0, 1, size, size)


@pytest.mark.parametrize(("stage", "size"), [("rnet", 24), ("onet", 48)])
def test_chunked_convolutions_give_each_crop_the_numbers_of_one_call(stage: str, size: int) -> None:
    net = getattr(MTCNN(), stage)
    crops = _normalised(torch.from_numpy(_images(150, size, size).astype(np.float32))[:, None])
    assert 0 < net.chunk < len(crops)
    chunked = net(crops)
    net.chunk = 0
    for mine, whole in zip(chunked, net(crops), strict=True):
        assert torch.equal(mine, whole)


def test_any_gray_array_gives_the_boxes_of_its_uint8_copy() -> None:
    """uint8 images get int32 integral tables, other dtypes float64 ones; views are copied first (low thresholds:
    many boxes from blurred noise)."""
    gray = cv2.GaussianBlur(_images(1, 240, 320, seed=2)[0], (0, 0), 2)
    mtcnn = MTCNN(thresholds=(0.05, 0.05, 0.05))
    boxes, scores = mtcnn.detect(gray)
    assert len(scores) > 5
    for other in (gray.astype(np.float32), gray.astype(np.float64)):
        same_boxes, same_scores = mtcnn.detect(other)
        assert np.array_equal(same_boxes, boxes) and np.array_equal(same_scores, scores)
    flipped, flipped_scores = mtcnn.detect(gray[:, ::-1])
    expected, expected_scores = mtcnn.detect(np.ascontiguousarray(gray[:, ::-1]))
    assert np.array_equal(flipped, expected) and np.array_equal(flipped_scores, expected_scores)


def test_integral_tables_of_large_images_do_not_overflow() -> None:
    """int32 tables hold the sums of 8.4 M white pixels; a larger uint8 image gets a float64 table."""
    small, large = np.full((2048, 4112), 255, np.uint8), np.full((2048, 4113), 255, np.uint8)
    assert _integral(small).dtype == np.int32 and _integral(large).dtype == np.float64
    assert torch.allclose(_area_resized(_integral(large)[None], (3, 5)), torch.full((1, 1, 3, 5), 255.0))
