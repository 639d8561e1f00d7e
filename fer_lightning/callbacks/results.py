"""The results of val and test epochs for whoever ran them: train's run record and evaluate's tables."""

from __future__ import annotations

from typing import Any

import torch
from lightning import Callback, LightningModule, Trainer


class EvaluationResults(Callback):
    """The classification report of the latest val and test epoch and, with `keep_predictions`, each image's
    target and TTA logits on the host: what evaluate's bootstrap, McNemar's test and ensembles need."""

    def __init__(self, keep_predictions: bool = False) -> None:
        self.keep_predictions = keep_predictions
        self.reports: dict[str, dict[str, Any]] = {}
        self.predictions: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # (targets, logits)
        self._batches: list[tuple[torch.Tensor, torch.Tensor]] = []

    def on_validation_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        if self.keep_predictions:  # outputs: the TTA logits of FERClassifier's evaluation step
            self._batches.append((batch[1].cpu(), outputs.float().cpu()))

    on_test_batch_end = on_validation_batch_end

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        batches, self._batches = self._batches, []
        if trainer.sanity_checking:
            return
        stage = "test" if trainer.testing else "val"
        self.reports[stage] = pl_module.evaluation_report(stage)  # every DDP rank: the compute syncs them
        if batches:
            targets, logits = zip(*batches, strict=True)
            self.predictions[stage] = (torch.cat(targets), torch.cat(logits))

    on_test_epoch_end = on_validation_epoch_end
