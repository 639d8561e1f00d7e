"""Progressive resizing (fast.ai, airbench): early epochs train on smaller crops (32 px: about 0.45x the cost of a
48 px batch on the CPU; the CNN's global pool takes any side), the last ones at the evaluation size."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from lightning import Callback, LightningModule, Trainer


class ProgressiveResize(Callback):
    """Train at `sizes[i]` px until the fraction `until_epoch[i]` of max_epochs, then at the next size, after the last
    stage at the profile's image_size. Example: sizes [32, 40], until_epoch [0.4, 0.7]: 32 px to 40 % of the run."""

    def __init__(self, sizes: Sequence[int], until_epoch: Sequence[float]) -> None:
        if len(sizes) != len(until_epoch) or not sizes:
            raise ValueError(f"callbacks.progressive_resize: sizes={list(sizes)} and until_epoch={list(until_epoch)} "
                             "need the same, non-zero length")
        if any(s < 8 for s in sizes):
            raise ValueError(f"callbacks.progressive_resize.sizes={list(sizes)}: expected sides >= 8 px")
        if any(b <= a for a, b in pairwise(until_epoch)) or until_epoch[0] <= 0:
            raise ValueError(f"callbacks.progressive_resize.until_epoch={list(until_epoch)}: expected increasing "
                             "fractions of the run in (0, 1]")
        self.sizes, self.until_epoch = [int(s) for s in sizes], [float(f) for f in until_epoch]

    def size_at(self, epoch: int, max_epochs: int) -> int | None:
        """The training side at `epoch` (None: the profile's image_size)."""
        for size, until in zip(self.sizes, self.until_epoch, strict=True):
            if epoch < round(until * max_epochs):
                return size
        return None

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if (augment := getattr(trainer.datamodule, "augment", None)) is None:
            raise ValueError("callbacks.progressive_resize needs FERDataModule (batched augmentation)")
        augment.train_size = self.size_at(trainer.current_epoch, max(1, trainer.max_epochs or 1))

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if (augment := getattr(trainer.datamodule, "augment", None)) is not None:
            augment.train_size = None
