"""Data layer: knows images and labels, never networks. FERDataModule (and with it Lightning) loads on first use,
so `fer_lightning.inference`, which needs only the augmentation and the class names, imports no Lightning."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fer_lightning.data.augment import AugmentProfile, BatchAugment
from fer_lightning.data.splits import CLASS_NAMES, NUM_CLASSES, DataFormatError, Split

if TYPE_CHECKING:
    from fer_lightning.data.datamodule import FERDataModule

__all__ = ["CLASS_NAMES", "NUM_CLASSES", "AugmentProfile", "BatchAugment", "DataFormatError", "FERDataModule", "Split"]


def __getattr__(name: str) -> Any:
    """`fer_lightning.data.FERDataModule` (also as a Hydra `_target_`) imports the datamodule when first asked for."""
    if name == "FERDataModule":
        return importlib.import_module("fer_lightning.data.datamodule").FERDataModule
    raise AttributeError(f"module 'fer_lightning.data' has no attribute {name!r}")
