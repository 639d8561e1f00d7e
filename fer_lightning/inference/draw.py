"""Annotation: a box per face and a card with its top label, its probability and a bar per class, placed by the
rules of docs/predict.md ("Reading the annotated image"), in OpenCV's Hershey font (no font files)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import astuple, dataclass, field, replace

import cv2
import numpy as np

from fer_lightning.inference.detect import Box
from fer_lightning.inference.images import to_bgr
from fer_lightning.inference.predictor import FaceResult

FONT = cv2.FONT_HERSHEY_SIMPLEX
PALETTE: dict[str, tuple[int, int, int]] = {
    "angry": (40, 40, 220), "disgust": (40, 150, 40), "fear": (170, 60, 170), "happy": (0, 210, 255),
    "sad": (210, 120, 30), "surprise": (0, 140, 255), "neutral": (180, 180, 180),
}
MIN_DRAW_SIDE = 240  # images whose shorter side is below this are upscaled (by a whole factor) before drawing
MARGIN_COLOR = (32, 32, 32)


def _color(name: str) -> tuple[int, int, int]:
    return PALETTE.get(name, (255, 255, 255))  # BGR


def text_scale(width: int, height: int) -> float:
    """Hershey font scale for an image: ~10 px letters up to 400 px on the short side, then 2.3 % of it."""
    return max(0.45, min(width, height) / 950)


@dataclass(frozen=True)
class Card:
    """What is drawn for one face: a header (`3 happy 91%`), then a bar per class if `bars`; tag_only: the number."""

    face: FaceResult
    number: int | None
    scale: float
    bars: bool = True
    tag_only: bool = False

    @property
    def header(self) -> str:
        if self.tag_only:
            return str(self.number)
        number = "" if self.number is None else f"{self.number} "
        return f"{number}{self.face.label} {self.face.score:.0%}"

    @property
    def metrics(self) -> tuple[int, int, int]:
        """(letter height, padding, row height) in pixels."""
        (_, text_h), _ = cv2.getTextSize("Mg", FONT, self.scale, 1)
        pad = max(2, text_h // 3)
        return text_h, pad, text_h + 2 * pad

    @property
    def thickness(self) -> int:
        return max(1, round(self.scale * 1.6))

    @property
    def name_width(self) -> int:
        """The longest class name's width, where the bars start."""
        return cv2.getTextSize(max(self.face.probabilities, key=len), FONT, self.scale, max(1, round(self.scale)))[0][0]

    @property
    def size(self) -> tuple[int, int]:
        text_h, pad, row = self.metrics
        header_w = cv2.getTextSize(self.header, FONT, self.scale, self.thickness)[0][0]
        if not self.bars or self.tag_only:
            return header_w + 2 * pad, row
        return max(header_w + 2 * pad, self.name_width + 4 * text_h + 3 * pad), row * (1 + len(self.face.probabilities))

    def draw(self, canvas: np.ndarray, at: Box) -> None:
        text_h, pad, row = self.metrics
        cv2.rectangle(canvas, (at.x, at.y), (at.x + at.w - 1, at.y + row - 1), _color(self.face.label), cv2.FILLED)
        cv2.putText(canvas, self.header, (at.x + pad, at.y + pad + text_h), FONT, self.scale, (20, 20, 20),
                    self.thickness, cv2.LINE_AA)
        if not self.bars or self.tag_only:
            return
        _shade(canvas, Box(at.x, at.y + row, at.w, at.h - row))
        bar_x, bar_len = at.x + self.name_width + 2 * pad, at.w - self.name_width - 3 * pad
        for i, (name, p) in enumerate(self.face.probabilities.items()):
            top = at.y + (i + 1) * row
            cv2.putText(canvas, name, (at.x + pad, top + pad + text_h), FONT, self.scale, (235, 235, 235),
                        max(1, round(self.scale)), cv2.LINE_AA)
            cv2.rectangle(canvas, (bar_x, top + pad), (bar_x + max(1, round(bar_len * p)), top + row - pad),
                          _color(name), cv2.FILLED)


def _shade(canvas: np.ndarray, rect: Box, alpha: float = 0.6) -> None:
    """Darken a rectangle so text on it stays readable on any background."""
    region = canvas[rect.y : rect.y + rect.h, rect.x : rect.x + rect.w]
    region[:] = (region * (1.0 - alpha)).astype(np.uint8)


def box_thickness(box: Box, scale: float) -> int:
    return max(1, min(round(scale * 2), box.w // 25))


@dataclass
class Layout:
    """Where everything goes on the output canvas (the image, shifted down by `top`, plus margins)."""

    width: int
    height: int
    top: int
    boxes: list[Box]
    cards: list[tuple[Card, Box]] = field(default_factory=list)
    # a line from a card or tag that is not right beside its face to that face: (card index, start, end)
    links: list[tuple[int, tuple[int, int], tuple[int, int]]] = field(default_factory=list)


Link = tuple[tuple[int, int], tuple[int, int]]


def _link(rect: Box, box: Box) -> Link:
    """The shortest segment from `rect` to the point of `box` nearest to the rect's centre."""
    end = (min(max(rect.x + rect.w // 2, box.x), box.x + box.w), min(max(rect.y + rect.h // 2, box.y), box.y + box.h))
    return (min(max(end[0], rect.x), rect.x + rect.w), min(max(end[1], rect.y), rect.y + rect.h)), end


def _crosses(link: Link, rects: Sequence[Box]) -> bool:
    (x0, y0), (x1, y1) = link
    t = np.linspace(0.0, 1.0, 24)
    x, y = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
    return any(((x > r.x) & (x < r.x + r.w) & (y > r.y) & (y < r.y + r.h)).any() for r in rects)


def _nearest_free(box: Box, w: int, h: int, blocked: list[Box], faces: list[Box], width: int, height: int,
                  gap: int, reach: int) -> tuple[Box, Link | None] | None:
    """The free w x h rectangle inside the image closest to `box` (at most `reach` px; right first, then left,
    below, above), with its link line when it is not right beside the box: one that crosses none of `faces`."""
    step = max(2, min(w, h) // 3)
    xs = np.unique(np.clip(np.r_[box.x + box.w + gap, box.x - gap - w, box.x, box.x + box.w - w,
                                 np.arange(box.x - reach - w, box.x + box.w + reach + 1, step)], 0, max(0, width - w)))
    ys = np.unique(np.clip(np.r_[box.y, box.y + box.h - h, box.y + box.h + gap, box.y - gap - h,
                                 np.arange(box.y - reach - h, box.y + box.h + reach + 1, step)], 0, max(0, height - h)))
    x, y = (a.ravel() for a in np.meshgrid(xs, ys))
    free = (x + w <= width) & (y + h <= height)
    for r in blocked:
        free &= ~((np.minimum(x + w, r.x + r.w) > np.maximum(x, r.x))
                  & (np.minimum(y + h, r.y + r.h) > np.maximum(y, r.y)))
    dx = np.maximum(0, np.maximum(box.x - (x + w), x - (box.x + box.w)))
    dy = np.maximum(0, np.maximum(box.y - (y + h), y - (box.y + box.h)))
    distance = np.hypot(dx, dy)
    free &= distance <= reach
    # ties (all sides at the gap) go right, left, below, above; aligned with the box's top or left edge first
    side = np.select([x >= box.x + box.w, x + w <= box.x, y >= box.y + box.h], [0, 1, 2], 3)
    cost = distance + 0.1 * side + 0.001 * (np.abs(y - box.y) + np.abs(x - box.x))
    for i in np.flatnonzero(free)[np.argsort(cost[free], kind="stable")]:
        rect = Box(int(x[i]), int(y[i]), w, h)
        if distance[i] <= 3 * gap:
            return rect, None
        link = _link(rect, box)
        if not _crosses(link, faces):
            return rect, link
    return None


def plan(faces: Sequence[FaceResult], width: int, height: int, bars: bool = True, keep_size: bool = False,
         numbers: Sequence[int] | None = None) -> Layout:
    """Place a card per face (the module's rules); numbers: None gives 1, 2, ... to several faces, none to one."""
    scale = text_scale(width, height)
    if numbers is None:
        numbers = list(range(1, len(faces) + 1)) if len(faces) > 1 else [None] * len(faces)
    gap = max(2, round(4 * scale))
    blocked = [b.grown(box_thickness(b, scale) + gap) for b in (f.box for f in faces)]
    face_rects = [b.grown(box_thickness(b, scale)) for b in (f.box for f in faces)]
    inside: list[tuple[Card, Box, Link | None]] = []

    def place(card: Card, reach: int) -> bool:
        w, h = card.size
        others = [r for r, f in zip(face_rects, faces, strict=True) if f is not card.face]
        found = _nearest_free(card.face.box, w, h, blocked, others, width, height, gap, reach)
        if found is not None:
            inside.append((card, *found))
            blocked.append(found[0].grown(gap))
        return found is not None

    margin: list[Card] = []
    for face, number in zip(faces, numbers, strict=True):
        card = Card(face, number, scale, bars)
        tries = [card] if not keep_size else [card, replace(card, bars=False)] + (
            [replace(card, tag_only=True)] if number is not None else [])
        if not any(place(attempt, reach=max(attempt.size) // 2 + gap) for attempt in tries) and not keep_size:
            margin.append(card)
    strip: list[tuple[Card, Box]] = []  # tags that found no room beside their face, in canvas coordinates
    for card in margin:
        if card.number is None:
            continue
        tag = replace(card, tag_only=True)
        w, h = tag.size
        if place(tag, reach=4 * max(w, h)):
            continue
        x = max(0, min(width - w, card.face.box.x))
        y = gap
        while any(Box(x, y, w, h).grown(gap).overlaps(r) for _, r in strip):
            y += h + gap
        strip.append((tag, Box(x, y, w, h)))
    top = max((r.y + r.h + gap for _, r in strip), default=0)
    cards = strip + [(card, replace(rect, y=rect.y + top)) for card, rect, _ in inside]
    links = [(len(strip) + i, (a[0], a[1] + top), (b[0], b[1] + top))
             for i, (_, _, link) in enumerate(inside) if link is not None for a, b in [link]]
    y, right = gap, 0
    for card in margin:
        w, h = card.size
        cards.append((card, Box(width + gap, y, w, h)))
        y, right = y + h + gap, max(right, w + 2 * gap)
    boxes = [replace(f.box, y=f.box.y + top) for f in faces]
    return Layout(width + right, max(top + height, y), top, boxes, cards, links)


def annotate(image: np.ndarray, faces: Sequence[FaceResult], bars: bool = True, keep_size: bool = False,
             numbers: Sequence[int] | None = None) -> np.ndarray:
    """A BGR copy of `image` with each face's box and card, or a 'no face found' note. keep_size: draw on the image
    as it is (video frames, with their track ids as `numbers`), never upscaling it or adding margins."""
    canvas = to_bgr(image)
    factor = 1 if keep_size else math.ceil(MIN_DRAW_SIDE / max(1, min(canvas.shape[:2])))
    if factor > 1:
        canvas = cv2.resize(canvas, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
        faces = [replace(f, box=Box(*(v * factor for v in astuple(f.box)))) for f in faces]
    height, width = canvas.shape[:2]
    scale = text_scale(width, height)
    if not faces:
        thickness = max(1, round(scale * 1.6))
        (w, h), _ = cv2.getTextSize("no face found", FONT, scale, thickness)
        pad = max(2, h // 3)
        _shade(canvas, Box(0, 0, w + 2 * pad, h + 3 * pad))
        cv2.putText(canvas, "no face found", (pad, pad + h), FONT, scale, (255, 255, 255), thickness, cv2.LINE_AA)
        return canvas
    layout = plan(faces, width, height, bars, keep_size, numbers)
    if (layout.width, layout.height) != (width, height):
        canvas = cv2.copyMakeBorder(canvas, layout.top, layout.height - height - layout.top, 0,
                                    layout.width - width, cv2.BORDER_CONSTANT, value=MARGIN_COLOR)
    for face, box in zip(faces, layout.boxes, strict=True):
        cv2.rectangle(canvas, (box.x, box.y), (box.x + box.w, box.y + box.h), _color(face.label),
                      box_thickness(box, scale))
    for index, start, end in layout.links:
        card = layout.cards[index][0]
        cv2.line(canvas, start, end, _color(card.face.label), card.thickness, cv2.LINE_AA)
    for card, rect in layout.cards:
        card.draw(canvas, rect)
    return canvas
