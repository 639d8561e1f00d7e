"""Evaluation metrics (torchmetrics) and the classification report built from them, which `metrics.json`, `evaluate`
and `report` share: accuracy, macro and weighted F1, per-class precision/recall/F1/support, confusion matrix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torchmetrics import MetricCollection
from torchmetrics import classification as tmc

PER_CLASS = {"precision": tmc.MulticlassPrecision, "recall": tmc.MulticlassRecall, "f1": tmc.MulticlassF1Score}
AVERAGES = ("macro", "weighted")


def evaluation_metrics(num_classes: int) -> MetricCollection:
    """Metrics accumulated over an evaluation epoch, all on one set of per-class counts; torchmetrics' averages
    (macro leaves out a class absent from both targets and predictions, weighted weights by support)."""
    return MetricCollection({
        "acc": tmc.MulticlassAccuracy(num_classes, average="micro"),
        **{name: metric(num_classes, average=None) for name, metric in PER_CLASS.items()},
        **{f"{kind}_{name}": metric(num_classes, average=kind) for kind in AVERAGES
           for name, metric in PER_CLASS.items()},
        "confmat": tmc.MulticlassConfusionMatrix(num_classes),
    })


def scalar_logs(prefix: str, results: Mapping[str, torch.Tensor], class_names: Sequence[str]) -> dict[str, Any]:
    """Flatten computed results into logger names: `val/acc`, `val/macro_f1`, `val/f1/fear`, ..."""
    per_class = {f"{prefix}/{metric}/{name}": value for metric in PER_CLASS
                 for name, value in zip(class_names, results[metric], strict=False)}
    return {**{f"{prefix}/{k}": results[k] for k in ("acc", "macro_f1", "weighted_f1")}, **per_class}


def classification_report(results: Mapping[str, torch.Tensor], class_names: Sequence[str]) -> dict[str, Any]:
    """Plain-Python record (JSON-ready) of one evaluation: per class, averages, confusion matrix."""
    confmat = results["confmat"].long().cpu()
    support = confmat.sum(dim=1)
    per_class = {name: {**{metric: float(results[metric][i]) for metric in PER_CLASS}, "support": int(support[i])}
                 for i, name in enumerate(class_names)}
    averages = {f"{kind}_avg": {name: float(results[f"{kind}_{name}"]) for name in PER_CLASS} for kind in AVERAGES}
    return {"accuracy": float(results["acc"]), "macro_f1": float(results["macro_f1"]),
            "weighted_f1": float(results["weighted_f1"]), "support": int(support.sum()), "per_class": per_class,
            **averages, "confusion_matrix": confmat.tolist(), "class_names": list(class_names)}


def report_of(probabilities: torch.Tensor, targets: torch.Tensor, class_names: Sequence[str]) -> dict[str, Any]:
    """The classification report of predictions made outside a LightningModule (an ensemble's mean probabilities),
    computed by the same metrics as a module's evaluation epoch."""
    metrics = evaluation_metrics(len(class_names))
    metrics.update(probabilities, targets)
    return classification_report(metrics.compute(), class_names)
