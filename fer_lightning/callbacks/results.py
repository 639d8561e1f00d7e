"""The results of val and test epochs for whoever ran them: train's run record (metrics.json's val and test
reports) and evaluate's tables (every image's prediction, for the bootstrap and McNemar's test)."""

from __future__ import annotations

from typing import Any

import torch
from lightning import Callback, LightningModule, Trainer


class EvaluationResults(Callback):
    """The classification report (`FERClassifier.evaluation_report`) of the latest val and test epoch and, with
    `keep_predictions`, each image's target and TTA logits of that epoch, on the host: what evaluate's bootstrap,
    McNemar's test and ensembles need."""

    def __init__(self, keep_predictions: bool = False) -> None:
        self.keep_predictions = keep_predictions
        self.reports: dict[str, dict[str, Any]] = {}
        self.predictions: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # (targets, logits)
        self._batches: list[tuple[torch.Tensor, torch.Tensor]] = []

    def _batch_end(self, logits: torch.Tensor, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        if self.keep_predictions:
            self._batches.append((batch[1].cpu(), logits.float().cpu()))

    def _epoch_end(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        batches, self._batches = self._batches, []
        if trainer.sanity_checking:
            return
        self.reports[stage] = pl_module.evaluation_report(stage)  # every DDP rank: the compute syncs them
        if batches:
            targets, logits = zip(*batches, strict=True)
            self.predictions[stage] = (torch.cat(targets), torch.cat(logits))

    def on_validation_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        self._batch_end(outputs, batch)

    def on_test_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        self._batch_end(outputs, batch)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._epoch_end(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._epoch_end(trainer, pl_module, "test")
