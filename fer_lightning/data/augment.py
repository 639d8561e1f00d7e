"""Batched, per-sample-random augmentation on uint8 tensors, on whatever device the batch is on: one affine
`grid_sample` resizes, crops, scales, rotates and flips the whole batch; jitter, normalisation and erasing are tensor
arithmetic. No PIL and no per-image loop, so 2 CPU cores (or a GPU) feed the network at full speed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentProfile:
    """How images are shaped and normalised for the network, and how training perturbs them. The evaluation part
    (image_size, channels, mean, std, interpolation) travels with checkpoints, so inference reproduces it exactly."""

    name: str = "gray48"
    image_size: int = 48
    channels: int = 1
    mean: Sequence[float] = (0.5,)
    std: Sequence[float] = (0.5,)
    interpolation: str = "bilinear"  # grid_sample / interpolate mode when geometry or size changes
    hflip: float = 0.5  # probability
    translate_px: int = 4  # random crop with zero padding of this many (source) pixels
    rotation: float = 10.0  # degrees, uniform in [-rotation, rotation]
    scale: Sequence[float] = (1.0, 1.0)  # random-resized-crop area fraction range
    ratio: Sequence[float] = (1.0, 1.0)  # random-resized-crop aspect ratio range
    brightness: float = 0.2  # factor uniform in [1 - b, 1 + b]
    contrast: float = 0.2
    erasing_p: float = 0.0
    erasing_scale: Sequence[float] = (0.02, 0.1)
    erasing_ratio: Sequence[float] = (0.3, 3.3)

    def __post_init__(self) -> None:  # the schema checks each field; this, how they fit together
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError(f"augment: mean/std need {self.channels} values (channels={self.channels})")


def _uniform(n: int, low: float, high: float, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, device=like.device, generator=generator)


def _as_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B,H,W] or [B,1,H,W] -> float32 [B,1,H,W] in [0, 1]."""
    return (images.unsqueeze(1) if images.dim() == 3 else images).float().div_(255.0)


class BatchAugment:
    """Applies an AugmentProfile to whole batches: `train(x)` (random, per sample) and `eval(x)` (deterministic)."""

    def __init__(self, profile: AugmentProfile) -> None:
        self.profile = profile
        self.train_size: int | None = None  # smaller training crops early (callbacks.ProgressiveResize)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = (torch.tensor(v, device=x.device).view(-1, 1, 1) for v in (self.profile.mean, self.profile.std))
        return (x.expand(-1, self.profile.channels, -1, -1) - mean) / std

    def eval(self, images: torch.Tensor) -> torch.Tensor:
        """Resize (if the profile's size differs) and normalise: all that evaluation and inference apply."""
        x = _as_float(images)
        size = self.profile.image_size
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode=self.profile.interpolation, align_corners=False).clamp_(0, 1)
        return self._normalise(x)

    def _affine(self, b: int, src_size: int, like: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        """Per-sample 2x3 matrices mapping output coordinates to source coordinates (align_corners=False)."""
        p = self.profile
        log_r = _uniform(b, math.log(p.ratio[0]), math.log(p.ratio[1]), like, g)
        area = _uniform(b, p.scale[0], p.scale[1], like, g)
        w = torch.sqrt(area * torch.exp(log_r)).clamp(max=1.0)  # crop width / height as fractions of the source
        h = torch.sqrt(area / torch.exp(log_r)).clamp(max=1.0)
        cx = _uniform(b, -1.0, 1.0, like, g) * (1.0 - w)
        cy = _uniform(b, -1.0, 1.0, like, g) * (1.0 - h)
        if p.translate_px:
            shift = 2.0 / src_size
            cx = cx + torch.randint(-p.translate_px, p.translate_px + 1, (b,), device=like.device, generator=g) * shift
            cy = cy + torch.randint(-p.translate_px, p.translate_px + 1, (b,), device=like.device, generator=g) * shift
        angle = _uniform(b, -p.rotation, p.rotation, like, g) * (math.pi / 180.0)
        flip = torch.where(torch.rand(b, device=like.device, generator=g) < p.hflip, -1.0, 1.0)
        cos, sin = torch.cos(angle), torch.sin(angle)
        rows = [torch.stack([cos * w * flip, -sin * h, cx], dim=1), torch.stack([sin * w * flip, cos * h, cy], dim=1)]
        return torch.stack(rows, dim=1)

    def _erase(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        """Random erasing (value 0 after normalisation, as torchvision's default), vectorised over the batch."""
        p = self.profile
        b, _, size, _ = x.shape
        area = _uniform(b, p.erasing_scale[0], p.erasing_scale[1], x, g) * size * size
        log_r = _uniform(b, math.log(p.erasing_ratio[0]), math.log(p.erasing_ratio[1]), x, g)
        eh = torch.sqrt(area * torch.exp(log_r)).round().clamp(1, size)
        ew = torch.sqrt(area / torch.exp(log_r)).round().clamp(1, size)
        top = (torch.rand(b, device=x.device, generator=g) * (size - eh + 1)).floor()
        left = (torch.rand(b, device=x.device, generator=g) * (size - ew + 1)).floor()
        apply = torch.rand(b, device=x.device, generator=g) < p.erasing_p
        coords = torch.arange(size, device=x.device, dtype=x.dtype)
        rows = (coords[None, :] >= top[:, None]) & (coords[None, :] < (top + eh)[:, None])
        cols = (coords[None, :] >= left[:, None]) & (coords[None, :] < (left + ew)[:, None])
        mask = (rows[:, :, None] & cols[:, None, :] & apply[:, None, None]).unsqueeze(1)
        return x.masked_fill(mask, 0.0)

    def train(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Random geometry + photometric jitter + normalisation (+ erasing), new parameters for every sample."""
        p = self.profile
        x = _as_float(images)
        b, size = x.shape[0], self.train_size or p.image_size
        grid = F.affine_grid(self._affine(b, x.shape[-1], x, generator), [b, 1, size, size], align_corners=False)
        x = F.grid_sample(x, grid, mode=p.interpolation, padding_mode="zeros", align_corners=False)
        if p.brightness:
            x = x * _uniform(b, 1 - p.brightness, 1 + p.brightness, x, generator).view(-1, 1, 1, 1)
        if p.contrast:
            c = _uniform(b, 1 - p.contrast, 1 + p.contrast, x, generator).view(-1, 1, 1, 1)
            x = c * x + (1 - c) * x.mean(dim=(1, 2, 3), keepdim=True)
        x = self._normalise(x.clamp(0.0, 1.0))
        if p.erasing_p > 0:
            x = self._erase(x, generator)
        return x
