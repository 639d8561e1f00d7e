"""The prediction job behind `python -m fer_lightning.predict`: detector and predictor from fer_lightning.inference,
the loop and the tables from fer_lightning.inference.pipeline.

Torch loads here, not in the entry point, so `--help` and a rejected override answer without it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from fer_lightning.config import check_predict_values
from fer_lightning.inference.detect import DETECTORS, FaceDetector, WholeImageDetector
from fer_lightning.inference.pipeline import CAMERA_PREFIX, PredictionRun, camera_index, summarize, write_tables
from fer_lightning.inference.predictor import Predictor
from fer_lightning.release import PRETRAINED, RELEASED_PATH
from fer_lightning.runrecord import environment_info

log = logging.getLogger(__name__)


def build_detector(cfg: DictConfig) -> FaceDetector:
    """The detector named by `detector=`, with its settings from the config block of the same name."""
    name = cfg.detector
    if name == "whole_image":
        return WholeImageDetector()
    if name not in DETECTORS:
        raise ValueError(f"detector={name!r}: expected one of {', '.join([*DETECTORS, 'whole_image'])}")
    return DETECTORS[name](**OmegaConf.to_container(cfg.get(name) or {}, resolve=True))


def predict(cfg: DictConfig, detector: FaceDetector | None = None) -> dict[str, Any]:
    """Run the prediction described by `cfg` (detector: injected, else from cfg) and return the summary."""
    started = time.perf_counter()
    if not cfg.get("input"):
        raise ValueError("input=... is required (python -m fer_lightning.predict "
                         "input=photo.jpg|folder|clip.mp4|camera:0)")
    check_predict_values(cfg)
    if str(cfg.input).startswith(CAMERA_PREFIX):
        camera_index(str(cfg.input))  # a malformed camera:<index> fails before the model loads
    ckpt_path = cfg.get("ckpt_path") or PRETRAINED
    if not cfg.get("ckpt_path"):
        log.info("no ckpt_path given: using the released model (%s)", RELEASED_PATH.name)
    output_dir = Path(cfg.output_dir or HydraConfig.get().runtime.output_dir)
    predictor = Predictor.from_checkpoint(ckpt_path, detector or build_detector(cfg), margin=cfg.margin,
                                          device=cfg.device, batch_size=cfg.batch_size, precision=cfg.precision)
    run = PredictionRun(predictor, output_dir, annotate=cfg.annotate, bars=cfg.bars,
                        video_stride=cfg.video_stride, progress=cfg.progress, max_frames=cfg.get("max_frames"))
    items = run.run(cfg.input)
    meta = {"checkpoint": str(predictor.checkpoint), "input": str(cfg.input), "detector": cfg.detector,
            "margin": predictor.margin, "precision": cfg.precision, "video_stride": cfg.video_stride,
            "max_frames": cfg.get("max_frames"),
            "preprocessing": predictor.contract(),
            "wall_time_s": round(time.perf_counter() - started, 3), "versions": environment_info()["versions"]}
    csv_path, json_path = write_tables(items, output_dir, predictor.class_names, meta)
    summary = summarize(items)
    log.info("%(items)d images/frames: %(faces)d faces, %(no_face)d without a face, %(error)d unreadable", summary)
    log.info("tables: %s, %s; annotated: %s", csv_path, json_path, output_dir / "annotated")
    if summary["items"] == 0:
        raise ValueError(f"input={cfg.input}: no image or video found there (tables written to {output_dir})")
    if summary["error"] == summary["items"]:
        raise ValueError(f"input={cfg.input}: none of the {summary['items']} inputs could be read (reasons in "
                         f"{csv_path})")
    return {**summary, "csv": str(csv_path), "json": str(json_path), "output_dir": str(output_dir)}
