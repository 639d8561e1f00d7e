"""What FERClassifier leaves to others: evaluation reports and predictions (EvaluationResults), final/ metric names
outside fit, class weights from the datamodule in setup, every average from torchmetrics."""

from __future__ import annotations

from functools import partial

import lightning as L
import pytest
import torch

from fer_lightning.callbacks import EvaluationResults
from fer_lightning.data import FERDataModule
from fer_lightning.metrics import classification_report, evaluation_metrics
from fer_lightning.models import FERCNN
from fer_lightning.module import FERClassifier

TINY = {"n_train": 64, "n_val": 40, "n_test": 24, "seed": 0}


def trainer(*callbacks: L.Callback, **kwargs: object) -> L.Trainer:
    return L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, num_sanity_val_steps=0, callbacks=list(callbacks), **kwargs)


def test_results_hold_each_splits_report_and_predictions_named_final_outside_fit() -> None:
    torch.manual_seed(0)
    model = FERClassifier(FERCNN(), channels_last=False)
    results = EvaluationResults(keep_predictions=True)
    run = trainer(results)
    dm = FERDataModule(synthetic=TINY, eval_batch_size=16)
    logged = run.validate(model, datamodule=dm, verbose=False)[0]
    run.test(model, datamodule=dm, verbose=False)
    assert {"final/val/acc", "final/val/macro_f1", "final/val/loss"} <= set(logged)
    for split, n in (("val", 40), ("test", 24)):
        report, (targets, logits) = results.reports[split], results.predictions[split]
        predictions = logits.argmax(dim=1)
        assert report["support"] == n and targets.shape == predictions.shape == (n,) and logits.shape == (n, 7)
        assert report["accuracy"] == pytest.approx(float((targets == predictions).float().mean()))
        assert sum(map(sum, report["confusion_matrix"])) == n
    assert logged["final/val/acc"] == pytest.approx(results.reports["val"]["accuracy"])
    assert model.log_prefix == "final/" and FERClassifier(FERCNN()).log_prefix == ""


def test_weighted_loss_takes_its_class_weights_from_the_datamodule_in_setup() -> None:
    dm = FERDataModule(synthetic=TINY, imbalance="weighted_loss", batch_size=32)
    model = FERClassifier(FERCNN(), optimizer=partial(torch.optim.SGD, lr=0.01), channels_last=False)
    assert model.class_weights is None
    trainer(max_steps=1, limit_val_batches=0).fit(model, datamodule=dm)
    torch.testing.assert_close(model.class_weights, dm.class_weights)
    assert model.hparams.class_weights == pytest.approx(dm.class_weights.tolist())  # saved with checkpoints
    plain = FERClassifier(FERCNN(), optimizer=partial(torch.optim.SGD, lr=0.01), channels_last=False)
    trainer(max_steps=1, limit_val_batches=0).fit(plain, datamodule=FERDataModule(synthetic=TINY, batch_size=32))
    assert plain.class_weights is None and plain.hparams.class_weights is None


def test_averages_are_torchmetrics_macro_f1_leaves_out_an_absent_class() -> None:
    metrics = evaluation_metrics(7)
    targets = torch.tensor([0, 0, 1, 1, 2, 3, 4, 5])  # class 6 neither present nor predicted
    metrics.update(torch.nn.functional.one_hot(torch.tensor([0, 1, 1, 1, 2, 3, 4, 0]), 7).float(), targets)
    report = classification_report(metrics.compute(), [str(i) for i in range(7)])
    per_class_f1 = [report["per_class"][str(i)]["f1"] for i in range(6)]
    assert report["macro_avg"]["f1"] == report["macro_f1"] == pytest.approx(sum(per_class_f1) / 6)
    assert report["weighted_avg"]["f1"] == report["weighted_f1"]
    supports = [report["per_class"][str(i)]["support"] for i in range(6)]
    assert report["weighted_f1"] == pytest.approx(sum(f * s for f, s in zip(per_class_f1, supports, strict=True)) / 8)
