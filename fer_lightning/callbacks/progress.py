"""The training bar: Lightning's TQDMProgressBar without `v_num`, which cuts a sweep run's name to its last 4
characters (`optimizer=fast_sgd,seed=2` reads `v_num=ed=2`); the run's directory is printed when it starts."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import TQDMProgressBar


class ProgressBar(TQDMProgressBar):
    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics
