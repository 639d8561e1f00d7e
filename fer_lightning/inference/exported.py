"""The preprocessing contract: what a 48x48 gray face goes through to become the network's input, written from the
checkpoint's AugmentProfile into prediction tables and export sidecars, and applied here the way a consumer outside
this package would (numpy, OpenCV and onnxruntime or torch): export verification, parity tests, benchmarks."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from fer_lightning.data.augment import AugmentProfile
from fer_lightning.data.splits import IMAGE_SIZE

# OpenCV's resize equals torch.nn.functional.interpolate(align_corners=False) in these modes (to 4e-6 for 48 -> 224)
RESIZE = {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}


def preprocessing_contract(profile: AugmentProfile, class_names: Sequence[str], tta: Sequence[str]) -> dict[str, Any]:
    """Plain-JSON description of the evaluation transform of `profile`, plus the classes and TTA views."""
    size, channels = profile.image_size, profile.channels
    steps = ["x = float32(face) / 255  (face: uint8 [48, 48] grayscale)"]
    if size != IMAGE_SIZE:
        steps.append(f"resize to {size}x{size}, {profile.interpolation}, align_corners=False "
                     "(torch.nn.functional.interpolate), clamp to [0, 1]")
    if channels > 1:
        steps.append(f"repeat the gray channel {channels} times")
    steps.append("x = (x - mean[c]) / std[c]")
    return {
        "face": {"size": [IMAGE_SIZE, IMAGE_SIZE], "dtype": "uint8",
                 "color": "grayscale, ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B)"},
        "input_shape": ["batch", channels, size, size], "layout": "NCHW", "dtype": "float32",
        "image_size": size, "channels": channels,
        "mean": [float(m) for m in profile.mean], "std": [float(s) for s in profile.std],
        "interpolation": profile.interpolation, "steps": steps, "class_names": list(class_names), "tta": list(tta),
        "tta_rule": ("average the logits over the views (hflip = flip the width axis; ten_crop = "
                     "fer_lightning.tta.ten_crops, exported folded only), then softmax"),
    }


def sidecar_path(model_path: str | Path) -> Path:
    """model.onnx -> model.onnx.json (one sidecar per file, so an .onnx and a .pt of one stem never collide)."""
    return Path(f"{model_path}.json")


def preprocess(faces: np.ndarray, contract: dict[str, Any]) -> np.ndarray:
    """uint8 48x48 gray faces [N, 48, 48] -> float32 network input, following the contract's steps."""
    pre = contract["preprocessing"]
    x = faces.astype(np.float32) / np.float32(255.0)
    size = pre["image_size"]
    if size != faces.shape[-1]:
        resized = [cv2.resize(face, (size, size), interpolation=RESIZE[pre["interpolation"]]) for face in x]
        x = np.clip(np.array(resized, np.float32).reshape(-1, size, size), 0, 1)
    x = np.repeat(x.reshape(len(x), 1, size, size), pre["channels"], axis=1)
    mean, std = (np.asarray(pre[key], np.float32).reshape(1, -1, 1, 1) for key in ("mean", "std"))
    return (x - mean) / std


class ExportedModel:
    """An exported network plus its contract: `probabilities(faces)` as `Predictor.probabilities`;
    `input_probabilities(x)` from the float network input; `logits(x)`: one plain call of the network."""

    def __init__(self, model_path: str | Path, threads: int | None = None) -> None:
        self.path = Path(model_path)
        self.contract: dict[str, Any] = json.loads(sidecar_path(self.path).read_text())
        self.format = self.contract["format"]
        if self.format == "onnx":
            import onnxruntime as ort

            options = ort.SessionOptions()
            if threads:
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            self._input = self._session.get_inputs()[0].name
        elif self.format == "torchscript":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated upstream, still works
                self._module = torch.jit.load(str(self.path), map_location="cpu").eval()
        else:
            raise ValueError(f"{self.path}: unknown format {self.format!r} in the sidecar")

    def logits(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.format == "onnx":
            return self._session.run(None, {self._input: x})[0]
        with torch.inference_mode():
            return self._module(torch.from_numpy(x)).float().numpy()

    def probabilities(self, faces: np.ndarray) -> np.ndarray:
        """float32 [N, classes] for uint8 48x48 gray faces [N, 48, 48], as `Predictor.probabilities`."""
        faces = np.asarray(faces)
        if faces.dtype != np.uint8 or faces.ndim != 3:
            raise ValueError(f"expected uint8 faces [N, H, W], got {faces.dtype} {faces.shape}"
                             " (a float network input goes to input_probabilities)")
        return self.input_probabilities(preprocess(faces, self.contract))

    def input_probabilities(self, x: np.ndarray) -> np.ndarray:
        """float32 [N, classes] for the preprocessed network input x [N, C, H, W], with the contract's TTA."""
        views = ["identity"] if self.contract["tta_folded"] else self.contract["preprocessing"]["tta"]
        logits = np.mean([self.logits(x[..., ::-1] if view == "hflip" else x) for view in views], axis=0)
        e = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
