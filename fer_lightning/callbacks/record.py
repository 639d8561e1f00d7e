"""What a run remembers: per-epoch history (for metrics.json), and its config and RNG states in every checkpoint."""

from __future__ import annotations

import logging
import random
import time
from typing import Any

import numpy as np
import torch
from lightning import Callback, LightningModule, Trainer

from fer_lightning.module import learning_rates

log = logging.getLogger("fer_lightning.train")

TRAIN_KEYS = ("train/loss_epoch", "train/acc")
VAL_KEYS = ("val/loss", "val/acc", "val/macro_f1", "val/weighted_f1")


def summary_line(row: dict[str, Any], max_epochs: int | None) -> str:
    """The line every epoch leaves in the terminal and the log: epoch, train loss, val acc / macro-F1, lr, time."""
    labels = {"train/loss_epoch": "train loss", "val/acc": "val acc", "val/macro_f1": "macro-F1"}
    parts = [f"epoch {row['epoch'] + 1}/{max_epochs or '?'}"]
    parts += [f"{label} {row[key]:.4f}" for key, label in labels.items() if key in row]
    parts += [f"{k} {v:.2e}" for k, v in row.items() if k.startswith("lr/")]
    return " | ".join([*parts, f"{row['time_s']:.0f} s"])


class EpochHistory(Callback):
    """One row per validated epoch: its scalar metrics, learning rates and elapsed training time, kept in
    checkpoints so a resumed run keeps the earlier rows. Lightning validates before it closes the training epoch:
    the row opens at validation end and gets train/loss and train/acc at train-epoch end."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self._elapsed_before = 0.0
        self._fit_start = time.perf_counter()

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._fit_start = time.perf_counter()

    def elapsed(self) -> float:
        return self._elapsed_before + time.perf_counter() - self._fit_start

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        metrics = trainer.callback_metrics
        row: dict[str, Any] = {"epoch": trainer.current_epoch, "step": trainer.global_step, "time_s": self.elapsed()}
        row.update({k: float(metrics[k]) for k in VAL_KEYS if k in metrics})
        row.update(learning_rates(trainer.optimizers))
        self.rows = [r for r in self.rows if r["epoch"] != row["epoch"]] + [row]

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        row = next((r for r in self.rows if r["epoch"] == trainer.current_epoch), None)
        if row is not None:  # epochs without validation (check_val_every_n_epoch > 1) have no row
            metrics = trainer.callback_metrics
            row.update({k: float(metrics[k]) for k in TRAIN_KEYS if k in metrics})
            if trainer.is_global_zero:
                log.info("%s", summary_line(row, trainer.max_epochs))

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "elapsed": self.elapsed()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows = list(state_dict.get("rows", []))
        self._elapsed_before = float(state_dict.get("elapsed", 0.0))


class RunInCheckpoint(Callback):
    """The run's resolved config in every checkpoint (the network and input profile travel with the weights), and the
    Python, NumPy and torch RNG states, restored on resume: the same sampler order, augmentation and dropout."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint["fer_lightning"] = {"config": self.config, "torch": str(torch.__version__)}
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        numpy_state = {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "gauss": float(gauss)}  # tensors and numbers: weights_only loads
        checkpoint["rng_states"] = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state(),
                                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}

    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        states = checkpoint.get("rng_states")
        if not states or trainer.state.fn != "fit":
            return
        random.setstate(states["python"])
        n = states["numpy"]
        np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
        torch.set_rng_state(states["torch"])
        if states["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states["cuda"])
