"""The report's learning-rate schedules (section 2.3) as Lightning `lr_scheduler` configs.

Each factory takes the optimizer and the run's length and returns the dict Lightning expects, so a config
only names the schedule and its interval: `epoch` (t counts epochs, the report's formulas) or `step`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LinearLR, ReduceLROnPlateau

INTERVALS = ("epoch", "step")


def _horizon(interval: str, max_epochs: int, steps_per_epoch: int) -> int:
    return max(1, max_epochs if interval == "epoch" else max_epochs * steps_per_epoch)


def _config(scheduler: Any, interval: str, **extra: Any) -> dict[str, Any]:
    return {"scheduler": scheduler, "interval": interval, "frequency": 1, **extra}


@dataclass(frozen=True)
class InverseSqrt:
    """alpha_t = alpha_0 / sqrt(t), t counted from 1 (the first epoch or step runs at alpha_0)."""

    def __call__(self, t: int) -> float:
        return 1.0 / math.sqrt(t + 1)


@dataclass(frozen=True)
class WarmupCosine:
    """Linear warmup from ~0 to alpha_0 over `warmup` units, then cosine decay to 0 at `total`."""

    warmup: int
    total: int

    def __call__(self, t: int) -> float:
        if t < self.warmup:
            return (t + 1) / (self.warmup + 1)
        progress = (t - self.warmup) / max(1, self.total - self.warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def cosine(optimizer: Optimizer, max_epochs: int, steps_per_epoch: int, interval: str = "epoch") -> dict:
    """alpha_t = 0.5 * alpha_0 * (1 + cos(t * pi / T))."""
    total = _horizon(interval, max_epochs, steps_per_epoch)
    return _config(CosineAnnealingLR(optimizer, T_max=total), interval)


def linear(optimizer: Optimizer, max_epochs: int, steps_per_epoch: int, interval: str = "epoch") -> dict:
    """alpha_t = alpha_0 * (1 - t / T)."""
    total = _horizon(interval, max_epochs, steps_per_epoch)
    return _config(LinearLR(optimizer, start_factor=1.0, end_factor=0.0, total_iters=total), interval)


def inverse_sqrt(optimizer: Optimizer, max_epochs: int, steps_per_epoch: int, interval: str = "epoch") -> dict:
    """alpha_t = alpha_0 / sqrt(t)."""
    _horizon(interval, max_epochs, steps_per_epoch)
    return _config(LambdaLR(optimizer, InverseSqrt()), interval)


def warmup_cosine(
    optimizer: Optimizer, max_epochs: int, steps_per_epoch: int, interval: str = "step", warmup_epochs: float = 5
) -> dict:
    """Linear warmup over `warmup_epochs` (converted to steps when interval=step), then cosine to 0."""
    total = _horizon(interval, max_epochs, steps_per_epoch)
    warmup = round(warmup_epochs * (1 if interval == "epoch" else steps_per_epoch))
    return _config(LambdaLR(optimizer, WarmupCosine(warmup=warmup, total=total)), interval)


def plateau(
    optimizer: Optimizer,
    max_epochs: int,
    steps_per_epoch: int,
    monitor: str = "val/acc",
    mode: str = "max",
    factor: float = 0.5,
    patience: int = 5,
    min_lr: float = 0.0,
) -> dict:
    """Halve the LR when the monitored validation metric stops improving (checked once per epoch)."""
    scheduler = ReduceLROnPlateau(optimizer, mode=mode, factor=factor, patience=patience, min_lr=min_lr)
    return _config(scheduler, "epoch", monitor=monitor, strict=True)
