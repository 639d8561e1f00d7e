"""End to end: the Hydra entry point trains, evaluates and records; sweeps survive failing jobs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata

from fer_lightning.jobs.train import objective, train
from tests.conftest import REPO_ROOT, TINY_DATA

SHORT = ["trainer.max_epochs=2", "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1",
         "trainer.num_sanity_val_steps=0", "callbacks.progress_bar.refresh_rate=0"]


def test_fast_dev_run_cnn(make_cfg: Callable[..., DictConfig]) -> None:
    record = train(make_cfg("debug=fast_dev_run"))
    assert record["status"] == "completed" and record["model"]["parameters"] == 584_807
    assert 0.0 <= record["val"]["accuracy"] <= 1.0 and record["test"] is not None
    assert record["val"]["support"] == 48 and len(record["val"]["confusion_matrix"]) == 7


def test_a_run_without_validation_completes_with_no_val_report(make_cfg: Callable[..., DictConfig]) -> None:
    cfg = make_cfg("trainer.max_epochs=1", "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=0",
                   "trainer.num_sanity_val_steps=0", "callbacks.progress_bar.refresh_rate=0", "test=false",
                   "scheduler=warmup_cosine")
    record = train(cfg)
    assert record["status"] == "completed" and record["val"] is None and record["global_step"] == 2


def test_fast_dev_run_resnet18(make_cfg: Callable[..., DictConfig]) -> None:
    cfg = make_cfg("model=resnet18", "model.net.weights=null", "augment.image_size=32", "debug=fast_dev_run",
                   "callbacks=finetune", "callbacks.finetune.unfreeze_at_epoch=0", "model.tta=[identity,hflip]")
    record = train(cfg)
    assert record["status"] == "completed" and record["model"]["network"] == "ResNet18Classifier"


def test_short_run_writes_record_checkpoints_and_tensorboard(make_cfg: Callable[..., DictConfig]) -> None:
    cfg = make_cfg(*SHORT, "imbalance=weighted_loss", "scheduler=warmup_cosine")
    record = train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    on_disk = json.loads((run_dir / "metrics.json").read_text())
    assert on_disk["val"] == record["val"] and on_disk["epochs"] == 2
    assert [row["epoch"] for row in on_disk["history"]] == [0, 1]
    assert {"val/acc", "val/macro_f1", "lr/net", "time_s"} <= set(on_disk["history"][0])
    assert on_disk["best"]["ckpt_path"].endswith(".ckpt") and (run_dir / "checkpoints" / "last.ckpt").exists()
    assert on_disk["best"]["epoch"] in (0, 1)
    assert on_disk["versions"]["torch"] and "git_commit" in on_disk
    assert objective(record, "val/acc") == record["val"]["accuracy"]
    assert objective(record, "val/macro_f1") == record["val"]["macro_f1"]

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0, "scalars": 0}).Reload()
    tags = events.Tags()
    assert {"val/acc", "val/macro_f1", "val/f1/fear", "val/precision/happy", "train/loss_epoch"} <= set(tags["scalars"])
    # the post-fit evaluation of the chosen checkpoint has its own names: it does not extend the per-epoch curves
    assert {"val/confusion_matrix", "final/val/confusion_matrix", "final/test/confusion_matrix"} <= set(tags["images"])
    assert {"final/val/acc", "final/test/acc", "lr/net"} <= set(tags["scalars"])
    assert len(events.Scalars("val/acc")) == 2  # one per epoch, nothing appended by the final evaluation
    assert not any(tag.startswith("lr-") for tag in tags["scalars"])
    # each history row holds its own epoch's train metrics (Lightning validates before closing the epoch)
    logged = [e.value for e in events.Scalars("train/acc")]
    assert [row.get("train/acc") for row in on_disk["history"]] == pytest.approx(logged)
    hp = events.Scalars("hparams/val_acc")
    assert hp[-1].value == pytest.approx(record["val"]["accuracy"])
    assert "hp_metric" not in tags["scalars"]
    # HPARAMS: the run's own overrides (a group as its option), not the ~45 constants of .hydra/config.yaml
    start = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    settings = hparams_metadata.parse_session_start_info_plugin_data(start).hparams
    assert settings["imbalance"].string_value == "weighted_loss" and settings["trainer.max_epochs"].number_value == 2
    assert "model/net/dropout" not in settings and "callbacks.progress_bar.refresh_rate" not in settings
    assert record["tensorboard"] == str((run_dir / "tensorboard").absolute())


def test_last_checkpoint_is_the_last_epoch_even_when_val_did_not_improve(make_cfg: Callable[..., DictConfig]) -> None:
    # monitor epoch, mode min: epoch 0 stays the best, so only the unmonitored checkpoint can refresh last.ckpt
    cfg = make_cfg(*SHORT, "trainer.max_epochs=3", "logger=csv", "test=false",
                   "callbacks.model_checkpoint.monitor=epoch", "callbacks.model_checkpoint.mode=min")
    record = train(cfg)
    checkpoints = Path(cfg.paths.output_dir) / "checkpoints"
    assert record["best"]["epoch"] == 0 and record["best"]["ckpt_path"].endswith("epoch_000.ckpt")
    last = torch.load(checkpoints / "last.ckpt", map_location="cpu", weights_only=False)
    assert (last["epoch"], last["global_step"]) == (2, record["global_step"])
    assert sorted(p.name for p in checkpoints.iterdir()) == ["epoch_000.ckpt", "last.ckpt"]


@pytest.mark.parametrize(("eval_weights", "epoch", "name"), [("best", 0, "epoch_000.ckpt"), ("last", 2, "last.ckpt")])
def test_eval_weights_picks_the_checkpoint_the_record_reports(make_cfg: Callable[..., DictConfig], eval_weights: str,
                                                              epoch: int, name: str) -> None:
    # as above, epoch 0 stays the monitored best; the record's val report must be that epoch's or the final one's
    cfg = make_cfg(*SHORT, "trainer.max_epochs=3", "logger=csv", "test=false", f"eval_weights={eval_weights}",
                   "callbacks.model_checkpoint.monitor=epoch", "callbacks.model_checkpoint.mode=min",
                   # fp32 everywhere and a moderate lr: at lr 0.05 the AVX2-only CPU (fp32 by fast_precision) trained
                   # the net into one constant prediction, so all three epochs had the same val metrics
                   "trainer.precision=32-true", "optimizer.lr=0.003")
    record = train(cfg)
    assert record["evaluated"] == {"weights": eval_weights, "ckpt_path": str(Path(cfg.paths.output_dir) /
                                                                             "checkpoints" / name),
                                   "tta": ["identity"]}
    keys = ("acc", "macro_f1", "weighted_f1")
    by_epoch = {row["epoch"]: tuple(round(row[f"val/{k}"], 5) for k in keys) for row in record["history"]}
    assert len(set(by_epoch.values())) == 3, by_epoch  # the epochs are distinguishable by their val metrics
    reported = tuple(round(record["val"][k], 5) for k in ("accuracy", "macro_f1", "weighted_f1"))
    assert reported == by_epoch[epoch]


def test_unknown_eval_weights_is_a_config_error(make_cfg: Callable[..., DictConfig]) -> None:
    with pytest.raises(ValueError, match="eval_weights=middle: expected one of best, last"):
        train(make_cfg("debug=fast_dev_run", "eval_weights=middle"))


def run_sweep(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "fer_lightning.train", "-m", *TINY_DATA, *SHORT,
               f"hydra.sweep.dir={tmp_path}", "logger=csv", *overrides]
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_multirun_sweep_writes_one_record_per_job(tmp_path: Path) -> None:
    result = run_sweep(tmp_path, "optimizer=adamw,sgd")
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads((tmp_path / str(i) / "metrics.json").read_text()) for i in range(2)]
    assert [r["status"] for r in records] == ["completed", "completed"]
    assert [r["overrides"][-1] for r in records] == ["optimizer=adamw", "optimizer=sgd"]


@pytest.mark.slow
def test_failing_job_is_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    # a value only Lightning checks, in the job: the schema passes it, the Trainer refuses it
    result = run_sweep(tmp_path, "+trainer.profiler=nosuch,null")
    assert result.returncode == 0, result.stderr[-3000:]
    failed = json.loads((tmp_path / "0" / "metrics.json").read_text())
    assert failed["status"] == "failed" and "`profiler`" in failed["error"]
    assert "Traceback" in (tmp_path / "0" / "failure.txt").read_text()
    assert json.loads((tmp_path / "1" / "metrics.json").read_text())["status"] == "completed"


@pytest.mark.slow
def test_a_failing_single_run_records_its_failure_and_exits_non_zero(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "fer_lightning.train", *TINY_DATA, "+trainer.no_such_argument=1",
               f"hydra.run.dir={tmp_path}"]  # Lightning's own keys are checked by Lightning, in the job
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["status"] == "failed" and "no_such_argument" in record["error"]
