"""Annotation layout: no card covers any face, every card lies inside the output, cards pair with their faces,
text size follows the image."""

from __future__ import annotations

import numpy as np
import pytest

from fer_lightning.data.splits import CLASS_NAMES
from fer_lightning.inference.detect import Box
from fer_lightning.inference.draw import annotate, plan, text_scale
from fer_lightning.inference.predictor import FaceResult


def face(box: Box, label: str = "happy") -> FaceResult:
    probabilities = dict.fromkeys(CLASS_NAMES, 0.05)
    probabilities[label] = 0.7
    return FaceResult(box, probabilities)


def crowd(n: int, side: int, gap: int, x: int, y: int, per_row: int) -> list[Box]:
    return [Box(x + (i % per_row) * (side + gap), y + (i // per_row) * (side + gap), side, side) for i in range(n)]


LAYOUTS = {  # (width, height, boxes)
    "one face": (640, 480, [Box(200, 150, 120, 120)]),
    "small faces close together": (640, 480, crowd(6, 40, 6, 250, 200, 3)),
    "a crowd filling the image": (320, 240, crowd(20, 60, 4, 0, 0, 5)),
    "faces at the borders": (640, 480, [Box(0, 0, 90, 90), Box(550, 0, 90, 90), Box(0, 390, 90, 90),
                                        Box(550, 390, 90, 90), Box(-20, 200, 80, 80)]),
    "a face filling the image": (300, 300, [Box(0, 0, 300, 300)]),
    "big photo, small faces": (4000, 3000, crowd(8, 90, 12, 1500, 1300, 4)),
}


@pytest.mark.parametrize("keep_size", [False, True], ids=["photo", "video frame"])
@pytest.mark.parametrize("name", list(LAYOUTS))
def test_no_card_covers_a_face_and_every_card_lies_inside(name: str, keep_size: bool) -> None:
    width, height, boxes = LAYOUTS[name]
    faces = [face(b, CLASS_NAMES[i % 7]) for i, b in enumerate(boxes)]
    layout = plan(faces, width, height, keep_size=keep_size)
    assert len(layout.boxes) == len(boxes)
    if keep_size:
        assert (layout.width, layout.height, layout.top) == (width, height, 0)
    for card, rect in layout.cards:
        assert rect.inside(layout.width, layout.height), (card.header, rect)
        assert not any(rect.overlaps(b) for b in layout.boxes), (card.header, rect)
    for i, (_, a) in enumerate(layout.cards):
        assert not any(a.overlaps(b) for _, b in layout.cards[i + 1 :])
    for index, (x0, y0), (x1, y1) in layout.links:  # a line to a face away from its card crosses no other face
        own = layout.boxes[[f.box for f in faces].index(layout.cards[index][0].face.box)]
        for t in np.linspace(0, 1, 50):
            x, y = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
            assert not any(b.x < x < b.x + b.w and b.y < y < b.y + b.h for b in layout.boxes if b != own)
    if not keep_size:  # a photo shows every face's full card, and a number beside every face when several
        full = [card for card, _ in layout.cards if not card.tag_only]
        assert sorted(c.face.box.x * 10**5 + c.face.box.y for c in full) == sorted(b.x * 10**5 + b.y for b in boxes)
        if len(boxes) > 1:
            assert sorted(c.number for c in full) == list(range(1, len(boxes) + 1))
            shown = {c.number for c in full}
            assert shown == {c.number for c, _ in layout.cards}  # each tag repeats a card's number


def test_a_card_away_from_its_face_leaves_a_numbered_tag_beside_the_face() -> None:
    boxes = crowd(6, 40, 6, 250, 200, 3)
    layout = plan([face(b) for b in boxes], 640, 480)
    for card, rect in layout.cards:
        if rect.x >= 640:  # in the right margin: its face has a tag with its number
            tags = [r for c, r in layout.cards if c.tag_only and c.number == card.number]
            box = layout.boxes[card.number - 1]
            assert len(tags) == 1 and max(tags[0].x - box.x - box.w, box.x - tags[0].x - tags[0].w,
                                          tags[0].y - box.y - box.h, box.y - tags[0].y - tags[0].h) < 4 * tags[0].h


def test_text_size_follows_the_image_not_the_box() -> None:
    big = plan([face(b) for b in crowd(8, 90, 12, 1500, 1300, 4)], 4000, 3000)
    letters = [card.metrics[0] for card, _ in big.cards]
    assert min(letters) >= 60  # ~2 % of 3000 px: readable when the photo is shown at screen size
    assert text_scale(4000, 3000) == text_scale(4000, 3000) > 5 * text_scale(640, 360) / 2


def test_annotate_draws_on_the_planned_canvas_and_leaves_faces_untouched() -> None:
    boxes = crowd(6, 40, 6, 250, 200, 3)
    image = np.full((480, 640, 3), 100, np.uint8)
    faces = [face(b) for b in boxes]
    drawn = annotate(image, faces)
    layout = plan(faces, 640, 480)
    assert drawn.shape == (layout.height, layout.width, 3)
    for b in layout.boxes:
        inner = drawn[b.y + 3 : b.y + b.h - 2, b.x + 3 : b.x + b.w - 2]
        assert (inner == 100).all()  # only the outline touches a face
    frame = annotate(image, faces, keep_size=True, numbers=[7, 8, 9, 10, 11, 12])
    assert frame.shape == image.shape
