"""Plain nn.Modules (no Lightning): the report's CNN and the ResNet18 transfer model."""

from fer_lightning.models.cnn import FERCNN
from fer_lightning.models.resnet import ResNet18Classifier

__all__ = ["FERCNN", "ResNet18Classifier"]
