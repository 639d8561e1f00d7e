"""The report's learning-rate schedules (section 2.3) as Lightning `lr_scheduler` configs, built from the optimizer and
the run's length, so a config names only the schedule and its interval (`epoch`, as in the report, or `step`)."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LinearLR, ReduceLROnPlateau, SequentialLR


def _horizon(interval: str, max_epochs: int, steps_per_epoch: int) -> int:
    return max(1, max_epochs if interval == "epoch" else max_epochs * steps_per_epoch)


def cosine(optimizer: Optimizer, max_epochs: int, steps_per_epoch: int, interval: str = "epoch") -> dict:
    """alpha_t = 0.5 * alpha_0 * (1 + cos(t * pi / T))."""
    total = _horizon(interval, max_epochs, steps_per_epoch)
    return {"scheduler": CosineAnnealingLR(optimizer, T_max=total), "interval": interval}


def linear(optimizer: Optimizer, max_epochs: int, steps_per_epoch: int, interval: str = "epoch") -> dict:
    """alpha_t = alpha_0 * (1 - t / T)."""
    total = _horizon(interval, max_epochs, steps_per_epoch)
    return {"scheduler": LinearLR(optimizer, start_factor=1.0, end_factor=0.0, total_iters=total), "interval": interval}


def inverse_sqrt(optimizer: Optimizer, max_epochs: int, steps_per_epoch: int, interval: str = "epoch") -> dict:
    """alpha_t = alpha_0 / sqrt(t), t counted from 1 (the first epoch or step runs at alpha_0)."""
    return {"scheduler": LambdaLR(optimizer, lambda t: 1 / math.sqrt(t + 1)), "interval": interval}


def warmup_cosine(optimizer: Optimizer, max_epochs: int, steps_per_epoch: int, interval: str = "step",
                  warmup_epochs: float = 5) -> dict:
    """Linear warmup from alpha_0 / (w + 1) to alpha_0 over `warmup_epochs` (w units: steps when interval=step),
    then cosine decay to 0 at the end of the run."""
    total = _horizon(interval, max_epochs, steps_per_epoch)
    warmup = round(warmup_epochs * (1 if interval == "epoch" else steps_per_epoch))
    ramp = LinearLR(optimizer, start_factor=1 / (warmup + 1), total_iters=warmup)
    decay = CosineAnnealingLR(optimizer, T_max=max(1, total - warmup))
    return {"scheduler": SequentialLR(optimizer, [ramp, decay], milestones=[warmup]), "interval": interval}


def plateau(optimizer: Optimizer, max_epochs: int, steps_per_epoch: int, monitor: str = "val/acc", mode: str = "max",
            factor: float = 0.5, patience: int = 5, min_lr: float = 0.0) -> dict:
    """Halve the LR when the monitored validation metric stops improving (checked once per epoch)."""
    scheduler = ReduceLROnPlateau(optimizer, mode=mode, factor=factor, patience=patience, min_lr=min_lr)
    return {"scheduler": scheduler, "interval": "epoch", "monitor": monitor}
