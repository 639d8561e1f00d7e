"""Two-stage transfer learning: head only for the first K epochs, then the whole network."""

from __future__ import annotations

from lightning import LightningModule
from lightning.pytorch.callbacks import BaseFinetuning
from torch.optim import Optimizer


class FreezeThenFinetune(BaseFinetuning):
    """Freeze `net.backbone` until epoch `unfreeze_at_epoch`, then make it trainable. Unlike BackboneFinetuning, no
    parameter group is added then: FERClassifier makes the backbone's up front, so every scheduler steps it
    (ReduceLROnPlateau ignores later groups) and a resumed run rebuilds the same optimizer."""

    def __init__(self, unfreeze_at_epoch: int = 5, train_bn: bool = False) -> None:
        super().__init__()
        self.unfreeze_at_epoch = unfreeze_at_epoch
        self.train_bn = train_bn

    def freeze_before_training(self, pl_module: LightningModule) -> None:
        if self.unfreeze_at_epoch > 0:  # config.check_config: callbacks.finetune needs a network with a backbone
            self.freeze(pl_module.net.backbone, train_bn=self.train_bn)

    def finetune_function(self, pl_module: LightningModule, epoch: int, optimizer: Optimizer) -> None:
        if epoch >= self.unfreeze_at_epoch:
            self.make_trainable(pl_module.net.backbone)
