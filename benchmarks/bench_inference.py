"""Inference speed of the report's CNN on CPU: one face (latency) and batches of 64 (throughput), with and
without face detection.

    python benchmarks/bench_inference.py [--ckpt-path PATH] [--runs 200] [--threads 2] [--batch 64]
        [--tta identity hflip]

Without --ckpt-path it writes a randomly initialised CNN checkpoint of its own (speed does not depend on the
weights). Backends: PyTorch eager fp32 (NCHW, and channels_last as the Predictor runs it), PyTorch bf16 autocast
(`Predictor(precision="bf16")`), ONNX Runtime (the model `fer_lightning.export` writes, fp32, the checkpoint's TTA
folded in as by default: `--ckpt-path pretrained` times the released identity + hflip + ten-crop model, 12 network
passes per face on every backend).
"classify" = BatchAugment.eval + network + softmax on 48x48 crops; "detect" = OpenCV Haar cascade on a 640x480
image with one face; "end to end" = detect + crop + classify (`Predictor.predict`, or the same with ONNX Runtime).
`--tta` times the PyTorch backends with those views instead of the checkpoint's (ONNX Runtime is then left out:
its export folds the checkpoint's own views). Prints one JSON line per case, then a table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from omegaconf import OmegaConf

from fer_lightning.config import CONFIG_DIR
from fer_lightning.data.synthetic import generate_faces
from fer_lightning.inference import Box, HaarFaceDetector, Predictor, crop_face
from fer_lightning.inference.exported import ExportedModel
from fer_lightning.jobs.export import export_checkpoint
from fer_lightning.models import FERCNN
from fer_lightning.module import FERClassifier


def random_checkpoint(path: Path) -> Path:
    """A checkpoint `load_classifier` accepts: random CNN weights plus the model/augment config of a CNN run."""
    conf = Path(CONFIG_DIR)
    config = {"model": OmegaConf.to_container(OmegaConf.load(conf / "model/cnn.yaml")),
              "augment": OmegaConf.to_container(OmegaConf.load(conf / "augment/gray48.yaml"))}
    model = FERClassifier(FERCNN())
    torch.save({"fer_lightning": {"config": config}, "state_dict": model.state_dict(),
                "hyper_parameters": dict(model.hparams), "epoch": None}, path)
    return path


def timings(fn: Callable[[], object], runs: int, warmup: int = 10) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def latency(fn: Callable[[], object], runs: int) -> dict[str, float]:
    t = timings(fn, runs)
    return {"median_ms": round(1e3 * statistics.median(t), 3), "p90_ms": round(1e3 * float(np.percentile(t, 90)), 3)}


def throughput(fn: Callable[[], object], items: int, runs: int) -> dict[str, float]:
    t = timings(fn, runs, warmup=3)
    return {"items_per_s": round(items / statistics.median(t), 1), "median_ms": round(1e3 * statistics.median(t), 3)}


def canvas_with_face(face: np.ndarray, size: tuple[int, int] = (640, 480), side: int = 168) -> np.ndarray:
    """A BGR noise image with `face` upscaled into its centre."""
    width, height = size
    rng = np.random.default_rng(0)
    canvas = (128 + rng.normal(0, 10, (height, width, 3))).clip(0, 255).astype(np.uint8)
    box = Box((width - side) // 2, (height - side) // 2, side, side)
    canvas[box.y : box.y + side, box.x : box.x + side] = cv2.resize(face, (side, side))[..., None]
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt-path", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=200, help="timed single-image runs (batch runs: runs // 10)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tta", nargs="+", default=None, help="test-time views (default: the checkpoint's)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    workdir = Path(tempfile.mkdtemp(prefix="bench_inference_"))
    ckpt = args.ckpt_path or random_checkpoint(workdir / "random_cnn.ckpt")
    onnx_model = None
    if args.tta is None:
        export_checkpoint(ckpt, "onnx", workdir / "model.onnx")
        onnx_model = ExportedModel(workdir / "model.onnx", threads=args.threads)

    faces = generate_faces(max(args.batch, 16), seed=1).images
    # a face the Haar cascade finds (not every synthetic face is frontal enough for it)
    detector = HaarFaceDetector()
    face = next(f for f in faces if len(detector.detect(canvas_with_face(f)[..., 0])) == 1)
    canvas = canvas_with_face(face)
    one, batch = faces[:1], faces[: args.batch]

    nchw = Predictor.from_checkpoint(ckpt, detector, tta=args.tta)
    nchw.network.net.to(memory_format=torch.contiguous_format)
    nchw.network.channels_last = False
    fp32 = Predictor.from_checkpoint(ckpt, detector, tta=args.tta)  # channels_last weights, as in training
    bf16 = Predictor.from_checkpoint(ckpt, detector, precision="bf16", tta=args.tta)

    def ort_classify(x: np.ndarray) -> np.ndarray:
        assert onnx_model is not None
        return onnx_model.probabilities(x)

    def ort_end_to_end() -> np.ndarray:
        gray = cv2.cvtColor(canvas, cv2.COLOR_BGR2GRAY)
        crops = [crop_face(gray, b) for b in detector.detect(gray)]
        return ort_classify(np.stack(crops)) if crops else np.zeros((0, 7))

    backends: dict[str, Callable[[np.ndarray], object]] = {
        "pytorch fp32 NCHW": nchw.probabilities,
        "pytorch fp32 channels_last (Predictor default)": fp32.probabilities,
        "pytorch bf16 autocast channels_last (precision=bf16)": bf16.probabilities,
        **({"onnxruntime fp32": ort_classify} if onnx_model is not None else {}),
    }
    results = []
    batch_runs = max(5, args.runs // 10)
    for name, fn in backends.items():
        row = {"case": f"classify 1 face, {name}", **latency(lambda fn=fn: fn(one), args.runs)}
        results.append(row)
        row = {"case": f"classify {args.batch} faces, {name}",
               **throughput(lambda fn=fn: fn(batch), args.batch, batch_runs)}
        results.append(row)
    gray = cv2.cvtColor(canvas, cv2.COLOR_BGR2GRAY)
    results.append({"case": "detect (Haar, 640x480, one face)", **latency(lambda: detector.detect(gray),
                                                                         max(20, args.runs // 4))})
    for name, predictor in (("pytorch fp32", fp32), ("pytorch bf16", bf16)):
        results.append({"case": f"end to end 640x480, {name} (Predictor.predict)",
                        **latency(lambda predictor=predictor: predictor.predict(canvas), max(20, args.runs // 4))})
    if onnx_model is not None:
        results.append({"case": "end to end 640x480, onnxruntime", **latency(ort_end_to_end, max(20, args.runs // 4))})
    views = args.tta or fp32.network.tta
    env = {"torch": torch.__version__, "opencv": cv2.__version__, "threads": args.threads, "tta": views,
           "cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
           "load_avg_1m": round(os.getloadavg()[0], 2), "checkpoint": str(args.ckpt_path or "random CNN")}
    for row in results:
        print(json.dumps({**row, **env}))
    print(f"\n| case ({args.threads} threads, views {'+'.join(views)}) | median ms | p90 ms | items/s |\n"
          "|---|---:|---:|---:|")
    for row in results:
        print(f"| {row['case']} | {row['median_ms']} | {row.get('p90_ms', '')} | {row.get('items_per_s', '')} |")
    print(f"\nload average before the run ends: {os.getloadavg()[0]:.2f} (other processes compete for the cores)")
    with contextlib.suppress(OSError):
        for path in workdir.iterdir():
            path.unlink()
        workdir.rmdir()


if __name__ == "__main__":
    main()
