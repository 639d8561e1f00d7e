"""Face detectors: boxes inside the image, settings checked in one line, the hint after "no face found", one place
for the defaults. (Recall and false boxes on real photos are measured by benchmarks/bench_detect.py.)"""

from __future__ import annotations

import inspect
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from fer_lightning.config import CONFIG_DIR
from fer_lightning.inference import Box, HaarFaceDetector, crop_face
from fer_lightning.inference.detect import DETECTORS, DlibFaceDetector, MTCNNFaceDetector
from fer_lightning.inference.pipeline import PredictionRun
from fer_lightning.predict import main


class _FixedCascade:
    """Stands in for MTCNN's networks: the same corner boxes (x0, y0, x1, y1) on every image it is given."""

    def __init__(self, *corners: tuple[float, float, float, float]) -> None:
        self.corners = np.array(corners, dtype=np.float64).reshape(-1, 4)

    def detect_batch(self, grays: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(self.corners, np.full(len(self.corners), 0.99)) for _ in grays]


def _detector_finding(*corners: tuple[float, float, float, float]) -> MTCNNFaceDetector:
    detector = MTCNNFaceDetector(angles=[0])
    detector.mtcnn = _FixedCascade(*corners)
    return detector


def test_boxes_are_clipped_to_the_image_so_the_slice_is_the_visible_face() -> None:
    gray = np.arange(240 * 320, dtype=np.uint32).reshape(240, 320).astype(np.uint8)
    found = _detector_finding((-83, 20, 37, 140), (250, 190, 350, 290), (400, 10, 450, 60)).detect(gray)
    assert found == [Box(0, 20, 37, 120), Box(250, 190, 70, 50)]  # left and bottom-right edges; the third is outside
    for box in found:
        assert gray[box.y : box.y + box.h, box.x : box.x + box.w].shape == (box.h, box.w)
        assert crop_face(gray, box).shape == (48, 48)  # the classifier's square crop still pads what it needs


def test_a_box_well_inside_the_image_is_unchanged_and_gives_the_same_crop() -> None:
    gray = np.random.default_rng(0).integers(0, 256, (240, 320), dtype=np.uint8)
    (box,) = _detector_finding((60.4, 30.6, 156.4, 126.6)).detect(gray)
    assert box == Box(60, 31, 96, 96)
    np.testing.assert_array_equal(crop_face(gray, box, 0.1), crop_face(gray, Box(60, 31, 96, 96), 0.1))


@pytest.mark.parametrize(("make", "message"), [
    (lambda: HaarFaceDetector(min_neighbors=-1), r"haar.min_neighbors=-1: expected an integer >= 0"),
    (lambda: HaarFaceDetector(max_side=0), r"haar.max_side=0: expected a positive number of pixels or null"),
    (lambda: HaarFaceDetector(scale_factor=1.0), r"haar.scale_factor=1.0: expected a number > 1"),
    (lambda: HaarFaceDetector(min_size=0), r"haar.min_size=0: expected a positive number of pixels"),
    (lambda: MTCNNFaceDetector(thresholds=[2, 2, 2]), r"thresholds=\[2, 2, 2\]: expected three numbers in \(0, 1"),
    (lambda: MTCNNFaceDetector(thresholds=[0.5, 0.5]), r"mtcnn.thresholds=\[0.5, 0.5\]: expected three numbers"),
    (lambda: MTCNNFaceDetector(min_confidence=2), r"mtcnn.min_confidence=2: expected a number in \[0, 1\]"),
    (lambda: MTCNNFaceDetector(min_face_size=0), r"mtcnn.min_face_size=0: expected a positive number of pixels"),
    (lambda: MTCNNFaceDetector(max_side=-5), r"mtcnn.max_side=-5: expected a positive number of pixels or null"),
    (lambda: DlibFaceDetector(upsample=-1), r"dlib.upsample=-1: expected an integer >= 0"),
])
def test_settings_out_of_range_are_rejected_naming_the_key(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


def test_predict_rejects_a_detector_setting_in_one_line_before_reading_any_image(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "photo.png"
    image.write_bytes(b"")  # never read: the detector is built first
    monkeypatch.setattr(sys, "argv", ["fer_lightning.predict", f"input={image}", "mtcnn.min_confidence=2",
                                      f"hydra.run.dir={tmp_path / 'run'}", "hydra/job_logging=none",
                                      "hydra/hydra_logging=none"])
    GlobalHydra.instance().clear()
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "predict: error: mtcnn.min_confidence=2: expected a number in [0, 1]\n"


def test_each_detector_says_which_setting_hides_small_faces() -> None:
    assert MTCNNFaceDetector(min_face_size=40).hint == (
        "faces smaller than mtcnn.min_face_size=40 px are not searched: try mtcnn.min_face_size=20")
    assert MTCNNFaceDetector(min_face_size=12).hint == "faces smaller than 12 px are not searched"
    assert "after downscaling to max_side=320" in MTCNNFaceDetector(max_side=320).hint
    assert HaarFaceDetector(min_size=32).hint.endswith("try haar.min_size=24")
    assert DlibFaceDetector(upsample=1).hint.endswith("try dlib.upsample=2")


class _NoFacePredictor:
    detector = MTCNNFaceDetector(min_face_size=40)

    def predict(self, image: np.ndarray) -> list:
        return []


def test_no_face_found_line_carries_the_detectors_hint(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import cv2

    cv2.imwrite(str(tmp_path / "small.png"), np.full((64, 64, 3), 128, np.uint8))
    run = PredictionRun(_NoFacePredictor(), tmp_path / "out", annotate=False, progress=False)  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO):
        run.image(tmp_path / "small.png", Path("small.png"))
    assert (f"{tmp_path / 'small.png'}: no face found (faces smaller than mtcnn.min_face_size=40 px are not "
            "searched: try mtcnn.min_face_size=20)") in caplog.messages


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_predict_yaml_states_each_detectors_own_defaults(name: str) -> None:
    """The detector classes hold the defaults (Python users get the same detector as `predict`); predict.yaml
    repeats them so they can be overridden and read there: the two must not drift apart."""
    block = OmegaConf.to_container(OmegaConf.load(Path(CONFIG_DIR) / "predict.yaml")[name])
    signature = inspect.signature(DETECTORS[name]).parameters
    defaults = {key: signature[key].default for key in block}
    assert {k: list(v) if isinstance(v, tuple) else v for k, v in defaults.items()} == block
