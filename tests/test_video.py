"""Video: track ids, smoothing, detection every n-th frame, frame times, per-input summaries, the timeline and the
encoder; and the per-image result line on stdout."""

from __future__ import annotations

import csv
import json
import logging
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from fer_lightning.data.augment import AugmentProfile
from fer_lightning.data.splits import CLASS_NAMES
from fer_lightning.inference import Box, Predictor
from fer_lightning.inference import pipeline as pipeline_module
from fer_lightning.inference.draw import PALETTE
from fer_lightning.inference.pipeline import PredictionRun, write_tables
from fer_lightning.inference.predictor import FaceResult
from fer_lightning.inference.video import FaceTracker, FrameClassifier, TrackedFace, open_writer, write_timeline
from fer_lightning.models import FERCNN
from fer_lightning.module import FERClassifier


def test_tracker_keeps_ids_of_moving_faces_and_gives_new_faces_new_ids() -> None:
    tracker = FaceTracker(max_missed=2)
    a, b = Box(10, 10, 50, 50), Box(200, 10, 50, 50)
    assert [t.id for t in tracker.assign([a, b], 0)] == [1, 2]
    moved = [Box(205, 14, 50, 50), Box(14, 12, 50, 50)]  # both moved a little; given in the other order
    assert [t.id for t in tracker.assign(moved, 1)] == [2, 1]
    assert [t.id for t in tracker.assign([Box(400, 300, 60, 60), Box(16, 12, 50, 50)], 2)] == [3, 1]
    assert [t.id for t in tracker.assign([], 3)] == []
    assert [t.id for t in tracker.assign([Box(16, 12, 50, 50)], 5)] == [1]  # missed 2 steps: still track 1
    assert [t.id for t in tracker.assign([Box(16, 12, 50, 50)], 9)] == [4]  # missed 3: a new track


def test_smoothing_is_the_moving_average_computed_by_hand() -> None:
    tracker = FaceTracker(past_weight=0.75)
    (track,) = tracker.assign([Box(0, 0, 10, 10)], 0)
    p0, p1, p2 = np.array([0.2, 0.8]), np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert np.allclose(tracker.smoothed(track, p0), [0.2, 0.8])  # the first frame is its own average
    assert np.allclose(tracker.smoothed(track, p1), [0.75 * 0.2 + 0.25, 0.75 * 0.8])
    assert np.allclose(tracker.smoothed(track, p2), [0.75 * 0.4, 0.75 * 0.6 + 0.25])
    off = FaceTracker()
    (track,) = off.assign([Box(0, 0, 10, 10)], 0)
    off.smoothed(track, p0)
    assert np.allclose(off.smoothed(track, p1), p1)  # smooth=0: each frame's own probabilities
    with pytest.raises(ValueError, match=r"past_weight=1\.0: expected"):
        FaceTracker(past_weight=1.0)


class CountingDetector:
    """The same boxes on every frame; counts its calls."""

    def __init__(self, boxes: list[Box]) -> None:
        self.boxes, self.calls = boxes, 0

    def detect(self, gray: np.ndarray) -> list[Box]:
        self.calls += 1
        return list(self.boxes)


def predictor(detector: object) -> Predictor:
    torch.manual_seed(0)
    return Predictor(FERClassifier(FERCNN()).eval(), AugmentProfile(), detector, margin=0.0)


def test_detection_every_nth_frame_classifies_the_held_boxes_between() -> None:
    detector = CountingDetector([Box(8, 8, 48, 48)])
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (7, 64, 96, 3), dtype=np.uint8)
    classify = FrameClassifier(predictor(detector), detect_every=3)
    results = [classify(frame) for frame in frames]
    assert detector.calls == 3  # frames 0, 3, 6
    assert all(len(r) == 1 and r[0].track == 1 and r[0].face.box == Box(8, 8, 48, 48) for r in results)
    assert len({r[0].face.probabilities["happy"] for r in results}) == 7  # every frame classified on its own


class FakeVideo:
    """Stands in for cv2.VideoCapture of a file: `n` random frames at `fps`."""

    def __init__(self, n: int, fps: float) -> None:
        self.frames = list(np.random.default_rng(n).integers(0, 256, (n, 64, 96, 3), dtype=np.uint8))
        self.fps = fps

    def isOpened(self) -> bool:
        return True

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FPS: self.fps, cv2.CAP_PROP_FRAME_COUNT: len(self.frames)}.get(prop, 0.0)

    def read(self) -> tuple[bool, np.ndarray | None]:
        return (True, self.frames.pop(0)) if self.frames else (False, None)

    def release(self) -> None:
        pass


def test_video_rows_carry_time_and_track_and_each_input_gets_its_own_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    videos = {"a.mp4": FakeVideo(5, 10.0), "b.mp4": FakeVideo(3, 4.0)}
    monkeypatch.setattr(pipeline_module, "open_capture", lambda source: videos[Path(source).name])
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in videos:
        (inputs / name).write_bytes(b"")
    weights: list[float] = []
    monkeypatch.setattr(pipeline_module, "FrameClassifier",
                        lambda p, every, past: weights.append(past) or FrameClassifier(p, every, past))
    run = PredictionRun(predictor(CountingDetector([Box(8, 8, 48, 48)])), tmp_path / "out", annotate=False,
                        video_stride=2, progress=False, smooth=0.5)
    items = run.run(inputs)
    assert weights == pytest.approx([np.exp(-0.2 / 0.5), np.exp(-0.5 / 0.5)])  # smooth=0.5 s, frames 0.2 / 0.5 s apart
    write_tables(items, tmp_path / "out", tuple(CLASS_NAMES), {})
    with (tmp_path / "out/predictions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(Path(r["source"]).name, int(r["frame"]), float(r["time_s"]), r["track"]) for r in rows] == [
        ("a.mp4", 0, 0.0, "1"), ("a.mp4", 2, 0.2, "1"), ("a.mp4", 4, 0.4, "1"),
        ("b.mp4", 0, 0.0, "1"), ("b.mp4", 2, 0.5, "1")]  # time = frame / fps
    record = json.loads((tmp_path / "out/predictions.json").read_text())
    per_input = {Path(i["source"]).name: i for i in record["inputs"]}
    assert per_input["a.mp4"]["items"] == 3 and per_input["b.mp4"]["items"] == 2
    assert per_input["a.mp4"]["last_s"] == 0.4 and per_input["b.mp4"]["tracks"][0]["frames"] == 2
    assert record["summary"]["items"] == 5
    timeline = tmp_path / "out/timeline/a.csv"
    assert per_input["a.mp4"]["timeline"] == str(timeline) and timeline.with_suffix(".png").is_file()


def test_timeline_csv_has_time_track_label_and_a_column_per_class(tmp_path: Path) -> None:
    def tracked(track: int, label: str) -> TrackedFace:
        probabilities = dict.fromkeys(CLASS_NAMES, 0.05)
        probabilities[label] = 0.7
        return TrackedFace(FaceResult(Box(0, 0, 9, 9), probabilities), track)

    frames = [(0, 0.0, [tracked(1, "sad"), tracked(2, "happy")]), (3, 0.125, [tracked(2, "fear")]), (6, 0.25, [])]
    write_timeline(frames, CLASS_NAMES, tmp_path / "t.csv", tmp_path / "t.png", PALETTE)
    with (tmp_path / "t.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["time_s", "frame", "track", "label", *CLASS_NAMES]
    assert [r[:4] for r in rows[1:]] == [["0.000", "0", "1", "sad"], ["0.000", "0", "2", "happy"],
                                         ["0.125", "3", "2", "fear"]]
    assert float(rows[3][4 + CLASS_NAMES.index("fear")]) == 0.7
    assert cv2.imread(str(tmp_path / "t.png")).shape[0] > 200  # two tracks drawn


def encoded_codec(path: Path) -> str:
    capture = cv2.VideoCapture(str(path))
    fourcc = int(capture.get(cv2.CAP_PROP_FOURCC))
    capture.release()
    return fourcc.to_bytes(4, "little").decode("ascii", "replace").lower()


@pytest.mark.parametrize("with_pyav", [True, False], ids=["pyav", "opencv"])
def test_annotated_video_is_h264_with_pyav_and_mp4v_without(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          with_pyav: bool) -> None:
    if with_pyav:
        pytest.importorskip("av")
    else:
        monkeypatch.setitem(sys.modules, "av", None)  # import av raises ImportError
    writer = open_writer(tmp_path / "v.mp4", 12.0, (95, 63))  # odd sides: H.264 pads them
    for i in range(6):
        writer.write(np.full((63, 95, 3), 40 * i, np.uint8))
    writer.release()
    assert encoded_codec(tmp_path / "v.mp4") in (("avc1", "h264") if with_pyav else ("mp4v", "fmp4"))
    assert writer.encoder.startswith("H.264") == with_pyav


def test_each_image_prints_one_result_line_per_face_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             caplog: pytest.LogCaptureFixture) -> None:
    class HintingDetector(CountingDetector):
        hint = "faces below mtcnn.min_face_size=40 px are not looked for"

    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), np.full((64, 96, 3), 90, np.uint8))
    run = PredictionRun(predictor(CountingDetector([Box(0, 0, 40, 40), Box(50, 10, 40, 40)])), tmp_path / "out",
                        progress=False)
    with caplog.at_level(logging.INFO, logger="fer_lightning.inference.pipeline"):
        run.run(image)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{image}: face 1: ") and lines[1].startswith(f"{image}: face 2: ")
    assert lines[1].endswith("at x=50 y=10 40x40") and "%, " in lines[1]
    assert "\n".join(lines) in [r.getMessage() for r in caplog.records]  # the log file keeps them
    PredictionRun(predictor(HintingDetector([])), tmp_path / "out2", progress=False).run(image)
    assert capsys.readouterr().out == f"{image}: no face found (faces below mtcnn.min_face_size=40 px are not " \
                                      "looked for)\n"
