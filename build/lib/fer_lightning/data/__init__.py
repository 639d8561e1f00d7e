"""Data layer: knows images and labels, never networks."""

from fer_lightning.data.augment import AugmentProfile, BatchAugment
from fer_lightning.data.datamodule import FERDataModule
from fer_lightning.data.splits import CLASS_NAMES, NUM_CLASSES, DataFormatError, Split

__all__ = ["CLASS_NAMES", "NUM_CLASSES", "AugmentProfile", "BatchAugment", "DataFormatError", "FERDataModule", "Split"]
