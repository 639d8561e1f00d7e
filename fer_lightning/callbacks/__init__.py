"""Lightning callbacks: two-stage fine-tuning, confusion-matrix figures, the run record."""

from fer_lightning.callbacks.figures import ConfusionMatrixFigure
from fer_lightning.callbacks.finetuning import FreezeThenFinetune
from fer_lightning.callbacks.record import ConfigInCheckpoint, EpochHistory, RNGStateInCheckpoint

__all__ = ["ConfigInCheckpoint", "ConfusionMatrixFigure", "EpochHistory", "FreezeThenFinetune", "RNGStateInCheckpoint"]
