"""Deterministic synthetic FER-like faces, so training and tests run without the real FER-2013, drawn with numpy
(signed distances with one-pixel soft edges). Only the shape of brows, eyes and mouth carries the class; pose, face,
skin, hair, lighting, noise, occlusion and intensity vary at random, so no pixel statistic gives the label away."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np

from fer_lightning.data.splits import IMAGE_SIZE, NUM_CLASSES, SPLITS, Split

FER2013_TRAIN_PROPORTIONS = tuple(c / 28709 for c in (3995, 436, 4097, 7215, 4830, 3171, 4965))  # Training rows

# Expression shape at full intensity, one row per class in CLASS_NAMES order. Face units: the image spans
# [-1, 1] and y points down, so a negative brow offset raises the brow and a negative mouth curve lifts the
# corners (smile). brow_gap < 0 pulls the inner brow ends together.
# fmt: off
_COLUMNS = ("brow_in", "brow_out", "brow_arch", "brow_gap", "eye_open", "mouth_w", "mouth_curve",
            "mouth_open", "lip_raise", "cheek", "wrinkle")
_EXPRESSIONS = np.array([
    # in    out    arch   gap    eye    m_w   curve  open   lip   cheek wrinkle
    [0.09, -0.02, 0.00, -0.05, 0.035, 0.20, 0.03, 0.00, 0.00, 0.0, 0.3],  # angry
    [0.06, 0.00, 0.00, -0.03, 0.040, 0.22, 0.05, 0.01, 0.11, 0.0, 1.0],  # disgust
    [-0.08, -0.02, 0.00, -0.05, 0.100, 0.30, 0.02, 0.06, 0.00, 0.0, 0.0],  # fear
    [0.00, 0.00, 0.02, 0.00, 0.045, 0.30, -0.12, 0.04, 0.00, 1.0, 0.0],  # happy
    [-0.08, 0.05, 0.00, 0.00, 0.050, 0.22, 0.09, 0.00, 0.00, 0.0, 0.0],  # sad
    [-0.10, -0.10, 0.06, 0.00, 0.100, 0.13, 0.00, 0.14, 0.00, 0.0, 0.0],  # surprise
    [0.00, 0.00, 0.02, 0.00, 0.065, 0.25, 0.00, 0.00, 0.00, 0.0, 0.0],  # neutral
])
_JITTER = (0.02, 0.02, 0.015, 0.02, 0.012, 0.03, 0.02, 0.01, 0.0, 0.0, 0.0)  # +- per column, every sample
# fmt: on
_NEUTRAL = 6
_SOFT = 0.045  # edge width in face units, about one pixel
_CHUNK = 128  # images rendered at once: keeps the float32 temporaries cache-sized


def _soft(d: np.ndarray) -> np.ndarray:
    """Coverage in [0, 1] from a signed distance (positive inside); clip rather than exp keeps it exact."""
    out = d * (1.0 / _SOFT) + 0.5
    return np.clip(out, 0.0, 1.0, out=out)


def _ellipse(u: np.ndarray, v: np.ndarray, cx, cy, a, b) -> np.ndarray:
    """Approximate signed distance to an ellipse (positive inside), good enough for thin eye shapes."""
    ia, ib = 1.0 / a, 1.0 / b
    x, y = (u - cx) * ia, (v - cy) * ib
    k0 = np.sqrt(x * x + y * y)
    x, y = x * ia, y * ib
    k1 = np.sqrt(x * x + y * y) + 1e-6
    return k0 * (1.0 - k0) / k1


def _lerp(img: np.ndarray, color, alpha: np.ndarray) -> np.ndarray:
    return img + (color - img) * alpha


def _draw_params(labels: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-sample parameters, drawn in a fixed order so a seed always gives the same faces."""
    uni = partial(rng.uniform, size=len(labels))
    intensity = uni(0.3, 1.0)  # weak expressions drift towards neutral: some samples are genuinely ambiguous
    expr = _EXPRESSIONS[_NEUTRAL] + intensity[:, None] * (_EXPRESSIONS[labels] - _EXPRESSIONS[_NEUTRAL])
    # individual differences in the resting face
    p = {name: expr[:, i] + uni(-1.0, 1.0) * _JITTER[i] for i, name in enumerate(_COLUMNS)}
    p["mouth_open"] = np.maximum(p["mouth_open"], 0.0)
    p["lip_side"] = np.where(uni(0, 1) < 0.5, -1.0, 1.0)  # disgust asymmetry on either side: flips stay valid
    # cos/sin as short polynomials (|angle| < 0.21 rad): no libm difference across platforms can change a pixel
    a = np.deg2rad(uni(-12, 12))
    a2 = a * a
    p["cos"] = 1 - a2 / 2 + a2 * a2 / 24 - a2 * a2 * a2 / 720
    p["sin"] = a * (1 - a2 / 6 + a2 * a2 / 120 - a2 * a2 * a2 / 5040)
    p["scale"], p["tx"], p["ty"] = uni(0.9, 1.1), uni(-3, 3) * 2 / IMAGE_SIZE, uni(-3, 3) * 2 / IMAGE_SIZE
    p["face_w"], p["face_h"], p["face_y"] = uni(0.66, 0.82), uni(0.86, 1.0), uni(-0.02, 0.1)
    p["eye_x"], p["eye_y"], p["eye_w"] = uni(0.26, 0.34), uni(-0.16, -0.08), uni(0.11, 0.15)
    p["brow_y"], p["brow_th"] = uni(-0.22, -0.16), uni(0.022, 0.04)
    p["mouth_y"], p["gaze"] = uni(0.44, 0.56), uni(-0.04, 0.04)
    p["skin"], p["bg"], p["hair"] = uni(0.35, 0.85), uni(0.05, 0.95), uni(0.05, 0.7)
    p["hairline"], p["brow_dark"], p["teeth"] = uni(-0.85, -0.5), uni(0.25, 0.55), uni(0, 1) < 0.5
    p["light"], p["light_x"], p["light_y"] = uni(0.0, 0.35), uni(-1, 1), uni(-1, 1)
    p["contrast"], p["brightness"], p["noise"] = uni(0.7, 1.3), uni(-0.12, 0.12), uni(0.01, 0.05)
    p["occluded"], p["occ_val"] = uni(0, 1) < 0.2, uni(0, 1)
    p["occ_x"], p["occ_y"], p["occ_w"], p["occ_h"] = uni(-0.7, 0.7), uni(-0.7, 0.7), uni(0.12, 0.4), uni(0.12, 0.4)
    bar = uni(0, 1)  # a third of occluders are full bars (a hand or scarf across the face)
    p["occ_w"] = np.where(bar < 0.15, 2.0, p["occ_w"])
    p["occ_h"] = np.where((bar >= 0.15) & (bar < 0.33), 2.0, p["occ_h"])
    return p


def _render(p: dict[str, np.ndarray], noise: np.ndarray) -> np.ndarray:
    """Paint one batch (painter's algorithm) and return floats in [0, 1]; all params are [B] arrays."""
    q = {k: v.astype(np.float32)[:, None, None] for k, v in p.items()}
    grid = (np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5) * (2.0 / IMAGE_SIZE) - 1.0
    x, y = grid[None, None, :], grid[None, :, None]
    # Pose: map image coordinates back into the face frame (rotate by -angle, undo shift and scale).
    dx, dy = x - q["tx"], y - q["ty"]
    u, v = (q["cos"] * dx + q["sin"] * dy) / q["scale"], (q["cos"] * dy - q["sin"] * dx) / q["scale"]
    au = np.abs(u)  # mirrored x: both halves of the face share one drawing

    skin = q["skin"]
    img = np.broadcast_to(q["bg"], u.shape).astype(np.float32)
    img = _lerp(img, q["hair"], _soft(_ellipse(u, v, 0, q["face_y"] - 0.04, q["face_w"] + 0.08, q["face_h"] + 0.1)))
    face_d = _ellipse(u, v, 0, q["face_y"], q["face_w"], q["face_h"])
    hairline = q["hairline"] + 0.25 * (u / q["face_w"]) ** 2
    shade = skin * (1.0 - 0.25 * ((u / q["face_w"]) ** 2 + ((v - q["face_y"]) / q["face_h"]) ** 2))
    img = _lerp(img, shade, _soft(face_d) * _soft(v - hairline))
    cheek = np.clip(1.0 - ((au - 0.33) ** 2 + (v - 0.2) ** 2) / 0.03, 0.0, 1.0)
    img = img + 0.12 * q["cheek"] * cheek

    # Brows: a curve over |u| from the inner to the outer end; inner/outer offsets and an upward arch.
    x_in, x_out = 0.1 + q["brow_gap"], 0.5
    t = (au - x_in) / (x_out - x_in)
    brow_y = q["eye_y"] + q["brow_y"] + q["brow_in"] * (1 - t) + q["brow_out"] * t - 4 * q["brow_arch"] * t * (1 - t)
    brow = _soft(q["brow_th"] - np.abs(v - brow_y)) * _soft(np.minimum(t, 1 - t) * (x_out - x_in))
    brow_col = skin * q["brow_dark"]
    img = _lerp(img, brow_col, brow)

    # Eyes: dark lid outline, light sclera, dark iris clipped to the opening (wide eyes show sclera above it).
    ex, ey, ew, eh = q["eye_x"], q["eye_y"], q["eye_w"], q["eye_open"]
    img = _lerp(img, brow_col, _soft(_ellipse(au, v, ex, ey, ew + 0.025, eh + 0.025)))
    eye = _soft(_ellipse(au, v, ex, ey, ew, eh))
    img = _lerp(img, 0.55 + 0.35 * skin, eye)
    iris = _soft(0.06 - np.sqrt((au - ex - q["gaze"] * np.sign(u)) ** 2 + (v - ey) ** 2))
    img = _lerp(img, 0.1, eye * iris)

    # Nose: nostrils (pulled up by the disgust wrinkle) and wrinkle lines across the bridge.
    wr = q["wrinkle"]
    img = _lerp(img, skin * 0.45, _soft(_ellipse(au, v, 0.07, 0.25 - 0.04 * wr, 0.045, 0.025)))
    lines = np.maximum(_soft(0.015 - np.abs(v - 0.03)), _soft(0.015 - np.abs(v - 0.09))) * _soft(0.1 - au)
    img = _lerp(img, skin * 0.5, 0.7 * np.clip(wr, 0, 1) * lines)

    # Mouth: centre line y0 + curve*s^2, open by an elliptic profile; the upper lip may rise on one side.
    w, y0 = q["mouth_w"], q["mouth_y"]
    s = u / w
    yc = y0 + q["mouth_curve"] * s * s
    half_open = q["mouth_open"] * np.sqrt(np.clip(1 - s * s, 0, 1))
    raise_ = q["lip_raise"] * np.clip(1 - ((s - 0.45 * q["lip_side"]) / 0.55) ** 2, 0, 1)
    upper, lower, ends = yc - half_open - raise_, yc + half_open, (1 - np.abs(s)) * w
    th = 0.03
    img = _lerp(img, skin * 0.65, _soft(np.minimum(np.minimum(v - upper + th, lower + th - v), ends + 0.01)))
    inside = np.where((q["teeth"] > 0.5) & (v < yc - 0.01), 0.85 * np.maximum(skin, 0.6), 0.06)
    img = _lerp(img, inside, _soft(np.minimum(np.minimum(v - upper, lower - v), ends - 0.02)))

    # Camera: linear light gradient, contrast/brightness, occluder, sensor noise.
    norm = np.sqrt(q["light_x"] ** 2 + q["light_y"] ** 2) + 1e-3
    img = img * (1 + q["light"] * (q["light_x"] * x + q["light_y"] * y) / norm)
    img = (img - 0.5) * q["contrast"] + 0.5 + q["brightness"]
    occ = (np.abs(x - q["occ_x"]) < q["occ_w"]) & (np.abs(y - q["occ_y"]) < q["occ_h"]) & (q["occluded"] > 0.5)
    img = np.where(occ, q["occ_val"], img)
    return np.clip(img + noise * q["noise"], 0.0, 1.0)


def generate_faces(n: int, seed: int, proportions: Sequence[float] = FER2013_TRAIN_PROPORTIONS) -> Split:
    """n images with labels drawn with those class proportions (deterministic for a given seed); numpy refuses
    a negative n or proportions that are not NUM_CLASSES non-negative numbers with a positive sum."""
    probs = np.asarray(proportions, dtype=np.float64)
    rng = np.random.default_rng(seed)
    labels = rng.choice(NUM_CLASSES, size=n, p=probs / probs.sum()).astype(np.int64)
    params = _draw_params(labels, rng)
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    for start in range(0, n, _CHUNK):
        part = {k: v[start : start + _CHUNK] for k, v in params.items()}
        noise = rng.standard_normal((len(part["skin"]), IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
        images[start : start + _CHUNK] = np.rint(_render(part, noise) * 255.0).astype(np.uint8)
    return Split(images, labels)


def make_splits(n_train: int = 8000, n_val: int = 1500, n_test: int = 1500, seed: int = 0) -> dict[str, Split]:
    """{'train','val','test'} -> Split; each split gets its own seed spawned from `seed`, so none overlap."""
    sizes = dict(zip(SPLITS, (n_train, n_val, n_test), strict=True))
    seeds = [int(child.generate_state(1, np.uint64)[0]) for child in np.random.SeedSequence(seed).spawn(len(SPLITS))]
    return {name: generate_faces(n, split_seed) for (name, n), split_seed in zip(sizes.items(), seeds, strict=True)}
