"""Video benchmark: frames per second of `predict` on a video (decode, detect, classify, draw, encode), and how
often a face's label changes, with and without smoothing, on a clip made at run time from real data.

    python benchmarks/bench_video.py [--data PATH] [--seconds 20] [--hold 2] [--threads 2 1]
        [--runs 1/1/0 1/1/0.5 1/4/0.5 3/2/0.5] [--set mtcnn.max_side=480 ...] [--keep-clip clip.mp4]

Each run is video_stride/detect_every/smooth (predict's options of the same names); the first, 1/1/0, is
predict's behaviour before tracking and smoothing existed (detect and classify every frame, no smoothing).

The clip (640x360, 25 fps, MPEG-4 as OpenCV writes it; nothing is committed): a real photograph
(scikit-image's `rocket`, a launch pad without people) with two real FER-2013 PublicTest faces pasted at 120 and
96 px; each face drifts (+-14 px), breathes in scale (+-6 %), tilts (+-4 degrees), gets sensor noise, and is
replaced by the next PublicTest face every `--hold` seconds (the two faces change at different times). The true
label of each face is known in every frame, so the table gives, per setting:
  fps: frames / wall time of PredictionRun.run over the clip (the model already loaded; annotated MP4 written);
  CPU ms per frame: the process's CPU time (all threads) per frame: with one thread, 1000 / it is the fps an
      idle core gives, a number that holds on a busy machine where the wall time does not;
  found: the share of (frame, face) pairs with a box of IoU >= 0.3 on the pasted face;
  right: the share of found faces whose label is the pasted face's label;
  changes/min: label changes per minute, summed over tracks (the truth: `true changes/min`, from the pastes).
Every setting runs on the same clip in the same process, so ratios between rows hold even on a busy machine.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import os
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from omegaconf import OmegaConf

from fer_lightning.config import CONFIG_DIR
from fer_lightning.data.sources import load_splits
from fer_lightning.data.splits import CLASS_NAMES
from fer_lightning.inference import Box, Predictor
from fer_lightning.inference.pipeline import PredictionRun
from fer_lightning.jobs.predict import build_detector

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT, FPS = 640, 360, 25.0
SLOTS = ((190, 170, 120), (470, 190, 96))  # (centre x, centre y, side) of the two faces


def background() -> np.ndarray:
    """scikit-image's `rocket` photograph (bundled with the package), cropped and scaled to 640x360, BGR."""
    from skimage import data

    photo = np.ascontiguousarray(data.rocket()[..., ::-1])
    h, w = photo.shape[:2]
    crop_h = int(w * HEIGHT / WIDTH)
    top = (h - crop_h) // 2
    return cv2.resize(photo[top : top + crop_h], (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)


def make_clip(path: Path, faces: np.ndarray, labels: np.ndarray, seconds: float, hold: float, seed: int
              ) -> list[list[tuple[Box, str]]]:
    """Write the clip (see the module doc) to `path`; returns each frame's pasted (box, true label) pairs."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(faces))
    base = background()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    truth = []
    for frame in range(int(seconds * FPS)):
        t = frame / FPS
        image = base.copy()
        pasted = []
        for slot, (cx, cy, side) in enumerate(SLOTS):
            index = order[(2 * int(t / hold + slot * 0.5) + slot) % len(order)]  # slot 1 changes half a hold later
            s = int(side * (1 + 0.06 * np.sin(2 * np.pi * t / 2.3 + slot)))
            x = int(cx + 14 * np.sin(2 * np.pi * t / 3.1 + slot) - s / 2)
            y = int(cy + 8 * np.sin(2 * np.pi * t / 1.7 + 2 * slot) - s / 2)
            big = cv2.resize(faces[index], (s, s), interpolation=cv2.INTER_CUBIC)
            turn = cv2.getRotationMatrix2D((s / 2, s / 2), 4 * np.sin(2 * np.pi * t / 2.7 + slot), 1.0)
            big = cv2.warpAffine(big, turn, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            image[y : y + s, x : x + s] = big[..., None]
            pasted.append((Box(x, y, s, s), CLASS_NAMES[labels[index]]))
        noise = rng.normal(0, 3, image.shape)
        writer.write(np.clip(image + noise, 0, 255).astype(np.uint8))
        truth.append(pasted)
    writer.release()
    return truth


def score(items: list, truth: list[list[tuple[Box, str]]], seconds: float) -> dict[str, float]:
    """found, right and label changes per minute (summed over tracks) of one run's frames."""
    found = right = 0
    last: dict[int, str] = {}
    changes = 0
    for item in items:
        for face, track in zip(item.faces, item.tracks, strict=True):
            changes += track in last and last[track] != face.label
            last[track] = face.label
        for box, label in truth[item.frame]:
            hits = [f for f in item.faces if f.box.iou(box) >= 0.3]
            found += bool(hits)
            right += bool(hits) and max(hits, key=lambda f: f.box.iou(box)).label == label
    pairs = sum(len(truth[item.frame]) for item in items)
    return {"found": found / pairs, "right": right / max(1, found), "changes": changes / (seconds / 60)}


def true_changes(truth: list[list[tuple[Box, str]]], seconds: float) -> float:
    changes = sum(a[slot][1] != b[slot][1] for a, b in itertools.pairwise(truth) for slot in range(2))
    return changes / (seconds / 60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/fer2013/fer2013.csv.gz"))
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--hold", type=float, default=2.0, help="seconds each pasted face stays")
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    parser.add_argument("--runs", nargs="+", default=["1/1/0", "1/1/0.5", "1/4/0.5", "3/2/0.5"],
                        metavar="STRIDE/EVERY/SMOOTH", help="video_stride/detect_every/smooth of each run")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a predict setting, e.g. --set mtcnn.max_side=480 (default: conf/predict.yaml)")
    parser.add_argument("--keep-clip", type=Path, help="also save the clip here (never commit it)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cfg = OmegaConf.merge(OmegaConf.load(Path(CONFIG_DIR) / "predict.yaml"), OmegaConf.from_dotlist(args.set))
    val = load_splits(args.data, ROOT / "outputs" / "cache")["val"]
    predictor = Predictor.from_pretrained(build_detector(cfg), tta=cfg.get("tta"))
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(args.keep_clip or Path(tmp) / "clip.mp4")
        truth = make_clip(clip, val.images, val.labels, args.seconds, args.hold, args.seed)
        print(f"clip: {len(truth)} frames, {WIDTH}x{HEIGHT} at {FPS:g} fps, 2 PublicTest faces changing every "
              f"{args.hold:g} s: true changes/min {true_changes(truth, args.seconds):.1f}; detector {cfg.detector} "
              f"{' '.join(args.set)}; {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
              f"load average {os.getloadavg()[0]:.1f} at start")
        print("| threads | video_stride | detect_every | smooth (s) | fps | CPU ms per frame | found | right | "
              "label changes/min |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for threads in args.threads:
            torch.set_num_threads(threads)
            cv2.setNumThreads(threads)
            for setting in args.runs:
                stride, every, smooth = setting.split("/")
                run = PredictionRun(predictor, Path(tmp) / "out", progress=False, video_stride=int(stride),
                                    detect_every=int(every), smooth=float(smooth))
                started, cpu = time.perf_counter(), time.process_time()
                with contextlib.redirect_stdout(io.StringIO()):  # the run's own result line
                    items = run.run(clip)
                fps = len(truth) / (time.perf_counter() - started)
                cpu_ms = 1000 * (time.process_time() - cpu) / len(truth)
                r = score(items, truth, args.seconds)
                print(f"| {threads} | {stride} | {every} | {smooth} | {fps:.1f} | {cpu_ms:.1f} | {r['found']:.3f} | "
                      f"{r['right']:.3f} | {r['changes']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
