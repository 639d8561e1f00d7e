"""Run an exported model the way a consumer outside this package would: read the sidecar contract, apply it.

Used by export verification, the parity tests and the inference benchmark; it needs numpy plus onnxruntime
(ONNX) or torch (TorchScript), never the training code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

SIDECAR_SUFFIX = ".json"


def sidecar_path(model_path: str | Path) -> Path:
    """model.onnx -> model.onnx.json (one sidecar per file, so an .onnx and a .pt of one stem never collide)."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + SIDECAR_SUFFIX)


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
    """[n_out, n_in] weights of torch.nn.functional.interpolate(mode, align_corners=False, no antialias) along
    one axis: the resize step of the contract as a matrix product."""
    dst, scale = np.arange(n_out), n_in / n_out
    weights = np.zeros((n_out, n_in), np.float32)
    if mode == "nearest":
        weights[dst, np.minimum(np.floor(dst * scale).astype(int), n_in - 1)] = 1.0
        return weights
    src = (dst + 0.5) * scale - 0.5
    if mode == "bilinear":
        src = np.maximum(src, 0.0)
        i0 = np.floor(src).astype(int)
        t = src - i0
        taps = {0: 1.0 - t, 1: t}
    elif mode == "bicubic":  # cubic convolution, A = -0.75, edge pixels repeated (as torch)
        i0 = np.floor(src).astype(int)
        t, a = src - i0, -0.75

        def near(d: np.ndarray) -> np.ndarray:
            return ((a + 2) * d - (a + 3)) * d * d + 1

        def far(d: np.ndarray) -> np.ndarray:
            return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

        taps = {-1: far(t + 1), 0: near(t), 1: near(1 - t), 2: far(2 - t)}
    else:
        raise ValueError(f"interpolation={mode!r}: the contract's resize supports nearest, bilinear, bicubic")
    for offset, w in taps.items():
        np.add.at(weights, (dst, np.clip(i0 + offset, 0, n_in - 1)), w)
    return weights


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class ExportedModel:
    """An exported network plus its contract. `probabilities(faces)` takes what `Predictor.probabilities` takes
    (uint8 48x48 gray faces) and applies the contract's preprocessing and TTA; `input_probabilities(x)` starts
    from the float network input; `logits(x)` is one plain call of the network."""

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
        logits = [self.logits(x[..., ::-1] if view == "hflip" else x) for view in views]
        return softmax(np.mean(logits, axis=0))
