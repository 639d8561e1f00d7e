"""Test-only Lightning callbacks, injected through Hydra overrides (`+callbacks.x._target_=tests.helpers.X`)."""

from __future__ import annotations

import os
import signal

import lightning as L


class KillAfterEpochs(L.Callback):
    """SIGKILL the process at the start of epoch `epoch` (after the previous epoch's checkpoints were written):
    the hard kill that no Python handler can soften."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)


class CtrlCAtEpoch(L.Callback):
    """Raise KeyboardInterrupt (what Ctrl-C delivers) at the start of epoch `epoch`."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise KeyboardInterrupt
