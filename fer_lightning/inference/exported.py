"""Run an exported model the way a consumer outside this package would: read the sidecar contract, apply it.
Used by export verification, the parity tests and the benchmarks; numpy plus onnxruntime or torch, nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def sidecar_path(model_path: str | Path) -> Path:
    """model.onnx -> model.onnx.json (one sidecar per file, so an .onnx and a .pt of one stem never collide)."""
    return Path(f"{model_path}.json")


def preprocess(faces: np.ndarray, contract: dict[str, Any]) -> np.ndarray:
    """uint8 48x48 gray faces [N, 48, 48] -> float32 network input, following the contract's steps (numpy only)."""
    pre = contract["preprocessing"]
    x = faces.astype(np.float32)[:, None] / np.float32(255.0)
    if pre["image_size"] != faces.shape[-1]:
        rows = _resize_matrix(faces.shape[-2], pre["image_size"], pre["interpolation"])
        cols = _resize_matrix(faces.shape[-1], pre["image_size"], pre["interpolation"])
        x = np.clip(rows @ x @ cols.T, 0.0, 1.0).astype(np.float32)
    x = np.repeat(x, pre["channels"], axis=1)
    mean = np.asarray(pre["mean"], np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(pre["std"], np.float32).reshape(1, -1, 1, 1)
    return (x - mean) / std


def _resize_matrix(n_in: int, n_out: int, mode: str) -> np.ndarray:
    """[n_out, n_in] weights of torch.nn.functional.interpolate(mode, align_corners=False) along one axis."""
    dst, scale = np.arange(n_out), n_in / n_out
    weights = np.zeros((n_out, n_in), np.float32)
    if mode == "nearest":
        weights[dst, np.minimum(np.floor(dst * scale).astype(int), n_in - 1)] = 1.0
        return weights
    if mode not in ("bilinear", "bicubic"):
        raise ValueError(f"interpolation={mode!r}: the contract's resize supports nearest, bilinear, bicubic")
    src = (dst + 0.5) * scale - 0.5
    src = np.maximum(src, 0.0) if mode == "bilinear" else src
    i0 = np.floor(src).astype(int)
    t = src - i0
    taps = {0: 1.0 - t, 1: t} if mode == "bilinear" else {k: _cubic(np.abs(t - k)) for k in (-1, 0, 1, 2)}
    for offset, w in taps.items():
        np.add.at(weights, (dst, np.clip(i0 + offset, 0, n_in - 1)), w)  # edge pixels repeat, as in torch
    return weights


def _cubic(d: np.ndarray, a: float = -0.75) -> np.ndarray:
    """torch's cubic convolution kernel (A = -0.75) at distances d in [0, 2]."""
    return np.where(d <= 1, ((a + 2) * d - (a + 3)) * d * d + 1, ((a * d - 5 * a) * d + 8 * a) * d - 4 * a)


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
            import warnings

            import torch

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated upstream, still works
                self._module = torch.jit.load(str(self.path), map_location="cpu").eval()
        else:
            raise ValueError(f"{self.path}: unknown format {self.format!r} in the sidecar")

    def logits(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.format == "onnx":
            return self._session.run(None, {self._input: x})[0]
        import torch

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
