"""The prediction job behind `python -m fer_lightning.predict` (detector, predictor and tables from
fer_lightning.inference). A run that fails writes nothing, so it never replaces earlier results in its output_dir."""

from __future__ import annotations

import logging
import os
import time
from logging.handlers import MemoryHandler
from pathlib import Path
from typing import Any

import cv2
import torch
from omegaconf import DictConfig, OmegaConf

from fer_lightning.inference.detect import DETECTORS, FaceDetector, WholeImageDetector
from fer_lightning.inference.pipeline import (
    CAMERA_PREFIX,
    PredictionRun,
    camera_index,
    list_inputs,
    results_log,
    summarize,
    write_tables,
)
from fer_lightning.inference.predictor import Predictor
from fer_lightning.pretrained import PRETRAINED, RELEASED_PATH
from fer_lightning.runrecord import environment_info
from fer_lightning.schema import check

log = logging.getLogger(__name__)

# threads=null: the idle cores, at most this many (20 photos on 2 busy cores: 25-75 s with 1 thread, 104-209 s with 2)
MAX_DEFAULT_THREADS = 4
RUN_KEYS = ("annotate", "bars", "video_stride", "progress", "max_frames", "detect_every", "smooth")  # PredictionRun's


def build_detector(cfg: DictConfig) -> FaceDetector:
    """The detector named by `detector=`, with its settings from the config block of the same name."""
    name = cfg.detector
    if name == "whole_image":
        return WholeImageDetector()
    if name not in DETECTORS:
        raise ValueError(f"detector={name!r}: expected one of {', '.join([*DETECTORS, 'whole_image'])}")
    return DETECTORS[name](**OmegaConf.to_container(cfg.get(name) or {}, resolve=True))


def set_threads(threads: int | None) -> int:
    """torch's and OpenCV's CPU threads: `threads`, else OMP_NUM_THREADS, else the idle cores (load average off)."""
    if threads is None and os.environ.get("OMP_NUM_THREADS"):
        threads = torch.get_num_threads()  # torch has read it already
    elif threads is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        threads = min(MAX_DEFAULT_THREADS, max(1, cores - round(busy)))
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    return threads


def predict(cfg: DictConfig, detector: FaceDetector | None = None) -> dict[str, Any]:
    """Run the prediction described by `cfg` (detector: injected, else from cfg) and return the summary."""
    started = time.perf_counter()
    check(cfg, "predict")
    source = str(cfg.input)
    if source.startswith(CAMERA_PREFIX):
        camera_index(source)  # an index that parses; else a file or a folder holding at least one image or video
    elif not list_inputs(Path(source))[0]:
        raise ValueError(f"input={source}: no image or video found there (nothing was written)")
    output_dir = Path(cfg.output_dir)  # read once: its default holds ${now:...}
    threads = set_threads(cfg.get("threads"))
    records = MemoryHandler(capacity=2**31, flushLevel=logging.CRITICAL + 1)  # for predict.log, once it is written
    for logger in (logging.getLogger(), results_log):
        logger.addHandler(records)
    try:
        if not cfg.get("ckpt_path"):
            log.info("no ckpt_path given: using the released model (%s)", RELEASED_PATH.name)
        predictor = Predictor.from_checkpoint(cfg.get("ckpt_path") or PRETRAINED, detector or build_detector(cfg),
                                              margin=cfg.margin, device=cfg.device, batch_size=cfg.batch_size,
                                              precision=cfg.precision, tta=cfg.get("tta"))
        items = PredictionRun(predictor, output_dir, **{key: cfg.get(key) for key in RUN_KEYS}).run(source)
        summary = summarize(items)
        if summary["items"] == 0:
            raise ValueError(f"input={source}: no image or video found there (nothing was written)")
        if summary["error"] == summary["items"]:
            first = next(item.error for item in items if item.error)
            raise ValueError(f"input={source}: none of the {summary['items']} inputs could be read, e.g. {first} "
                             "(no tables were written)")
        meta = {"checkpoint": str(predictor.checkpoint), "input": source, "detector": cfg.detector,
                "margin": predictor.margin, "precision": cfg.precision, "threads": threads,
                **{key: cfg.get(key) for key in ("video_stride", "detect_every", "smooth", "max_frames")},
                "preprocessing": predictor.contract(), "wall_time_s": round(time.perf_counter() - started, 3),
                "versions": environment_info()["versions"]}
        csv_path, json_path = write_tables(items, output_dir, predictor.class_names, meta)
        log.info("%(items)d images/frames: %(faces)d faces, %(no_face)d without a face, %(error)d unreadable", summary)
        log.info("tables: %s, %s; annotated: %s", csv_path, json_path, output_dir / "annotated")
        handler = logging.FileHandler(output_dir / "predict.log", encoding="utf-8")  # appended: this run's records
        handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
        records.setTarget(handler)
        records.flush()
        handler.close()
    finally:
        for logger in (logging.getLogger(), results_log):
            logger.removeHandler(records)
        records.close()
    return {**summary, "csv": str(csv_path), "json": str(json_path), "output_dir": str(output_dir)}

