"""Evaluation metrics (torchmetrics) and the classification-report record built from them.

The record is what `metrics.json`, `evaluate` and `report` share: overall accuracy, macro and weighted F1,
per-class precision/recall/F1/support and the confusion matrix, the layout of the report's Tables 2-3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

PER_CLASS = ("precision", "recall", "f1")


def evaluation_metrics(num_classes: int) -> MetricCollection:
    """Metrics accumulated over an evaluation epoch; all share one set of per-class counts."""
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(num_classes, average="micro"),
            "macro_f1": MulticlassF1Score(num_classes, average="macro"),
            "weighted_f1": MulticlassF1Score(num_classes, average="weighted"),
            "precision": MulticlassPrecision(num_classes, average=None),
            "recall": MulticlassRecall(num_classes, average=None),
            "f1": MulticlassF1Score(num_classes, average=None),
            "confmat": MulticlassConfusionMatrix(num_classes),
        }
    )


def scalar_logs(prefix: str, results: Mapping[str, torch.Tensor], class_names: Sequence[str]) -> dict[str, Any]:
    """Flatten computed results into logger names: `val/acc`, `val/macro_f1`, `val/f1/fear`, ..."""
    logs = {f"{prefix}/{k}": results[k] for k in ("acc", "macro_f1", "weighted_f1")}
    for metric in PER_CLASS:
        for name, value in zip(class_names, results[metric], strict=False):
            logs[f"{prefix}/{metric}/{name}"] = value
    return logs


def classification_report(results: Mapping[str, torch.Tensor], class_names: Sequence[str]) -> dict[str, Any]:
    """Plain-Python record (JSON-ready) of one evaluation: per class, averages, confusion matrix."""
    confmat = results["confmat"].long().cpu()
    support = confmat.sum(dim=1)
    per_class = {
        name: {
            "precision": float(results["precision"][i]),
            "recall": float(results["recall"][i]),
            "f1": float(results["f1"][i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(class_names)
    }
    weighting = {"macro": torch.full_like(support, 1, dtype=torch.float64) / len(class_names),
                 "weighted": support.double() / max(1, int(support.sum()))}
    averages = {
        f"{kind}_avg": {metric: float((results[metric].double().cpu() * w).sum()) for metric in PER_CLASS}
        for kind, w in weighting.items()
    }
    return {
        "accuracy": float(results["acc"]),
        "macro_f1": float(results["macro_f1"]),
        "weighted_f1": float(results["weighted_f1"]),
        "support": int(support.sum()),
        "per_class": per_class,
        **averages,
        "confusion_matrix": confmat.tolist(),
        "class_names": list(class_names),
    }
