"""The mirror check (`mtcnn.mirror`): the same boxes, each scored as the mean of O-Net on its crop and on the mirror
image of that crop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn.functional import interpolate

from fer_lightning.inference.detect import MTCNNFaceDetector
from fer_lightning.inference.mtcnn import MTCNN
from tests.test_predict import pasted_face


def onet_score(mtcnn: MTCNN, gray: np.ndarray, box: np.ndarray, mirrored: bool) -> float:
    """O-Net's face probability for a box, cropped as the Caffe code does (1-based corners, area resize to 48)."""
    x0, y0, x1, y1 = (int(v) for v in box)
    crop = torch.as_tensor(gray[max(y0, 1) - 1 : y1, max(x0, 1) - 1 : x1], dtype=torch.float32)[None, None]
    crop = interpolate(crop, size=(48, 48), mode="area")
    crop = (crop.flip(-1) if mirrored else crop) - 127.5
    _, probs, *_ = mtcnn.onet((crop * 0.0078125).contiguous(memory_format=torch.channels_last))
    return float(probs[0, 1])


@pytest.mark.parametrize("index", [0, 1, 2])
def test_mirror_keeps_the_boxes_and_averages_the_two_scores(index: int) -> None:
    gray, _ = pasted_face(index)
    plain, mirror = MTCNN(thresholds=(0.3, 0.4, 0.4)), MTCNN(thresholds=(0.3, 0.4, 0.4), mirror=True)
    boxes, scores = plain.detect(gray)
    mirror_boxes, mirror_scores = mirror.detect(gray)
    assert len(boxes) >= 1
    np.testing.assert_allclose(mirror_boxes, boxes, atol=1e-4)
    for box, score, mixed in zip(boxes, scores, mirror_scores, strict=True):
        assert onet_score(plain, gray, box, mirrored=False) == pytest.approx(score, abs=0.05)  # the regressed box
        assert mixed == pytest.approx((score + onet_score(plain, gray, box, mirrored=True)) / 2, abs=1e-4)


def test_mirror_setting_is_checked_in_one_line() -> None:
    with pytest.raises(ValueError, match=r"^mtcnn.mirror=yes: expected true or false$"):
        MTCNNFaceDetector(mirror="yes")  # type: ignore[arg-type]


def test_a_box_that_cannot_reach_the_cut_is_dropped_before_the_mirror_pass() -> None:
    gray, _ = pasted_face(1)  # one face and eight weak boxes at these thresholds
    thresholds = (0.05, 0.05, 0.05)
    _, plain_scores = MTCNN(thresholds=thresholds).detect(gray)
    boxes, scores = MTCNN(thresholds=thresholds, mirror=True).detect(gray)
    kept_boxes, kept_scores = MTCNN(thresholds=thresholds, mirror=True, min_score=0.6).detect(gray)
    reachable = plain_scores >= 2 * 0.6 - 1
    assert 0 < reachable.sum() < len(reachable)
    np.testing.assert_allclose(kept_boxes, boxes[reachable], atol=1e-4)
    np.testing.assert_allclose(kept_scores, scores[reachable], atol=1e-5)
    assert (scores[~reachable] < 0.6).all()  # nothing the cut keeps was dropped
    assert len(MTCNN(thresholds=thresholds, mirror=True, min_score=1.0).detect(gray)[0]) == 0
