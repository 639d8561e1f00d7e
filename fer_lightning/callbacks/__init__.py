"""Lightning callbacks: fine-tuning, EMA weights, progressive resizing, figures, run record, results, the bar."""

from fer_lightning.callbacks.averaging import EMAWeights
from fer_lightning.callbacks.figures import ConfusionMatrixFigure
from fer_lightning.callbacks.finetuning import FreezeThenFinetune
from fer_lightning.callbacks.progress import ProgressBar
from fer_lightning.callbacks.record import EpochHistory, RunInCheckpoint
from fer_lightning.callbacks.resize import ProgressiveResize
from fer_lightning.callbacks.results import EvaluationResults

__all__ = ["ConfusionMatrixFigure", "EMAWeights", "EpochHistory", "EvaluationResults", "FreezeThenFinetune",
           "ProgressBar", "ProgressiveResize", "RunInCheckpoint"]
