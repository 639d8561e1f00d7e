"""Face-detector benchmark: recall and false boxes on real FER-2013 faces pasted into larger images, and time per
640x480 frame, for every detector `python -m fer_lightning.predict detector=...` offers.

    python benchmarks/bench_detect.py [--data PATH] [--faces 200] [--skip 0] [--seed 0] [--detectors haar,...]
        [--set KEY=VALUE ...] [--threads 2]

Three sets, all 640x480 gray, built at run time from `--faces` PublicTest faces of PATH (default
../shared/data/fer2013/fer2013.csv.gz; any layout `data.path` takes), after the first `--skip`; no image is
written to disk. MTCNN's thresholds were chosen on the first 200 faces with seed 0, so `--skip 200 --seed 10` is
a held-out check:
  (a) pasted: each face upscaled (bicubic) to a random side of 64-240 px at a random place on a smooth random
      background, two faces per canvas;
  (b) hard: the same faces rotated by up to +-20 degrees and partly covered (a band over 25-35 % of the face:
      the mouth and chin, or one side);
  (c) no face: uniform gray, noise, smooth textures, gradients and a drawn emoji (40 images); every box is false.
A face counts as found when a box overlaps its square with IoU >= 0.3 (FER-2013 crops hold forehead and chin, so a
detector's tighter box around the same face is still a hit); other boxes are false boxes. "FER margin" is the
median per-side margin that grows a hit's box to the face's FER-2013 crop (what predict's `margin=` should be for
that detector). Time: the median detect() call over set (a).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from fer_lightning.data.sources import load_splits
from fer_lightning.inference.detect import Box, FaceDetector

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 640, 480
MATCH_IOU = 0.3


def public_test_faces(path: Path, n: int, skip: int = 0) -> np.ndarray:
    """n validation (PublicTest) faces after the first `skip`, as uint8 [n, 48, 48], read by the package's own
    loader (any layout it takes; cached in outputs/cache like a training run's)."""
    return load_splits(path, ROOT / "outputs" / "cache")["val"].images[skip : skip + n]


def background(rng: np.random.Generator) -> np.ndarray:
    """A smooth random texture (blurred noise at two scales) around a random mean brightness."""
    coarse = cv2.resize(rng.normal(0, 40, (12, 16)), (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    fine = cv2.GaussianBlur(rng.normal(0, 25, (HEIGHT, WIDTH)), (0, 0), 3)
    return (rng.integers(70, 190) + coarse + fine).clip(0, 255).astype(np.uint8)


def rotated(face: np.ndarray, side: int, angle: float) -> np.ndarray:
    big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    matrix = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
    return cv2.warpAffine(big, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def occlude(patch: np.ndarray, rng: np.random.Generator) -> None:
    """Cover 25-35 % of the face in place: a band over the mouth and chin, or over one side (a hand, a mask)."""
    side = patch.shape[0]
    cover = int(side * rng.uniform(0.25, 0.35))
    shade = int(rng.integers(20, 235))
    if rng.random() < 0.5:
        patch[side - cover :, :] = shade
    elif rng.random() < 0.5:
        patch[:, :cover] = shade
    else:
        patch[:, side - cover :] = shade


def pasted_set(faces: np.ndarray, seed: int, hard: bool) -> list[tuple[np.ndarray, list[Box]]]:
    """Canvases with two faces each (left and right half), with their true boxes."""
    rng = np.random.default_rng(seed)
    images = []
    for pair in range(0, len(faces) - 1, 2):
        canvas, boxes = background(rng), []
        for half in (0, 1):
            side = int(rng.integers(64, 241))
            x = half * (WIDTH // 2) + int(rng.integers(0, WIDTH // 2 - side + 1))
            y = int(rng.integers(0, HEIGHT - side + 1))
            angle = float(rng.uniform(-20, 20)) if hard else 0.0
            patch = rotated(faces[pair + half], side, angle)
            if hard:
                occlude(patch, rng)
            canvas[y : y + side, x : x + side] = patch
            boxes.append(Box(x, y, side, side))
        images.append((canvas, boxes))
    return images


def emoji(rng: np.random.Generator) -> np.ndarray:
    canvas = np.full((HEIGHT, WIDTH), int(rng.integers(150, 250)), np.uint8)
    r = int(rng.integers(60, 160))
    cx, cy = int(rng.integers(r, WIDTH - r)), int(rng.integers(r, HEIGHT - r))
    cv2.circle(canvas, (cx, cy), r, 200, cv2.FILLED)
    cv2.circle(canvas, (cx, cy), r, 40, 3)
    for dx in (-r // 3, r // 3):
        cv2.ellipse(canvas, (cx + dx, cy - r // 4), (r // 8, r // 5), 0, 0, 360, 30, cv2.FILLED)
    cv2.ellipse(canvas, (cx, cy + r // 6), (r // 2, r // 3), 0, 20, 160, 30, max(2, r // 15))
    return canvas


def no_face_set(seed: int, n: int = 40) -> list[tuple[np.ndarray, list[Box]]]:
    rng = np.random.default_rng(seed)
    makers: list[Callable[[], np.ndarray]] = [
        lambda: np.full((HEIGHT, WIDTH), int(rng.integers(0, 256)), np.uint8),
        lambda: rng.integers(0, 256, (HEIGHT, WIDTH), dtype=np.uint8),
        lambda: background(rng),
        lambda: np.tile(np.linspace(0, 255, WIDTH, dtype=np.float32), (HEIGHT, 1)).astype(np.uint8),
        lambda: emoji(rng),
    ]
    return [(makers[i % len(makers)](), []) for i in range(n)]


def score(detector: FaceDetector, images: list[tuple[np.ndarray, list[Box]]]) -> dict[str, float]:
    found = false = total = 0
    ious: list[float] = []
    margins: list[float] = []  # per hit: the margin per side that grows its box to the FER-2013 crop
    times: list[float] = []
    for image, truth in images:
        start = time.perf_counter()
        boxes = detector.detect(image)
        times.append(time.perf_counter() - start)
        unused = list(boxes)
        for true in truth:
            best = max(unused, key=true.iou, default=None)
            if best is not None and true.iou(best) >= MATCH_IOU:
                found += 1
                ious.append(true.iou(best))
                margins.append((true.w / max(best.w, best.h) - 1) / 2)
                unused.remove(best)
        false += len(unused)
        total += len(truth)
    return {"recall": found / total if total else float("nan"), "false": false, "images": len(images),
            "iou": statistics.fmean(ious) if ious else float("nan"), "ms": 1000 * statistics.median(times),
            "margin": statistics.median(margins) if margins else float("nan")}


def build(name: str, overrides: list[str]) -> FaceDetector:
    """The detector `predict detector=<name> [overrides]` would use (default settings unless overridden)."""
    from hydra import compose, initialize_config_dir

    from fer_lightning.config import CONFIG_DIR
    from fer_lightning.prediction import build_detector

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return build_detector(compose("predict", overrides=[f"detector={name}", *overrides]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/fer2013/fer2013.csv.gz"))
    parser.add_argument("--faces", type=int, default=200)
    parser.add_argument("--skip", type=int, default=0, help="use the PublicTest faces after the first SKIP")
    parser.add_argument("--detectors", default="haar")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a predict setting for the detectors, e.g. --set 'mtcnn.angles=[-20,0,20]'")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass
    faces = public_test_faces(Path(args.data), args.faces, args.skip)
    sets = {"(a) pasted": pasted_set(faces, args.seed, hard=False),
            "(b) rotated + occluded": pasted_set(faces, args.seed + 1, hard=True),
            "(c) no face": no_face_set(args.seed + 2)}
    print(f"{len(faces)} PublicTest faces (after the first {args.skip}, seed {args.seed}) from {args.data}; "
          f"{os.cpu_count()} CPUs "
          f"({platform.processor() or platform.machine()}), {args.threads} threads")
    print("| detector | set | images | recall | false boxes | mean IoU of hits | FER margin of hits | ms per 640x480 "
          "(median) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in args.detectors.split(","):
        detector, label = build(name, args.set), " ".join([name, *args.set])
        detector.detect(sets["(a) pasted"][0][0])  # warm-up (lazy init, first-call allocations)
        for set_name, images in sets.items():
            r = score(detector, images)
            recall = "–" if set_name == "(c) no face" else f"{r['recall']:.3f}"
            iou = "–" if set_name == "(c) no face" else f"{r['iou']:.2f}"
            margin = "–" if set_name == "(c) no face" else f"{r['margin']:+.3f}"
            print(f"| {label} | {set_name} | {r['images']} | {recall} | {r['false']} | {iou} | {margin} | "
                  f"{r['ms']:.1f} |")


if __name__ == "__main__":
    main()
