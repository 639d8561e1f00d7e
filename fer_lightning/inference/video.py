"""Video frames to faces over time: detection every n-th frame, a track id per face with smoothed probabilities (no
flickering label; bench_video.py), the annotated video's encoder and the per-video timeline (a CSV and its plot)."""

from __future__ import annotations

import csv
import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from fer_lightning.atomicio import atomic_open
from fer_lightning.inference.detect import Box
from fer_lightning.inference.images import to_gray
from fer_lightning.inference.predictor import FaceResult, Predictor, crop_face


@dataclass
class Track:
    """One face followed across frames: its id, where it was last seen, and its smoothed probabilities."""

    id: int
    box: Box
    last_frame: int
    probabilities: np.ndarray | None = None


class FaceTracker:
    """Gives each box the id of the track it overlaps most (IoU >= min_iou, scipy's Hungarian solver), or a new id; a
    track missed more than `max_missed` successive calls ends. p_smoothed = past_weight * p_previous + (1 - ...)."""

    def __init__(self, min_iou: float = 0.3, max_missed: int = 10, past_weight: float = 0.0) -> None:
        if not 0.0 <= past_weight < 1.0:
            raise ValueError(f"past_weight={past_weight}: expected a weight in [0, 1) (0: no smoothing)")
        self.min_iou, self.max_missed, self.past_weight = min_iou, max_missed, past_weight
        self.tracks: list[Track] = []
        self._ids = itertools.count(1)

    def assign(self, boxes: Sequence[Box], frame: int) -> list[Track]:
        """The track of each box (in the order of `boxes`), updated to this frame (the detection's number)."""
        self.tracks = [t for t in self.tracks if frame - t.last_frame - 1 <= self.max_missed]
        iou = np.array([[t.box.iou(b) for b in boxes] for t in self.tracks]).reshape(len(self.tracks), len(boxes))
        from scipy.optimize import linear_sum_assignment  # here: scipy.optimize is 0.37 s of a photo's cold start

        matched = {col: self.tracks[row] for row, col in zip(*linear_sum_assignment(-iou), strict=True)
                   if iou[row, col] >= self.min_iou}
        for col, box in enumerate(boxes):
            if col not in matched:
                matched[col] = Track(next(self._ids), box, frame)
                self.tracks.append(matched[col])
            matched[col].box, matched[col].last_frame = box, frame
        return [matched[col] for col in range(len(boxes))]

    def smoothed(self, track: Track, probabilities: np.ndarray) -> np.ndarray:
        """This frame's probabilities of `track` folded into its moving average (returned and kept)."""
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if track.probabilities is not None and self.past_weight:
            probabilities = self.past_weight * track.probabilities + (1.0 - self.past_weight) * probabilities
        track.probabilities = probabilities
        return probabilities


@dataclass
class TrackedFace:
    """A face in one classified frame: what the predictor said (smoothed when asked) and its track id."""

    face: FaceResult
    track: int


class FrameClassifier:
    """Classifies the faces of consecutive frames of one video; the detector (several times the classifier's cost)
    runs on every `detect_every`-th call, the calls between classify the boxes it found last."""

    def __init__(self, predictor: Predictor, detect_every: int = 1, past_weight: float = 0.0) -> None:
        self.predictor = predictor
        self.detect_every = max(1, int(detect_every))
        self.tracker = FaceTracker(past_weight=past_weight)
        self.calls = 0
        self.current: list[Track] = []  # the tracks found by the last detection

    def __call__(self, frame: np.ndarray) -> list[TrackedFace]:
        gray = to_gray(frame)
        if self.calls % self.detect_every == 0:
            self.current = self.tracker.assign(self.predictor.detector.detect(gray), self.calls // self.detect_every)
        self.calls += 1
        if not self.current:
            return []
        crops = np.stack([crop_face(gray, track.box, self.predictor.margin) for track in self.current])
        return [TrackedFace(self.predictor.face_result(track.box, self.tracker.smoothed(track, p)), track.id)
                for track, p in zip(self.current, self.predictor.probabilities(crops), strict=True)]


class _PyAVWriter:
    """H.264 (libx264, yuv420p, MP4 with its index first so a browser starts playing at once) through PyAV."""

    encoder = "H.264 (libx264 through PyAV)"

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        import av

        self.to_frame = av.VideoFrame.from_ndarray
        self.container = av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"})
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001),
                                                options={"preset": "veryfast", "crf": "23"})
        # yuv420p needs even sides: odd frames get one replicated row/column
        self.pad = (size[1] % 2, size[0] % 2)
        self.stream.width, self.stream.height = size[0] + self.pad[1], size[1] + self.pad[0]
        self.stream.pix_fmt = "yuv420p"

    def write(self, frame: np.ndarray) -> None:
        if any(self.pad):
            frame = cv2.copyMakeBorder(frame, 0, self.pad[0], 0, self.pad[1], cv2.BORDER_REPLICATE)
        self.container.mux(self.stream.encode(self.to_frame(frame, format="bgr24")))

    def release(self) -> None:
        self.container.mux(self.stream.encode())  # flush the frames the encoder holds back
        self.container.close()


class _OpenCVWriter:
    encoder = "mp4v (OpenCV; browsers do not play it: pip install av for H.264)"

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not self.writer.isOpened():
            raise OSError(f"{path}: cannot open a video writer (mp4v)")

    def write(self, frame: np.ndarray) -> None:
        self.writer.write(frame)

    def release(self) -> None:
        self.writer.release()


Writer = _PyAVWriter | _OpenCVWriter


def open_writer(path: Path, fps: float, size: tuple[int, int]) -> Writer:
    """A writer of BGR frames of `size` (width, height) into the MP4 file `path`: H.264 if PyAV is installed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _PyAVWriter(path, fps, size)
    except ImportError:
        return _OpenCVWriter(path, fps, size)


def write_timeline(frames: Sequence[tuple[int, float, list[TrackedFace]]], class_names: Sequence[str],
                   csv_path: Path, png_path: Path, colors: dict[str, tuple[int, int, int]]) -> None:
    """The timeline as CSV (a row per classified frame and track: time, frame, track, label, a probability per
    class) and as a PNG with a panel per track (the longest 8). matplotlib loads only here."""
    rows = [[f"{time:.3f}", frame, tracked.track, tracked.face.label,
             *(f"{tracked.face.probabilities[name]:.4f}" for name in class_names)]
            for frame, time, faces in frames for tracked in faces]
    with atomic_open(csv_path, "w") as handle:
        csv.writer(handle, lineterminator="\n").writerows([["time_s", "frame", "track", "label", *class_names], *rows])
    counts = Counter(tracked.track for _, _, faces in frames for tracked in faces)
    if not counts:
        return
    from matplotlib.figure import Figure  # without pyplot: no global backend state

    shown = sorted(track for track, _ in counts.most_common(8))
    figure = Figure(figsize=(9, 1.0 + 1.8 * len(shown)), layout="constrained")
    axes = figure.subplots(len(shown), 1, sharex=True, squeeze=False)[:, 0]
    for ax, track in zip(axes, shown, strict=True):
        seen = [(time, t.face) for _, time, faces in frames for t in faces if t.track == track]
        for name in class_names:
            b, g, r = colors.get(name, (0, 0, 0))
            ax.plot([time for time, _ in seen], [face.probabilities[name] for _, face in seen], label=name,
                    color=(r / 255, g / 255, b / 255), linewidth=1.2)
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"track {track}")
    axes[0].legend(ncol=len(class_names), loc="lower left", bbox_to_anchor=(0, 1.02), fontsize="small", frameon=False)
    axes[-1].set_xlabel("time (s)")
    with atomic_open(png_path) as handle:
        figure.savefig(handle, format="png", dpi=90)
