"""Annotation: a box, the top label with its probability, and a bar per class beside every face.

Labels and panels never cover a face: a panel goes beside its box where the image has room, else into a margin
added to the right of the image; a caption goes above the box, else below it, else into a strip added on top.
Small images (a 48x48 crop) are upscaled first so the text is legible. Video frames keep their size (a video
has one frame size), so there the panel goes wherever it covers the least face.

Only OpenCV's built-in Hershey font is used, so drawing needs no font files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

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
# images whose shorter side is below this are upscaled (by a whole factor) before drawing
MIN_DRAW_SIDE = 240
GAP = 3
MARGIN_COLOR = (32, 32, 32)


@dataclass
class _Rect:
    x: int
    y: int
    w: int
    h: int

    def overlap(self, box: Box | _Rect) -> int:
        return (max(0, min(self.x + self.w, box.x + box.w) - max(self.x, box.x))
                * max(0, min(self.y + self.h, box.y + box.h) - max(self.y, box.y)))

    def inside(self, width: int, height: int) -> bool:
        return self.x >= 0 and self.y >= 0 and self.x + self.w <= width and self.y + self.h <= height


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


def _scale(box: Box) -> float:
    return float(np.clip(box.w / 260, 0.35, 1.2))


def _caption(face: FaceResult, number: int | None = None) -> tuple[str, int, int, int]:
    """The top label's text (prefixed by the face's number when panels sit in the margin), its width and height
    and the font baseline, at this face's caption size."""
    text = f"{'' if number is None else f'{number}: '}{face.label} {face.score:.0%}"
    (tw, th), base = cv2.getTextSize(text, FONT, _scale(face.box) * 1.3, 1)
    return text, tw + 2 * base, th + 2 * base, base


@dataclass
class _PanelText:
    """The font metrics of a face's probability panel: one place for its size and its drawing."""

    names: list[str]
    scale: float
    name_w: int
    text_h: int
    pad: int
    row: int

    @classmethod
    def of(cls, face: FaceResult) -> _PanelText:
        names, scale = list(face.probabilities), _scale(face.box) * 0.9
        (name_w, text_h), _ = cv2.getTextSize(max(names, key=len), FONT, scale, 1)
        return cls(names, scale, name_w, text_h, max(2, text_h // 2), int(text_h * 1.7) + 1)


def _panel_size(face: FaceResult, header: bool = False) -> tuple[int, int]:
    t = _PanelText.of(face)
    return t.name_w + max(30, face.box.w - t.name_w - 3 * t.pad) + 3 * t.pad, t.row * (len(t.names) + header) + t.pad


def _beside(box: Box, w: int, h: int, width: int, height: int) -> list[_Rect]:
    """Where a w x h panel may go, in order of preference: right of the box, left, below, above; on each side
    aligned with the box's start, then its end, then slid into the image (still beside the box)."""
    ys = dict.fromkeys([box.y, box.y + box.h - h, max(0, min(height - h, box.y))])
    xs = dict.fromkeys([box.x, box.x + box.w - w, max(0, min(width - w, box.x))])
    return ([_Rect(box.x + box.w + GAP, y, w, h) for y in ys] + [_Rect(box.x - GAP - w, y, w, h) for y in ys]
            + [_Rect(x, box.y + box.h + GAP, w, h) for x in xs] + [_Rect(x, box.y - GAP - h, w, h) for x in xs])


def _upscaled(canvas: np.ndarray, faces: Sequence[FaceResult]) -> tuple[np.ndarray, list[FaceResult]]:
    factor = math.ceil(MIN_DRAW_SIDE / max(1, min(canvas.shape[:2])))
    if factor <= 1:
        return canvas, list(faces)
    canvas = cv2.resize(canvas, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    return canvas, [replace(f, box=Box(f.box.x * factor, f.box.y * factor, f.box.w * factor, f.box.h * factor))
                    for f in faces]


def _draw_panel(canvas: np.ndarray, face: FaceResult, rect: _Rect, number: int | None) -> None:
    """One probability bar per class (names left, bars right) in `rect`, under a header naming the face when it
    has a number (a panel in the margin, away from its face)."""
    t = _PanelText.of(face)
    names, scale, name_w, text_h, pad, row = t.names, t.scale, t.name_w, t.text_h, t.pad, t.row
    bar_len = rect.w - name_w - 3 * pad
    _shade(canvas, rect.x, rect.y, rect.x + rect.w, rect.y + rect.h)
    if number is not None:
        _text(canvas, f"{number}: {face.label}", rect.x + pad, rect.y + row - (row - text_h) // 2, scale,
              _color(face.label), thickness=1)
    header = row if number is not None else 0
    for i, name in enumerate(names):
        base = rect.y + header + (i + 1) * row
        _text(canvas, name, rect.x + pad, base - (row - text_h) // 2, scale, (235, 235, 235), thickness=1)
        bx = rect.x + 2 * pad + name_w
        length = max(1, round(bar_len * face.probabilities[name]))
        cv2.rectangle(canvas, (bx, base - row + 3), (bx + length, base - 2), _color(name), cv2.FILLED)


def _draw_caption(canvas: np.ndarray, face: FaceResult, rect: _Rect, number: int | None) -> None:
    text, _, _, base = _caption(face, number)
    cv2.rectangle(canvas, (rect.x, rect.y), (rect.x + rect.w, rect.y + rect.h), _color(face.label), cv2.FILLED)
    _text(canvas, text, rect.x + base, rect.y + rect.h - base - base // 2, _scale(face.box) * 1.3, (20, 20, 20))


def _layout(faces: Sequence[FaceResult], width: int, height: int, bars: bool, keep_size: bool,
            numbered: bool = False) -> tuple[list[_Rect], list[_Rect | None], int, int, int]:
    """Caption and panel rectangles per face, and the (top, right, bottom) margins the image needs for them.

    Rectangles with y < 0 lie in the top strip, x >= width in the right margin (coordinates of the unpadded image).
    numbered: captions and margin panels carry the face's number (1, 2, ...), so a margin panel names its face.
    """
    boxes = [f.box for f in faces]
    captions: list[_Rect] = []
    top = 0
    for i, face in enumerate(faces):
        _, cw, ch, _ = _caption(face, i + 1 if numbered else None)
        box = face.box
        above, below = _Rect(box.x, box.y - ch, cw, ch), _Rect(box.x, box.y + box.h, cw, ch)
        if above.y >= 0 or keep_size:
            rect = above if above.y >= 0 else below if below.y + ch <= height else _Rect(box.x, box.y, cw, ch)
        elif below.y + ch <= height:
            rect = below
        else:  # no room above or below: a strip on top of the image
            rect, top = above, max(top, ch)
        rect.x = max(0, min(width - cw, rect.x)) if cw <= width else 0
        captions.append(rect)
    panels: list[_Rect | None] = []
    right = bottom = 0
    stack = 0  # panels in the right margin, top to bottom
    for face in faces:
        if not bars:
            panels.append(None)
            continue
        pw, ph = _panel_size(face)
        taken = boxes + captions + [p for p in panels if p]
        free = [r for r in _beside(face.box, pw, ph, width, height)
                if r.inside(width, height) and not any(r.overlap(t) for t in taken)]
        if free:
            panels.append(free[0])
        elif keep_size:  # inside the frame, covering the least face area
            inside = [_Rect(max(0, min(width - pw, r.x)), max(0, min(height - ph, r.y)), pw, ph)
                      for r in _beside(face.box, pw, ph, width, height)]
            panels.append(min(inside, key=lambda r: (2 * r.overlap(face.box) + sum(r.overlap(b) for b in boxes))))
        else:
            pw, ph = _panel_size(face, header=numbered)
            panels.append(_Rect(width + GAP, -top + stack + GAP, pw, ph))
            stack += ph + GAP
            right = max(right, pw + 2 * GAP)
    bottom = max(0, stack + GAP - top - height)
    return captions, panels, top, right, bottom


def annotate(image: np.ndarray, faces: Sequence[FaceResult], bars: bool = True, keep_size: bool = False
             ) -> np.ndarray:
    """A BGR copy of `image` with each face's box, top label + probability and (optionally) class bars;
    an image without faces gets a 'no face' note, so a missing detection is visible too.

    keep_size: draw on the image as it is (video frames), never upscaling it or adding margins.
    """
    canvas = to_bgr(image)
    if not keep_size:
        canvas, faces = _upscaled(canvas, faces)
    h, w = canvas.shape[:2]
    if not faces:
        scale = max(0.4, min(w, h) / 600)
        (tw, th), _ = cv2.getTextSize("no face found", FONT, scale, 1)
        _shade(canvas, 0, 0, tw + 2 * th, 2 * th)
        _text(canvas, "no face found", th // 2 + 1, int(th * 1.5), scale, (255, 255, 255))
        return canvas
    captions, panels, top, right, bottom = _layout(faces, w, h, bars, keep_size)
    numbered = len(faces) > 1 and right > 0  # a panel in the margin: number the faces to pair them
    if numbered:
        captions, panels, top, right, bottom = _layout(faces, w, h, bars, keep_size, numbered=True)
    if top or right or bottom:
        canvas = cv2.copyMakeBorder(canvas, top, bottom, 0, right, cv2.BORDER_CONSTANT, value=MARGIN_COLOR)
    for i, (face, caption, panel) in enumerate(zip(faces, captions, panels, strict=True)):
        number = i + 1 if numbered else None
        box = face.box
        thickness = max(1, round(box.w / 90))
        cv2.rectangle(canvas, (box.x, box.y + top), (box.x + box.w, box.y + box.h + top), _color(face.label),
                      thickness)
        _draw_caption(canvas, face, _Rect(caption.x, caption.y + top, caption.w, caption.h), number)
        if panel is not None:
            in_margin = panel.x >= w
            _draw_panel(canvas, face, _Rect(panel.x, panel.y + top, panel.w, panel.h), number if in_margin else None)
    return canvas
