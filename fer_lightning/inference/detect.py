"""Face detectors behind one protocol: MTCNN (the default), OpenCV's Haar cascade, dlib's HOG, the whole image.
Every model comes inside its wheel, nothing is downloaded: the cascade in opencv-python-headless 4.x (OpenCV 5 wheels
ship none, hence the `<5` pin), MTCNN's networks in this package (weights/mtcnn.pt), the HOG detector in dlib-bin."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch

from fer_lightning.inference.nms import nms


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels: top-left corner (x, y), width w and height h."""

    x: int
    y: int
    w: int
    h: int

    def iou(self, other: Box) -> float:
        ix = max(0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union > 0 else 0.0

    def overlaps(self, other: Box) -> bool:
        return (min(self.x + self.w, other.x + other.w) > max(self.x, other.x)
                and min(self.y + self.h, other.y + other.h) > max(self.y, other.y))

    def inside(self, width: int, height: int) -> bool:
        return self.x >= 0 and self.y >= 0 and self.x + self.w <= width and self.y + self.h <= height

    def grown(self, by: int) -> Box:
        return Box(self.x - by, self.y - by, self.w + 2 * by, self.h + 2 * by)

    def square(self, margin: float = 0.0) -> Box:
        """The square around this box's centre with side max(w, h) * (1 + 2 * margin); may leave the image."""
        side = max(1, round(max(self.w, self.h) * (1.0 + 2.0 * margin)))
        cx, cy = self.x + self.w / 2.0, self.y + self.h / 2.0
        return Box(round(cx - side / 2.0), round(cy - side / 2.0), side, side)


def _check(key: str, value: object, expected: str, ok: bool) -> None:
    """A constructor setting outside its range: one line naming the predict key, before any image is read."""
    if not ok:
        raise ValueError(f"{key}={value}: expected {expected}")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_max_side(key: str, value: object) -> None:
    _check(key, value, "a positive number of pixels or null", value is None or (_is_number(value) and value > 0))


class FaceDetector(Protocol):
    """Finds faces in a grayscale uint8 image [H, W]; returns boxes in that image's pixel coordinates."""

    def detect(self, gray: np.ndarray) -> list[Box]: ...


class WholeImageDetector:
    """Treats the whole image as one face: for inputs that are already face crops (e.g. FER-2013's 48x48)."""

    margin = 0.0  # the image is the crop

    def detect(self, gray: np.ndarray) -> list[Box]:
        return [Box(0, 0, gray.shape[1], gray.shape[0])]


class HaarFaceDetector:
    """OpenCV's Viola-Jones frontal-face cascade (CPU only). Its defaults found 75 % of 200 real FER-2013 faces
    pasted into photographs, with 35 false boxes per 100 frames (MTCNN: 94 %, 6; docs/detectors.md)."""

    margin = 0.03  # its boxes are ~3 % tighter per side than FER-2013's crops

    def __init__(self, cascade: str = "haarcascade_frontalface_default.xml", scale_factor: float = 1.1,
                 min_neighbors: int = 5, min_size: int = 32, max_side: int | None = None) -> None:
        _check("haar.scale_factor", scale_factor, "a number > 1", _is_number(scale_factor) and scale_factor > 1)
        _check("haar.min_neighbors", min_neighbors, "an integer >= 0",
               isinstance(min_neighbors, int) and not isinstance(min_neighbors, bool) and min_neighbors >= 0)
        _check("haar.min_size", min_size, "a positive number of pixels", _is_number(min_size) and min_size > 0)
        _check_max_side("haar.max_side", max_side)
        path = Path(cascade) if Path(cascade).is_file() else Path(cv2.data.haarcascades) / cascade
        self.classifier = cv2.CascadeClassifier(str(path))
        if not path.is_file() or self.classifier.empty():
            raise FileNotFoundError(f"Haar cascade {cascade!r} not found (looked in {cv2.data.haarcascades}); "
                                    "install opencv-python-headless>=4.8,<5 (OpenCV 5 wheels ship no cascades)")
        self.scale_factor, self.min_neighbors, self.min_size = scale_factor, min_neighbors, int(min_size)
        self.max_side = max_side
        self.hint = _size_hint("haar.min_size", self.min_size, max_side, window=24)  # the cascade's window

    def detect(self, gray: np.ndarray) -> list[Box]:
        small, scale = _resized(gray, self.max_side)
        found = self.classifier.detectMultiScale(small, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                                                 minSize=(self.min_size, self.min_size))
        return _boxes_in_image([tuple(int(v) for v in b) for b in found], scale, gray.shape)


def _resized(gray: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """A copy downscaled to `max_side` (longer side) and the factor, or the image itself and 1.0."""
    if not max_side or max(gray.shape[:2]) <= max_side:
        return gray, 1.0
    scale = max_side / max(gray.shape[:2])
    return cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), scale


def _boxes_in_image(found: Iterable[tuple[float, float, float, float]], scale: float,
                    shape: tuple[int, ...]) -> list[Box]:
    """(x, y, w, h) found on an image resized by `scale` as Boxes of the image of `shape`, clipped to it (a face at
    the border is boxed by its visible part), left to right: a stable face index across frames."""
    height, width = shape[:2]
    boxes = []
    for x, y, w, h in found:
        x0, y0 = max(0, round(x / scale)), max(0, round(y / scale))
        x1, y1 = min(width, round((x + w) / scale)), min(height, round((y + h) / scale))
        if x1 > x0 and y1 > y0:
            boxes.append(Box(x0, y0, x1 - x0, y1 - y0))
    return sorted(boxes, key=lambda b: (b.x, b.y))


def _size_hint(key: str, smallest: int, max_side: int | None, window: int) -> str:
    """What to print after "no face found": the face size below which this detector does not look."""
    where = f" (after downscaling to max_side={max_side})" if max_side else ""
    if smallest <= window:
        return f"faces smaller than {smallest} px{where} are not searched"
    return f"faces smaller than {key}={smallest} px{where} are not searched: try {key}={max(window, smallest // 2)}"


class MTCNNFaceDetector:
    """MTCNN, vendored from facenet-pytorch (inference/mtcnn.py): the default, it found the most faces, and its boxes
    match FER-2013's crops (hence no margin). It looks at copies turned by `angles` (MTCNN misses heads tilted past
    ~10 degrees); the settings and their measurements: conf/predict.yaml and docs/detectors.md."""

    margin = 0.0

    def __init__(self, min_face_size: int = 40, thresholds: tuple[float, float, float] = (0.3, 0.4, 0.4),
                 min_confidence: float = 0.9, angles: Sequence[float] = (-12.0, 12.0), max_side: int | None = None,
                 mirror: bool = True, device: str = "cpu") -> None:
        from fer_lightning.inference.mtcnn import MTCNN  # here: detector=haar never loads it

        _check("mtcnn.angles", angles, "a non-empty list of degrees in [-90, 90]",
               isinstance(angles, Sequence) and bool(angles) and all(_is_number(a) and -90 <= a <= 90 for a in angles))
        _check("mtcnn.thresholds", thresholds, "three numbers in (0, 1), for P-, R- and O-Net",
               isinstance(thresholds, Sequence) and len(thresholds) == 3
               and all(_is_number(t) and 0 < t < 1 for t in thresholds))
        _check("mtcnn.min_confidence", min_confidence, "a number in [0, 1]",
               _is_number(min_confidence) and 0 <= min_confidence <= 1)
        _check("mtcnn.min_face_size", min_face_size, "a positive number of pixels",
               _is_number(min_face_size) and min_face_size > 0)
        _check_max_side("mtcnn.max_side", max_side)
        _check("mtcnn.mirror", mirror, "true or false", isinstance(mirror, bool))
        self.mtcnn = MTCNN(min_face_size=min_face_size, thresholds=tuple(thresholds), device=device, mirror=mirror,
                           min_score=min_confidence)
        self.min_confidence, self.angles, self.max_side = min_confidence, tuple(angles), max_side
        self.hint = _size_hint("mtcnn.min_face_size", min_face_size, max_side, window=12)  # P-Net's window

    def detect(self, gray: np.ndarray) -> list[Box]:
        small, scale = _resized(gray, self.max_side)
        copies, backs = zip(*(self._turned(small, angle) for angle in self.angles), strict=True)
        boxes: list[tuple[float, float, float, float]] = []
        scores: list[float] = []
        for (corners, found_scores), back in zip(self.mtcnn.detect_batch(copies), backs, strict=True):
            for (x0, y0, x1, y1), p in zip(corners, found_scores, strict=True):
                if p >= self.min_confidence:
                    cx, cy = back @ np.array([(x0 + x1) / 2, (y0 + y1) / 2, 1.0])
                    boxes.append((cx - (x1 - x0) / 2, cy - (y1 - y0) / 2, x1 - x0, y1 - y0))
                    scores.append(float(p))
        if len(self.angles) > 1 and boxes:  # one face seen at two angles: keep its best-scoring box
            corners = torch.tensor([(x, y, x + w, y + h) for x, y, w, h in boxes], dtype=torch.float32)
            boxes = [boxes[i] for i in nms(corners, torch.tensor(scores), 0.3).tolist()]
        return _boxes_in_image(boxes, scale, gray.shape)

    @staticmethod
    def _turned(gray: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
        """`gray` turned by `angle` degrees about its centre (edges replicated) and the 2x3 map back to the frame's
        pixels: a turned copy makes a tilted head upright; boxes are mapped back by their centres."""
        if not angle:
            return gray, np.eye(2, 3)
        h, w = gray.shape[:2]
        turn = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        turned = cv2.warpAffine(gray, turn, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return turned, cv2.invertAffineTransform(turn)


class DlibFaceDetector:
    """dlib's HOG + linear SVM frontal-face detector (dlib-bin, no model file); `upsample` doubles the image that
    many times first, to find faces smaller than its 80 px window."""

    margin = 0.10  # its boxes are ~9 % tighter per side than FER-2013's crops (bench_detect.py)

    def __init__(self, upsample: int = 1, max_side: int | None = None) -> None:
        try:
            import dlib
        except ImportError as error:
            raise ImportError(f"detector=dlib needs dlib ({error}): pip install dlib-bin") from error
        _check("dlib.upsample", upsample, "an integer >= 0",
               isinstance(upsample, int) and not isinstance(upsample, bool) and upsample >= 0)
        _check_max_side("dlib.max_side", max_side)
        self.detector = dlib.get_frontal_face_detector()
        self.upsample, self.max_side = upsample, max_side
        self.hint = (f"faces smaller than about {80 // 2 ** upsample} px are not searched: "
                     f"try dlib.upsample={upsample + 1}")  # its window is 80 px, halved per upsampling

    def detect(self, gray: np.ndarray) -> list[Box]:
        small, scale = _resized(gray, self.max_side)
        found = self.detector(np.ascontiguousarray(small), self.upsample)
        return _boxes_in_image([(r.left(), r.top(), r.width(), r.height()) for r in found], scale, gray.shape)


DETECTORS: dict[str, type] = {"haar": HaarFaceDetector, "mtcnn": MTCNNFaceDetector, "dlib": DlibFaceDetector}


def default_detector() -> FaceDetector:
    """What `detector=mtcnn`, predict's default, builds with its default settings."""
    return MTCNNFaceDetector()
