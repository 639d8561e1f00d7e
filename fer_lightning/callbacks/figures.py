"""Confusion-matrix figures for TensorBoard, drawn after each validation and test."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from matplotlib.figure import Figure


def confusion_matrix_figure(confmat: Sequence[Sequence[int]], class_names: Sequence[str], title: str = "") -> Figure:
    """Counts and row-normalised (recall) matrices side by side."""
    counts = np.asarray(confmat, dtype=np.int64)
    normalised = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), constrained_layout=True)
    for ax, values, fmt, label in ((axes[0], counts, "d", "counts"), (axes[1], normalised, ".2f", "row-normalised")):
        ax.imshow(values, cmap="Blues", vmin=0)
        ax.set(xticks=range(len(class_names)), yticks=range(len(class_names)), xlabel="predicted", ylabel="true")
        ax.set_xticklabels(class_names, rotation=45, ha="right")
        ax.set_yticklabels(class_names)
        ax.set_title(f"{title} {label}".strip())
        threshold = values.max() / 2 if values.size else 0
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=8,
                    color="white" if v > threshold else "black")
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
