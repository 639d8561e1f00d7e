"""This package beside the `fer` package (justinshenk/fer, what users install for the same job) on the same photos
and the same video: faces found, false boxes, labels that agree with FER-2013's, time per photo, cold start, fps.

    python benchmarks/bench_vs_fer.py [--fer-python /work/fer-venv/bin/python] [--faces 100] [--skip 400]
        [--video-frames 150] [--threads 2] [--data PATH]

`fer` needs TensorFlow and an old torch, so it runs in its own environment: `--fer-python` is that environment's
interpreter (made with `python -m venv /work/fer-venv && /work/fer-venv/bin/pip install fer`); without it the
table has this package's column and the line "fer: not installed". Both sides get the same frames as BGR arrays
(nothing decoded, nothing written but one temporary PNG for the cold start, deleted after) and the same thread
count. The sets are bench_detect.py's, built at run time from PublicTest faces and scikit-image's face-free photos:
  photos: `--faces` faces two per 640x480 photo, upright, then the same faces turned up to +-20 degrees and partly
          covered, then as many face-free photos;
  video:  `--video-frames` frames of 640x360: two faces (120 and 96 px) crossing one real background in opposite
          directions, at 25 fps.
A face is found by a box as in bench_detect.py; every other box is false. Labels: the top class of each found face
against its FER-2013 label (PublicTest is the validation split this package's model was selected on, so its
agreement is an upper estimate; `fer`'s model was trained on FER-2013 too). Cold start: a new process, from start to
the first photo's result. fer's detectors: its default (OpenCV's Haar cascade) and `mtcnn=True` (facenet-pytorch).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from bench_detect import ROOT, Box, background, face_free_photos, match, paste, pasted_set, photo_set, public_test_faces

from fer_lightning.data.splits import CLASS_NAMES

Found = list[tuple[Box, str]]  # per frame: each box and its top label

OURS_COLD = ("import sys; from fer_lightning.inference import Predictor; "
             "print(len(Predictor.from_pretrained().predict(sys.argv[1])))")
FER_COLD = ("import sys, cv2; from fer.fer import FER; "
            "print(len(FER(mtcnn=sys.argv[2] == 'mtcnn').detect_emotions(cv2.imread(sys.argv[1]))))")
# runs inside fer's environment: every photo, then every video frame, through FER.detect_emotions
FER_WORKER = r"""
import json, sys, time
import numpy as np
import tensorflow as tf
import torch
from fer.fer import FER

threads = int(sys.argv[3])
torch.set_num_threads(threads)
tf.config.threading.set_intra_op_parallelism_threads(threads)
data = np.load(sys.argv[1])
detector = FER(mtcnn=sys.argv[2] == "mtcnn")


def run(frames):
    found, seconds = [], []
    for frame in frames:
        start = time.perf_counter()
        faces = detector.detect_emotions(frame)
        seconds.append(time.perf_counter() - start)
        found.append([[*map(int, f["box"]), max(f["emotions"], key=f["emotions"].get)] for f in faces])
    return found, seconds


run(data["photos"][:2])  # warm-up
photos, photo_s = run(data["photos"])
video, video_s = run(data["video"])
print(json.dumps({"photos": photos, "photo_s": photo_s, "video": video, "video_s": video_s}))
"""


def moving_clip(faces: np.ndarray, photos: list[np.ndarray], n: int, seed: int) -> list[tuple[np.ndarray, list[Box]]]:
    """Two faces crossing one real 640x360 background in opposite directions, with their boxes per frame."""
    rng = np.random.default_rng(seed)
    scene = background(rng, photos, 640, 360)
    frames = []
    for t in np.linspace(0.0, 1.0, n):
        canvas = scene.copy()
        boxes = [Box(int(20 + t * 480), 40, 120, 120), Box(int(540 - t * 480), 220, 96, 96)]
        for face, box in zip(faces, boxes, strict=True):
            paste(canvas, face, box, rng, hard=False)
        frames.append((canvas, boxes))
    return frames


def bgr(frames: list[tuple[np.ndarray, list[Box]]]) -> np.ndarray:
    return np.stack([cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) for image, _ in frames])


def ours(photos: np.ndarray, video: np.ndarray) -> dict[str, Any]:
    from fer_lightning.inference import Predictor

    predictor = Predictor.from_pretrained()
    predictor.predict_batch(list(photos[:2]))  # warm-up

    def run(frames: np.ndarray) -> tuple[list[Found], list[float]]:
        found, seconds = [], []
        for frame in frames:
            start = time.perf_counter()
            faces = predictor.predict(frame)
            seconds.append(time.perf_counter() - start)
            found.append([(face.box, face.label) for face in faces])
        return found, seconds

    found_photos, photo_s = run(photos)
    found_video, video_s = run(video)
    return {"photos": found_photos, "photo_s": photo_s, "video": found_video, "video_s": video_s}


def theirs(python: str, detector: str, photos: np.ndarray, video: np.ndarray, threads: int, env: dict[str, str],
           folder: Path) -> dict[str, Any]:
    np.savez(folder / "frames.npz", photos=photos, video=video)
    done = subprocess.run([python, "-c", FER_WORKER, str(folder / "frames.npz"), detector, str(threads)],
                          capture_output=True, text=True, env=env, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for key in ("photos", "video"):
        result[key] = [[(Box(*row[:4]), row[4]) for row in frame] for frame in result[key]]
    return result


def cold_start(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, env=env, check=True)
    return time.perf_counter() - start


def tally(found: list[Found], truth: list[tuple[list[Box], list[str]]]) -> dict[str, int]:
    faces = hits = false = right = 0
    for boxes, (true_boxes, labels) in zip(found, truth, strict=True):
        label_of = dict(boxes)
        pairs, unused = match(true_boxes, [box for box, _ in boxes])
        faces, hits, false = faces + len(true_boxes), hits + len(pairs), false + len(unused)
        right += sum(label_of[hit] == labels[true_boxes.index(true)] for true, hit in pairs)
    return {"faces": faces, "hits": hits, "false": false, "right": right}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/fer2013/fer2013.csv.gz"))
    parser.add_argument("--fer-python", default="/work/fer-venv/bin/python")
    parser.add_argument("--faces", type=int, default=100)
    parser.add_argument("--skip", type=int, default=400, help="PublicTest faces after the first SKIP (bench_detect "
                                                              "chose the detector settings on the first 200)")
    parser.add_argument("--video-frames", type=int, default=150)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TF_NUM_INTRAOP_THREADS": str(args.threads),
           "TF_NUM_INTEROP_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    faces, labels = public_test_faces(Path(args.data), args.faces + 2, args.skip)
    names = [CLASS_NAMES[i] for i in labels]
    photos = face_free_photos()
    photo_frames = (pasted_set(faces[:-2], photos, args.seed, hard=False)
                    + pasted_set(faces[:-2], photos, args.seed + 1, hard=True)
                    + photo_set(photos, args.seed + 2, args.faces // 2))
    pairs = [names[i : i + 2] for i in range(0, args.faces - 1, 2)]
    photo_truth = [(boxes, pairs[k % len(pairs)] if boxes else []) for k, (_, boxes) in enumerate(photo_frames)]
    clip = moving_clip(faces[-2:], photos, args.video_frames, args.seed + 3)
    video_truth = [(boxes, names[-2:]) for _, boxes in clip]
    photo_bgr, video_bgr = bgr(photo_frames), bgr(clip)
    upright = len(pairs)  # photo_frames: the upright faces, the same turned + covered, the face-free photos

    systems: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "photo.png"
        cv2.imwrite(str(png), photo_bgr[0])
        systems["fer_lightning (MTCNN, default)"] = {
            **ours(photo_bgr, video_bgr), "cold": cold_start([sys.executable, "-c", OURS_COLD, str(png)], env)}
        fer_ok = Path(args.fer_python).is_file() and subprocess.run(
            [args.fer_python, "-c", "import fer.fer"], capture_output=True, env=env).returncode == 0
        if fer_ok:
            for detector, title in (("mtcnn", "fer (mtcnn=True)"), ("haar", "fer (default: Haar)")):
                systems[title] = {**theirs(args.fer_python, detector, photo_bgr, video_bgr, args.threads, env,
                                           Path(tmp)),
                                  "cold": cold_start([args.fer_python, "-c", FER_COLD, str(png), detector], env)}
    rows: dict[str, list[str]] = {}
    for result in systems.values():
        a = tally(result["photos"][:upright], photo_truth[:upright])
        b = tally(result["photos"][upright:], photo_truth[upright:])
        v = tally(result["video"], video_truth)
        hits = a["hits"] + b["hits"]
        for row, value in {
            "photos: faces found, upright": f"{a['hits']}/{a['faces']}",
            "photos: faces found, turned + covered": f"{b['hits']}/{b['faces']}",
            f"photos: false boxes ({len(photo_frames)} photos, {args.faces // 2} without a face)":
                str(a["false"] + b["false"]),
            "photos: labels agreeing with FER-2013 (of faces found)":
                f"{(a['right'] + b['right']) / max(1, hits):.1%}",
            "photos: ms per 640x480 photo, warm (median)": f"{1000 * statistics.median(result['photo_s']):.0f}",
            "cold start: new process to first result (s)": f"{result['cold']:.1f}",
            "video: faces found (face-frames)": f"{v['hits']}/{v['faces']}",
            "video: false boxes": str(v["false"]),
            "video: labels agreeing (of faces found)": f"{v['right'] / max(1, v['hits']):.1%}",
            "video: fps at 640x360": f"{len(result['video_s']) / sum(result['video_s']):.1f}",
        }.items():
            rows.setdefault(row, []).append(value)
    print(f"{args.faces} PublicTest faces after the first {args.skip}; {os.cpu_count()} CPUs, {args.threads} threads")
    print(f"| | {' | '.join(systems)} |")
    print(f"|---|{'---:|' * len(systems)}")
    for row, values in rows.items():
        print(f"| {row} | {' | '.join(values)} |")
    if not fer_ok:
        print("fer: not installed")


if __name__ == "__main__":
    main()
