"""Rebuild docs/images/predict_example.png: `fer_lightning.predict` on a canvas of SYNTHETIC faces.

    python docs/make_predict_example.py --ckpt-path outputs/runs/<date>/<time>_demo/checkpoints/<best>.ckpt

Use a checkpoint trained on the synthetic faces (`make demo`), so the labels mean something on them. Real
FER-2013 images are never used here: they may not be committed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from fer_lightning.data.splits import CLASS_NAMES
from fer_lightning.data.synthetic import generate_faces
from fer_lightning.inference import Box, HaarFaceDetector

ROOT = Path(__file__).resolve().parents[1]
SIDE, SLOT = 170, 240  # face size on the canvas, horizontal distance between faces


def canvas(n_faces: int = 4, seed: int = 3) -> np.ndarray:
    """Faces of different classes, upscaled side by side on a plain background; a face is kept only if the Haar
    cascade then finds exactly the pasted faces (so the picture shows the detector as it is, not a fake)."""
    split, detector = generate_faces(64, seed=seed), HaarFaceDetector()
    out = np.full((420, 25 + SLOT * n_faces - (SLOT - SIDE) + 25, 3), (200, 190, 180), np.uint8)
    boxes: list[Box] = []
    classes: list[str] = []
    for image, label in zip(split.images, split.labels, strict=True):
        if CLASS_NAMES[label] in classes:
            continue
        box = Box(25 + len(boxes) * SLOT, 70, SIDE, SIDE)
        trial = out.copy()
        trial[box.y : box.y + SIDE, box.x : box.x + SIDE] = cv2.resize(image, (SIDE, SIDE),
                                                                      interpolation=cv2.INTER_CUBIC)[..., None]
        found = detector.detect(cv2.cvtColor(trial, cv2.COLOR_BGR2GRAY))
        if len(found) == len(boxes) + 1 and all(max(f.iou(b) for f in found) > 0.5 for b in [*boxes, box]):
            out, boxes, classes = trial, [*boxes, box], [*classes, CLASS_NAMES[label]]
        if len(boxes) == n_faces:
            break
    print("classes on the canvas:", classes)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt-path", type=Path, required=True)
    parser.add_argument("--output", type=Path, default=ROOT / "docs/images/predict_example.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "synthetic_faces.png"
        cv2.imwrite(str(source), canvas())
        subprocess.run([sys.executable, "-m", "fer_lightning.predict", f"ckpt_path={args.ckpt_path}",
                        f"input={source}", f"output_dir={tmp}/run", "progress=false"], cwd=ROOT, check=True)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        annotated = cv2.imread(str(Path(tmp) / "run/annotated" / source.name))
        cv2.imwrite(str(args.output), annotated, [cv2.IMWRITE_PNG_COMPRESSION, 9])  # smallest PNG for the README
    print(f"{args.output}: {args.output.stat().st_size / 1024:.0f} kB")


if __name__ == "__main__":
    main()
