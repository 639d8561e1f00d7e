"""Annotation: a box, the top label with its probability, and a bar per class beside every face.

Only OpenCV's built-in Hershey font is used, so drawing needs no font files.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from fer_lightning.inference.detect import Box
from fer_lightning.inference.images import to_bgr
from fer_lightning.inference.predictor import FaceResult

FONT = cv2.FONT_HERSHEY_SIMPLEX
# BGR, one per class in CLASS_NAMES order; unknown names fall back to white.
PALETTE: dict[str, tuple[int, int, int]] = {
    "angry": (40, 40, 220), "disgust": (40, 150, 40), "fear": (170, 60, 170), "happy": (0, 210, 255),
    "sad": (210, 120, 30), "surprise": (0, 140, 255), "neutral": (180, 180, 180),
}


def _color(name: str) -> tuple[int, int, int]:
    return PALETTE.get(name, (255, 255, 255))


def _shade(canvas: np.ndarray, x0: int, y0: int, x1: int, y1: int, alpha: float = 0.6) -> None:
    """Darken a rectangle (clipped to the image) so text on it stays readable on any background."""
    h, w = canvas.shape[:2]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 > x0 and y1 > y0:
        canvas[y0:y1, x0:x1] = (canvas[y0:y1, x0:x1] * (1.0 - alpha)).astype(np.uint8)


def _text(canvas: np.ndarray, text: str, x: int, y: int, scale: float, color: tuple[int, int, int],
          thickness: int | None = None) -> None:
    thickness = thickness or max(1, round(scale * 2))
    cv2.putText(canvas, text, (x, y), FONT, scale, color, thickness, cv2.LINE_AA)


def _overlap(a: tuple[int, int, int, int], box: Box) -> int:
    """Intersection area of the rectangle (x0, y0, x1, y1) and a box."""
    x0, y0, x1, y1 = a
    return max(0, min(x1, box.x + box.w) - max(x0, box.x)) * max(0, min(y1, box.y + box.h) - max(y0, box.y))


def _panel_origin(size: tuple[int, int], box: Box, others: Sequence[Box], shape: tuple[int, ...]) -> tuple[int, int]:
    """Top-left of the bar panel: below the box, right, left or above it (moved inside the image), whichever
    covers the least of the other faces; ties go to that order."""
    (pw, ph), (h, w) = size, shape[:2]
    gap = 3
    places = [(box.x, box.y + box.h + gap), (box.x + box.w + gap, box.y), (box.x - gap - pw, box.y),
              (box.x, box.y - gap - ph)]
    inside = [(max(0, min(w - pw, x)), max(0, min(h - ph, y))) for x, y in places]
    return min(inside, key=lambda p: sum(_overlap((p[0], p[1], p[0] + pw, p[1] + ph), o) for o in others))


def _bars(canvas: np.ndarray, face: FaceResult, others: Sequence[Box], scale: float) -> None:
    """A panel with one probability bar per class (names left, bars right), placed by `_panel_origin`."""
    names = list(face.probabilities)
    (name_w, text_h), _ = cv2.getTextSize(max(names, key=len), FONT, scale, 1)
    pad = max(2, text_h // 2)
    row = int(text_h * 1.7) + 1
    bar_len = max(30, face.box.w - name_w - 3 * pad)
    size = (name_w + bar_len + 3 * pad, row * len(names) + pad)
    x0, y0 = _panel_origin(size, face.box, others, canvas.shape)
    _shade(canvas, x0, y0, x0 + size[0], y0 + size[1])
    for i, name in enumerate(names):
        base = y0 + (i + 1) * row
        _text(canvas, name, x0 + pad, base - (row - text_h) // 2, scale, (235, 235, 235), thickness=1)
        bx = x0 + 2 * pad + name_w
        length = max(1, round(bar_len * face.probabilities[name]))
        cv2.rectangle(canvas, (bx, base - row + 3), (bx + length, base - 2), _color(name), cv2.FILLED)


def annotate(image: np.ndarray, faces: Sequence[FaceResult], bars: bool = True) -> np.ndarray:
    """A BGR copy of `image` with each face's box, top label + probability and (optionally) class bars;
    an image without faces gets a 'no face' note, so a missing detection is visible too."""
    canvas = to_bgr(image)
    h, w = canvas.shape[:2]
    if not faces:
        scale = max(0.4, min(w, h) / 600)
        (tw, th), _ = cv2.getTextSize("no face found", FONT, scale, 1)
        _shade(canvas, 0, 0, tw + 2 * th, 2 * th)
        _text(canvas, "no face found", th // 2 + 1, int(th * 1.5), scale, (255, 255, 255))
        return canvas
    for face in faces:
        box, color = face.box, _color(face.label)
        scale = float(np.clip(box.w / 260, 0.35, 1.2))
        thickness = max(1, round(box.w / 90))
        cv2.rectangle(canvas, (box.x, box.y), (box.x + box.w, box.y + box.h), color, thickness)
        caption = f"{face.label} {face.score:.0%}"
        (tw, th), base = cv2.getTextSize(caption, FONT, scale * 1.3, 1)
        top = box.y - th - 2 * base if box.y - th - 2 * base >= 0 else box.y + box.h
        cv2.rectangle(canvas, (box.x, top), (box.x + tw + base * 2, top + th + 2 * base), color, cv2.FILLED)
        _text(canvas, caption, box.x + base, top + th + base // 2, scale * 1.3, (20, 20, 20))
        if bars:
            _bars(canvas, face, [f.box for f in faces if f is not face], scale * 0.9)
    return canvas
