"""Predictor: face boxes -> 48x48 gray crops -> the checkpoint's own `BatchAugment(profile).eval`, never a copy of
it (inference cannot drift from what evaluation measured) -> class probabilities. No Lightning or Hydra import."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from fer_lightning.data.augment import AugmentProfile, BatchAugment
from fer_lightning.data.splits import IMAGE_SIZE
from fer_lightning.inference.detect import Box, FaceDetector, default_detector
from fer_lightning.inference.exported import preprocessing_contract
from fer_lightning.inference.images import to_gray
from fer_lightning.inference.loading import EvalNetwork, load_network
from fer_lightning.pretrained import PRETRAINED
from fer_lightning.schema import PREDICT

DEFAULT_MARGIN = 0.03  # Haar's boxes: 200 real faces pasted into canvases were 1.06x the detected side (median)
CHANNEL_ORDERS = ("bgr", "rgb")
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class FaceResult:
    """One detected face: its box in the input image and its class probabilities."""

    box: Box
    probabilities: dict[str, float]

    @property
    def label(self) -> str:
        return max(self.probabilities, key=self.probabilities.__getitem__)

    @property
    def score(self) -> float:
        return self.probabilities[self.label]

    def as_dict(self) -> dict[str, Any]:
        return {"box": asdict(self.box), "label": self.label, "score": self.score,
                "probabilities": dict(self.probabilities)}


def crop_face(gray: np.ndarray, box: Box, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """The square around `box` (grown by `margin` per side) as uint8 48x48; parts outside the image repeat
    its border rather than shifting or stretching the face."""
    sq = box.square(margin)
    height, width = gray.shape
    pad = max(0, -sq.x, -sq.y, sq.x + sq.w - width, sq.y + sq.h - height)
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    x, y = sq.x + pad, sq.y + pad
    interpolation = cv2.INTER_AREA if sq.w >= IMAGE_SIZE else cv2.INTER_CUBIC  # at 48 px: an exact copy
    return cv2.resize(gray[y : y + sq.h, x : x + sq.w], (IMAGE_SIZE, IMAGE_SIZE), interpolation=interpolation)


class Predictor:
    """Detect faces, crop them and classify them in batches with a trained network (`load_network` reads one).
    detector: anything with `detect(gray) -> list[Box]`; None: MTCNN. margin, precision, tta: as in conf/predict.yaml
    (bf16: ~3x the throughput on an AVX512-BF16 CPU, 511 of 512 top labels the same; bench_inference.py)."""

    def __init__(self, network: EvalNetwork, profile: AugmentProfile, detector: FaceDetector | None = None,
                 margin: float | None = None, device: str | torch.device = "cpu", batch_size: int = 64,
                 precision: str = "fp32", tta: Sequence[str] | None = None, checkpoint: Path | None = None) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision={precision!r}: expected one of {', '.join(PRECISIONS)}")
        for key, value in (("batch_size", batch_size), ("margin", margin)):
            if problem := PREDICT[key](value):  # the rule predict's config is checked by
                raise ValueError(f"{key}={value!r}: {problem}")
        if tta is not None:
            network.set_tta(tta)
        try:
            self.device = torch.empty(0, device=device).device
        except (RuntimeError, TypeError, AssertionError):  # not a device name, no such backend or device here
            raise ValueError(f"device={device}: torch finds no such device on this machine (expected cpu, cuda, "
                             "cuda:<index> or another torch device type); use device=cpu") from None
        self.network = network.to(self.device).eval()
        self.precision, self.batch_size = precision, batch_size
        self.profile, self.augment = profile, BatchAugment(profile)
        self._detector, self._margin = detector, margin
        self.class_names: tuple[str, ...] = network.class_names
        self.checkpoint = checkpoint  # the file the network came from, if any

    @classmethod
    def from_checkpoint(cls, path: str | Path, detector: FaceDetector | None = None, **kwargs: Any) -> Predictor:
        """A predictor for a .ckpt written by fer_lightning.train (network, weights and profile)."""
        loaded = load_network(path)
        return cls(loaded.network, loaded.profile, detector, checkpoint=loaded.path, **kwargs)

    @classmethod
    def from_pretrained(cls, detector: FaceDetector | None = None, **kwargs: Any) -> Predictor:
        """A predictor for the model released inside the package (its card: `fer_lightning.release.released_card()`)."""
        return cls.from_checkpoint(PRETRAINED, detector, **kwargs)

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:  # built on first use: notebooks classifying crops never need a detector
            self._detector = default_detector()
        return self._detector

    @property
    def margin(self) -> float:
        return self._margin if self._margin is not None else getattr(self.detector, "margin", DEFAULT_MARGIN)

    def contract(self) -> dict[str, Any]:
        return preprocessing_contract(self.profile, self.class_names, self.network.tta)

    @torch.inference_mode()
    def probabilities(self, faces: np.ndarray | torch.Tensor) -> np.ndarray:
        """float32 [N, classes] for uint8 48x48 gray faces [N, 48, 48] (the checkpoint's eval transform + TTA)."""
        faces = torch.as_tensor(faces)
        if faces.dtype != torch.uint8 or faces.dim() != 3 or tuple(faces.shape[1:]) != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"faces: expected uint8 gray crops [N, {IMAGE_SIZE}, {IMAGE_SIZE}] (crop_face makes "
                             f"them), got {str(faces.dtype).removeprefix('torch.')} {list(faces.shape)}")
        out = [torch.zeros((0, len(self.class_names)))]
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")
        for start in range(0, faces.shape[0], self.batch_size):
            x = self.augment.eval(faces[start : start + self.batch_size].to(self.device))
            with autocast:
                logits = self.network(x)
            out.append(logits.float().softmax(dim=-1).cpu())
        return torch.cat(out).numpy()

    def predict(self, image: Any, channel_order: str = "bgr") -> list[FaceResult]:
        """Faces in one image (a path, a PIL image or a uint8 array; arrays in `channel_order`), left to right."""
        return self.predict_batch([image], channel_order)[0]

    def predict_batch(self, images: Sequence[Any], channel_order: str = "bgr") -> list[list[FaceResult]]:
        """Faces of several images, classified together in batches of `batch_size` faces."""
        if channel_order not in CHANNEL_ORDERS:
            raise ValueError(f"channel_order={channel_order!r}: expected one of {', '.join(CHANNEL_ORDERS)}")
        boxes_per_image: list[list[Box]] = []
        crops: list[np.ndarray] = []
        for image in images:
            gray = to_gray(image, channel_order)
            boxes_per_image.append(self.detector.detect(gray))
            crops.extend(crop_face(gray, box, self.margin) for box in boxes_per_image[-1])
        rows = iter(self.probabilities(np.stack(crops) if crops else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)))
        return [[self.face_result(box, next(rows)) for box in boxes] for boxes in boxes_per_image]

    def face_result(self, box: Box, probabilities: np.ndarray) -> FaceResult:
        return FaceResult(box, dict(zip(self.class_names, map(float, probabilities), strict=True)))
