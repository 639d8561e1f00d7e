"""The vocabulary every data source shares: class names, image size, split names, the error type."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

CLASS_NAMES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SIZE = 48
SPLITS: tuple[str, ...] = ("train", "val", "test")
USAGE_TO_SPLIT: dict[str, str] = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


class DataFormatError(ValueError):
    """Bad input data: the message names the file, row or path, and what was expected."""


class Split(NamedTuple):
    """One split held in memory: uint8 images [N, 48, 48] and int64 labels [N] in 0..6."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:  # type: ignore[override]
        return int(self.labels.shape[0])

    @staticmethod
    def empty() -> Split:
        return Split(np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8), np.zeros((0,), np.int64))
