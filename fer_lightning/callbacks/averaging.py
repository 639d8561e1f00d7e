"""EMA of the weights, evaluated wherever the trainer evaluates: validation, the best checkpoint, and test."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import WeightAveraging


def ema_update(decay: float, warmup: bool) -> Callable[[Sequence[torch.Tensor], Sequence[torch.Tensor], int], None]:
    """`multi_avg_fn` for AveragedModel: ema <- d * ema + (1 - d) * current, with d = min(decay, (1+n)/(10+n))
    after n updates when `warmup` (timm's ModelEmaV3 ramp), so early, poor weights fade out quickly."""
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"callbacks.ema.decay={decay}: expected a value in [0, 1]")

    @torch.no_grad()
    def update(ema: Sequence[torch.Tensor], current: Sequence[torch.Tensor], num_averaged: int) -> None:
        n = int(num_averaged)  # AveragedModel reads n_averaged on the host at every update anyway
        d = min(decay, (1.0 + n) / (10.0 + n)) if warmup else decay
        for e, c in zip(ema, current, strict=True):
            if e.is_floating_point():
                e.lerp_(c, 1.0 - d)
            else:  # BatchNorm's num_batches_tracked
                e.copy_(e * d + c * (1.0 - d))

    return update


class EMAWeights(WeightAveraging):
    """Lightning's WeightAveraging with a ramped EMA rule; checkpoints store the average as `state_dict` (the raw
    weights beside it, for resuming). Lightning swaps the average in for validation only: this swaps it for test too,
    and copies the module at fit start or restore, once FERClassifier's `setup` has filled its class weights."""

    def __init__(self, decay: float = 0.999, warmup: bool = True) -> None:
        super().__init__(use_buffers=True, multi_avg_fn=ema_update(decay, warmup))

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._average_model is not None:
            self._swap_models(pl_module)

    on_test_epoch_end = on_test_epoch_start  # the raw weights back

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage == "fit":
            self._average_model = None

    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        self.on_fit_start(trainer, pl_module)  # the copy to load the average into
        super().on_load_checkpoint(trainer, pl_module, checkpoint)

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._average_model is None and trainer.state.fn == "fit":
            super().setup(trainer, pl_module, "fit")
