"""Faces over time in a video: a track id per face and, optionally, its probabilities smoothed by an exponential
moving average, so its label does not flicker (benchmarks/bench_video.py measures label changes per minute).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fer_lightning.inference.detect import Box


@dataclass
class Track:
    """One face followed across frames: its id, where it was last seen, and its smoothed probabilities."""

    id: int
    box: Box
    last_frame: int
    probabilities: np.ndarray | None = None


class FaceTracker:
    """Gives each box the id of the track it overlaps most (IoU >= min_iou, one box per track: scipy's Hungarian
    solver), or a new id; a track missed by more than `max_missed` successive calls ends. past_weight: of the
    moving average, p_smoothed = past_weight * p_previous + (1 - past_weight) * p_frame; 0: each frame's own."""

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
        result = []
        for col, box in enumerate(boxes):
            track = matched.get(col)
            if track is None:
                track = Track(next(self._ids), box, frame)
                self.tracks.append(track)
            track.box, track.last_frame = box, frame
            result.append(track)
        return result

    def smoothed(self, track: Track, probabilities: np.ndarray) -> np.ndarray:
        """This frame's probabilities of `track` folded into its moving average (returned and kept)."""
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if track.probabilities is not None and self.past_weight:
            probabilities = self.past_weight * track.probabilities + (1.0 - self.past_weight) * probabilities
        track.probabilities = probabilities
        return probabilities
