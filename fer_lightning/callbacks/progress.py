"""The training bar: Lightning's TQDMProgressBar without `v_num`.

Lightning shows the logger's version as the bar's first entry and cuts a string version to its last 4 characters,
so a sweep run named `optimizer=fast_sgd,seed=2` reads `v_num=ed=2`. The run's directory is printed when it
starts, so the bar keeps only the numbers (losses, val acc and macro-F1).
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import TQDMProgressBar


class ProgressBar(TQDMProgressBar):
    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics
