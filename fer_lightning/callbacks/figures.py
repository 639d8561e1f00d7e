"""Confusion-matrix figures for TensorBoard, drawn after each validation and test."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from matplotlib.figure import Figure
from torchmetrics.utilities.plot import plot_confusion_matrix


def confusion_matrix_figure(confmat: Sequence[Sequence[int]], class_names: Sequence[str], title: str = "") -> Figure:
    """Counts and row-normalised (recall) matrices side by side, drawn by torchmetrics."""
    counts = torch.as_tensor(confmat)
    recall = counts / counts.sum(dim=1, keepdim=True).clamp(min=1)
    fig, axes = plt.subplots(1, 2, figsize=(14, 6), constrained_layout=True)
    for ax, values, label in ((axes[0], counts, "counts"), (axes[1], recall, "row-normalised")):
        plot_confusion_matrix(values, ax=ax, labels=list(class_names), cmap="Blues")
        ax.set_title(f"{title} {label}".strip())
    return fig


class ConfusionMatrixFigure(Callback):
    """Logs each val/test epoch's confusion matrix of FERClassifier to every TensorBoard logger."""

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if not loggers or trainer.sanity_checking:
            return
        stage = "test" if trainer.testing else "val"
        report = pl_module.evaluation_report(stage)  # on every DDP rank: the compute syncs them
        if not trainer.is_global_zero:
            return
        tag = f"{pl_module.log_prefix}{stage}"
        fig = confusion_matrix_figure(report["confusion_matrix"], report["class_names"],
                                      f"{tag} epoch {trainer.current_epoch}")
        for logger in loggers:
            logger.experiment.add_figure(f"{tag}/confusion_matrix", fig, global_step=trainer.global_step, close=False)
        plt.close(fig)

    on_test_epoch_end = on_validation_epoch_end
