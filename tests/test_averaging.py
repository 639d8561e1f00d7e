"""EMA weights: the update rule, and one model behind val, test and the saved checkpoint."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from torch.optim.swa_utils import AveragedModel

from fer_lightning.callbacks import EMAWeights, EvaluationResults
from fer_lightning.callbacks.averaging import ema_update
from fer_lightning.checkpoint import load_classifier
from fer_lightning.config import CONFIG_DIR
from fer_lightning.data import FERDataModule
from fer_lightning.jobs.evaluate import evaluate
from fer_lightning.jobs.train import train
from fer_lightning.models import FERCNN
from fer_lightning.module import FERClassifier
from tests.conftest import ONE_EPOCH, TINY_DATA, compose_config


@pytest.mark.parametrize("warmup", [False, True])
def test_ema_rule_with_and_without_warmup(warmup: bool) -> None:
    param = torch.nn.Parameter(torch.zeros(3))
    model = torch.nn.ParameterList([param])
    average = AveragedModel(model, multi_avg_fn=ema_update(0.9, warmup))
    expected = torch.zeros(3)
    for step in range(1, 6):
        with torch.no_grad():
            param.fill_(float(step))
        n = int(average.n_averaged)
        decay = min(0.9, (1 + n) / (10 + n)) if warmup else 0.9
        expected = param.detach().clone() if n == 0 else decay * expected + (1 - decay) * param.detach()
        average.update_parameters(model)
        torch.testing.assert_close(average.module[0].detach(), expected)
    with pytest.raises(ValueError, match="callbacks.ema.decay=1.5"):
        ema_update(1.5, True)


def test_val_test_and_checkpoint_are_the_same_averaged_model(tmp_path: Path) -> None:
    L.seed_everything(0)
    dm = FERDataModule(synthetic={"n_train": 128, "n_val": 64, "n_test": 8, "seed": 0}, batch_size=32,
                       eval_batch_size=64)
    dm.setup("fit")
    dm.datasets["test"] = dm.datasets["val"]  # test on the val images: both reports must then agree exactly
    model = FERClassifier(FERCNN(), optimizer=partial(torch.optim.SGD, lr=0.05, momentum=0.9), channels_last=False)
    checkpoint = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, monitor="val/acc", mode="max")
    results = EvaluationResults()
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, precision="32-true",
                        callbacks=[EMAWeights(decay=0.9), checkpoint, results], default_root_dir=tmp_path)
    trainer.fit(model, datamodule=dm)
    val = trainer.validate(model, datamodule=dm, ckpt_path="best", verbose=False)[0]
    test = trainer.test(model, datamodule=dm, ckpt_path="best", verbose=False)[0]
    assert test["final/test/loss"] == pytest.approx(val["final/val/loss"], rel=1e-6)  # outside fit: final/
    assert results.reports["test"]["confusion_matrix"] == results.reports["val"]["confusion_matrix"]

    saved = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=False)
    averaged, raw = saved["state_dict"], saved["current_model_state"]
    assert not torch.equal(averaged["net.classifier.weight"], raw["net.classifier.weight"])


@pytest.mark.parametrize("split", ["val", "test"])
def test_evaluate_reproduces_an_ema_runs_record(split: str, tmp_path: Path) -> None:
    """The checkpoint's state_dict is the EMA model, so evaluate (a fresh process's view) matches the record."""
    cfg = compose_config([*TINY_DATA, *ONE_EPOCH, "callbacks=ema", "callbacks.progress_bar.refresh_rate=0",
                          "test=true"], tmp_path / "run")
    record = train(cfg)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        eval_cfg = compose("evaluate", overrides=[f"ckpt_path={record['best']['ckpt_path']}", f"split={split}"])
    GlobalHydra.instance().clear()
    result = evaluate(eval_cfg, tmp_path / "eval")
    assert result["report"]["confusion_matrix"] == record[split]["confusion_matrix"]
    raw = load_classifier(record["best"]["ckpt_path"], raw_weights=True).model.net.classifier.weight
    assert not torch.equal(raw, load_classifier(record["best"]["ckpt_path"]).model.net.classifier.weight)
    assert load_classifier(record["best"]["ckpt_path"]).model.hparams.tta == ["identity", "hflip"]


def test_a_resumed_ema_run_with_class_weights_ends_as_the_uninterrupted_one(tmp_path: Path) -> None:
    """The average is copied after FERClassifier.setup has filled its class weights, also when fit restores it."""
    common = [*TINY_DATA, *ONE_EPOCH, "callbacks=ema", "callbacks.progress_bar.refresh_rate=0",
              "imbalance=weighted_loss", "deterministic=true"]
    whole = train(compose_config([*common, "trainer.max_epochs=2"], tmp_path / "whole"))
    train(compose_config(common, tmp_path / "half"))
    resumed = train(compose_config([*common, "trainer.max_epochs=2", "force=true",
                                    f"ckpt_path={tmp_path / 'half' / 'checkpoints' / 'last.ckpt'}"], tmp_path / "half"))
    GlobalHydra.instance().clear()
    assert resumed["resumed_from"] and resumed["epochs"] == whole["epochs"] == 2
    assert resumed["val"] == whole["val"] and resumed["best"]["epoch"] == whole["best"]["epoch"]
    weights = load_classifier(resumed["best"]["ckpt_path"]).model.class_weights
    assert weights is not None and torch.equal(weights, load_classifier(whole["best"]["ckpt_path"]).model.class_weights)
