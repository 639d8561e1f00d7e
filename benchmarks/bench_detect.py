"""Face-detector benchmark on real photographs: recall on real FER-2013 faces pasted into face-free photos, false
boxes on those photos, and time per 640x480 frame, for every detector `python -m fer_lightning.predict
detector=...` offers.

    python benchmarks/bench_detect.py [--data PATH] [--faces 200] [--skip 0] [--seed 0] [--photos 100]
        [--detectors mtcnn,haar,dlib] [--set KEY=VALUE ...] [--sweep KEY=V1,V2,...] [--threads 2]

The backgrounds are the face-free photographs that ship inside scikit-image (`skimage.data`: brick, cat, clock,
coffee, coins, grass, gravel, Hubble deep field, immunohistochemistry, moon, page, retina, rocket launch, text,
cells, the two stereo motorcycle views; all public domain or CC0 per their docstrings); its two photographs of
people (astronaut, camera) are left out. They are loaded at run time, nothing is written to disk. Each 640x480
background is a random crop of one photo, scaled by 1-1.6x past covering the frame and flipped at random. Three
sets, all gray, from `--faces` PublicTest faces of PATH (default ../shared/data/fer2013/fer2013.csv.gz; any
layout `data.path` takes) after the first `--skip`:
  (a) pasted: each face upscaled (bicubic) to a random side of 64-240 px at a random place on a real background,
      two faces per frame;
  (b) rotated + covered: the same faces turned by up to +-20 degrees and partly covered (a band over 25-35 % of
      the face: the mouth and chin, or one side; the table gives the recall under each);
  (c) photos: `--photos` backgrounds without a face; every box is false.
A face counts as found when at least half of a box lies on its square and the box is at least a third of its side
(FER-2013 crops range from tight to loose, so a detector's box may lie well inside the square; a box around the
face and as much background is not a hit); every other box is false (a second box on one face too). "false per
100 frames" counts the false boxes of all three sets. "FER margin" is the median per-side margin that grows a hit's
box to the face's FER-2013 crop (what predict's `margin=` should be for that detector). Time: the median detect()
call over set (a). `--sweep mtcnn.min_confidence=0.7,0.8,0.9` scores each value from one pass of the networks (the
score cut does not change what they compute).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer_lightning.data.sources import load_splits
from fer_lightning.inference.detect import Box, FaceDetector

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 640, 480
MATCH_OVERLAP, MATCH_SIDE = 0.5, 1 / 3  # a hit: half of the box on the face, a third of its side
# scikit-image's bundled photographs without a person (astronaut and camera show one); licences in their docstrings
PHOTOS = ("brick", "chelsea", "clock", "coffee", "coins", "grass", "gravel", "hubble_deep_field",
          "immunohistochemistry", "moon", "page", "retina", "rocket", "text", "cell")
COVERS = ("mouth and chin", "left side", "right side")  # what set (b) covers of a face (left: of the image)
GOALS = {"recall_a": 0.95, "recall_b": 0.85, "false_per_100": 1.0, "ms": 50.0}

Frame = tuple[np.ndarray, list[Box]]


def public_test_faces(path: Path, n: int, skip: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n validation (PublicTest) faces after the first `skip` as uint8 [n, 48, 48], and their labels, read by the
    package's own loader (any layout it takes; cached in outputs/cache like a training run's)."""
    val = load_splits(path, ROOT / "outputs" / "cache")["val"]
    return val.images[skip : skip + n], val.labels[skip : skip + n]


def face_free_photos() -> list[np.ndarray]:
    """The face-free photographs inside the scikit-image wheel, gray uint8 (loaded from the installed package)."""
    import skimage.data

    photos = [getattr(skimage.data, name)() for name in PHOTOS] + list(skimage.data.stereo_motorcycle()[:2])
    return [p if p.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(p[..., :3]), cv2.COLOR_RGB2GRAY) for p in photos]


def background(rng: np.random.Generator, photos: list[np.ndarray], width: int = WIDTH,
               height: int = HEIGHT) -> np.ndarray:
    """A random width x height crop of a random photo, scaled 1-1.6x past covering the frame, flipped at random."""
    photo = photos[int(rng.integers(len(photos)))]
    scale = max(width / photo.shape[1], height / photo.shape[0]) * rng.uniform(1.0, 1.6)
    size = (math.ceil(photo.shape[1] * scale), math.ceil(photo.shape[0] * scale))
    big = cv2.resize(photo, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    y, x = int(rng.integers(0, big.shape[0] - height + 1)), int(rng.integers(0, big.shape[1] - width + 1))
    crop = big[y : y + height, x : x + width]
    return np.ascontiguousarray(crop[:, ::-1] if rng.random() < 0.5 else crop)


def rotated(face: np.ndarray, side: int, angle: float) -> np.ndarray:
    big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    matrix = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
    return cv2.warpAffine(big, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def occlude(patch: np.ndarray, rng: np.random.Generator) -> str:
    """Cover 25-35 % of the face in place: a band over the mouth and chin, or over one side (a hand, a mask);
    returns which (one of COVERS)."""
    side = patch.shape[0]
    cover = int(side * rng.uniform(0.25, 0.35))
    shade = int(rng.integers(20, 235))
    if rng.random() < 0.5:
        patch[side - cover :, :] = shade
        return COVERS[0]
    if rng.random() < 0.5:
        patch[:, :cover] = shade
        return COVERS[1]
    patch[:, side - cover :] = shade
    return COVERS[2]


def paste(canvas: np.ndarray, face: np.ndarray, box: Box, rng: np.random.Generator, hard: bool) -> str | None:
    """`face` upscaled into `box` of `canvas` (in place); `hard`: turned by up to +-20 degrees and partly covered
    (returns the cover, see `occlude`)."""
    patch = rotated(face, box.w, float(rng.uniform(-20, 20)) if hard else 0.0)
    cover = occlude(patch, rng) if hard else None
    canvas[box.y : box.y + box.h, box.x : box.x + box.w] = patch
    return cover


def pasted_set(faces: np.ndarray, photos: list[np.ndarray], seed: int, hard: bool,
               covers: list[str | None] | None = None) -> list[Frame]:
    """Real backgrounds with two faces each (one per half), with their true boxes; `covers` gets each face's cover
    in order (None: uncovered)."""
    rng = np.random.default_rng(seed)
    frames = []
    for pair in range(0, len(faces) - 1, 2):
        canvas, boxes = background(rng, photos), []
        for half in (0, 1):
            side = int(rng.integers(64, 241))
            box = Box(half * (WIDTH // 2) + int(rng.integers(0, WIDTH // 2 - side + 1)),
                      int(rng.integers(0, HEIGHT - side + 1)), side, side)
            cover = paste(canvas, faces[pair + half], box, rng, hard)
            boxes.append(box)
            if covers is not None:
                covers.append(cover)
        frames.append((canvas, boxes))
    return frames


def photo_set(photos: list[np.ndarray], seed: int, n: int) -> list[Frame]:
    rng = np.random.default_rng(seed)
    return [(background(rng, photos), []) for _ in range(n)]


def on_face(box: Box, face: Box) -> bool:
    """A box finds a pasted face when at least half of it lies on the face's square and it is at least a third
    of the square's side: FER-2013 crops range from tight to loose, so a right box may be well inside the square
    (IoU alone rejects those), while a box around a face and as much background is not a hit."""
    ix = max(0, min(box.x + box.w, face.x + face.w) - max(box.x, face.x))
    iy = max(0, min(box.y + box.h, face.y + face.h) - max(box.y, face.y))
    return ix * iy >= MATCH_OVERLAP * box.w * box.h and max(box.w, box.h) >= MATCH_SIDE * face.w


def match(truth: list[Box], boxes: list[Box]) -> tuple[list[tuple[Box, Box]], list[Box]]:
    """(true box, its hit) pairs, the best-overlapping box on each face, and the boxes left over (false boxes)."""
    unused, hits = list(boxes), []
    for true in truth:
        best = max((b for b in unused if on_face(b, true)), key=true.iou, default=None)
        if best is not None:
            hits.append((true, best))
            unused.remove(best)
    return hits, unused


def score(detector: FaceDetector, frames: list[Frame], covers: list[str | None] | None = None) -> dict[str, Any]:
    """Recall, false boxes, FER margin and median time over `frames`; with `covers` (one per true box, in order),
    also the recall of the faces under each cover."""
    found = false = total = 0
    found_by: list[bool] = []
    margins: list[float] = []  # per hit: the margin per side that grows its box to the FER-2013 crop
    times: list[float] = []
    for image, truth in frames:
        start = time.perf_counter()
        boxes = detector.detect(image)
        times.append(time.perf_counter() - start)
        hits, unused = match(truth, boxes)
        found_by += [any(hit_true is true for hit_true, _ in hits) for true in truth]
        found, false, total = found + len(hits), false + len(unused), total + len(truth)
        margins += [(true.w / max(hit.w, hit.h) - 1) / 2 for true, hit in hits]
    by_cover = {cover: statistics.mean(f for f, c in zip(found_by, covers, strict=True) if c == cover)
                for cover in COVERS} if covers else {}
    return {"recall": found / total if total else float("nan"), "false": false, "frames": len(frames),
            "ms": 1000 * statistics.median(times), "margin": statistics.median(margins) if margins else float("nan"),
            "by_cover": by_cover}


class RememberedCascade:
    """Stands in for MTCNNFaceDetector.mtcnn: the networks' boxes and scores per input, computed once and reused
    by detectors that differ only in the score cut applied after them."""

    def __init__(self, cascade: Any, store: dict[int, Any]) -> None:
        self.cascade, self.store = cascade, store

    def detect_batch(self, grays: Any) -> Any:
        key = hash(b"".join(np.ascontiguousarray(g).tobytes() for g in grays))
        if key not in self.store:
            self.store[key] = self.cascade.detect_batch(grays)
        return self.store[key]


def build(name: str, overrides: list[str]) -> FaceDetector:
    """The detector `predict detector=<name> [overrides]` would use (default settings unless overridden)."""
    from hydra import compose, initialize_config_dir

    from fer_lightning.config import CONFIG_DIR
    from fer_lightning.jobs.predict import build_detector

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return build_detector(compose("predict", overrides=[f"detector={name}", *overrides]))


def settings(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """(detector, overrides) per table row: each detector with --set, and each --sweep value on top (for the
    detector whose settings the swept key belongs to)."""
    key, _, values = (args.sweep or "").partition("=")
    rows = []
    for name in args.detectors.split(","):
        sweep = [[f"{key}={v}"] for v in values.split(",")] if key.startswith(f"{name}.") else [[]]
        rows += [(name, [*(o for o in args.set if o.startswith(f"{name}.")), *extra]) for extra in sweep]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/fer2013/fer2013.csv.gz"))
    parser.add_argument("--faces", type=int, default=200)
    parser.add_argument("--skip", type=int, default=0, help="use the PublicTest faces after the first SKIP")
    parser.add_argument("--photos", type=int, default=100, help="frames of set (c), face-free photos")
    parser.add_argument("--detectors", default="mtcnn,haar,dlib")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a predict setting for the detectors, e.g. --set 'mtcnn.angles=[-20,0,20]'")
    parser.add_argument("--sweep", metavar="KEY=V1,V2,...", help="one row per value, e.g. mtcnn.min_confidence=0.7,0.9")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    faces, _ = public_test_faces(Path(args.data), args.faces, args.skip)
    photos = face_free_photos()
    covers: list[str | None] = []
    sets = {"a": pasted_set(faces, photos, args.seed, hard=False),
            "b": pasted_set(faces, photos, args.seed + 1, hard=True, covers=covers),
            "c": photo_set(photos, args.seed + 2, args.photos)}
    frames = sum(len(s) for s in sets.values())
    print(f"{len(faces)} PublicTest faces (after the first {args.skip}, seed {args.seed}) from {args.data} on "
          f"{len(photos)} scikit-image photos; {frames} frames of 640x480; {os.cpu_count()} CPUs "
          f"({platform.processor() or platform.machine()}), {args.threads} threads")
    print("| detector | (a) recall | (b) recall | false boxes (a) / (b) / (c) | false per 100 frames | FER margin | "
          "ms per 640x480 (median) | goals | (b) recall by cover: mouth and chin / left / right |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|")
    stores: dict[tuple[str, ...], dict[int, Any]] = {}
    first_ms: dict[tuple[str, ...], float] = {}
    rows = settings(args)
    cuts = [float(o.partition("=")[2]) for _, overrides in rows for o in overrides
            if o.startswith("mtcnn.min_confidence=")]
    for name, overrides in rows:
        detector = build(name, overrides)
        # the networks' output does not depend on the score cut: one pass per setting of the other keys, which
        # keeps what the lowest cut keeps (its time is the time shown for every cut)
        others = (name, *(o for o in overrides if not o.startswith("mtcnn.min_confidence=")))
        if hasattr(detector, "mtcnn"):
            detector.mtcnn.min_score = min(cuts, default=detector.mtcnn.min_score)
            detector.mtcnn = RememberedCascade(detector.mtcnn, stores.setdefault(others, {}))
        detector.detect(sets["a"][0][0])  # warm-up (lazy init, first-call allocations)
        r = {key: score(detector, images, covers if key == "b" else None) for key, images in sets.items()}
        ms = first_ms.setdefault(others, r["a"]["ms"])
        per_100 = 100 * sum(x["false"] for x in r.values()) / frames
        met = (r["a"]["recall"] >= GOALS["recall_a"] and r["b"]["recall"] >= GOALS["recall_b"]
               and per_100 <= GOALS["false_per_100"] and ms <= GOALS["ms"])
        by_cover = " / ".join(f"{v:.3f}" for v in r["b"]["by_cover"].values())
        print(f"| {' '.join([name, *overrides])} | {r['a']['recall']:.3f} | {r['b']['recall']:.3f} | "
              f"{r['a']['false']} / {r['b']['false']} / {r['c']['false']} | {per_100:.1f} | {r['a']['margin']:+.3f} "
              f"| {ms:.1f} | {'all met' if met else '-'} | {by_cover} |", flush=True)


if __name__ == "__main__":
    main()
