"""Resume after SIGKILL, atomic/truncated checkpoints, NaN losses, reproducibility, skip_completed, config checks."""

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

from fer_lightning.checkpoint import AtomicCheckpointIO, CheckpointError, find_resume_checkpoint
from fer_lightning.config import ConfigError
from fer_lightning.jobs.train import train
from fer_lightning.module import NonFiniteLossError
from tests.conftest import REPO_ROOT, TINY_DATA

QUICK = ["+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1", "trainer.num_sanity_val_steps=0",
         "callbacks.progress_bar.refresh_rate=0", "logger=csv", "deterministic=true"]


def cli(*args: str, multirun: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "fer_lightning.train", *(["-m"] if multirun else []), *TINY_DATA, *QUICK, *args]
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


def evaluation(record: dict) -> tuple:
    return record["val"], record["test"], [(r["epoch"], r["val/acc"], r["val/loss"]) for r in record["history"]]


def test_same_seed_same_metrics(make_cfg: Callable[..., DictConfig]) -> None:
    first = train(make_cfg(*QUICK, "trainer.max_epochs=2", "imbalance=sampler"))
    # force=true: the same run directory again (a completed record is otherwise never overwritten)
    second = train(make_cfg(*QUICK, "trainer.max_epochs=2", "imbalance=sampler", "force=true"))
    assert evaluation(first) == evaluation(second)
    other = train(make_cfg(*QUICK, "trainer.max_epochs=2", "imbalance=sampler", "seed=7", "force=true"))
    assert evaluation(other) != evaluation(first)


@pytest.mark.slow
def test_sigkilled_run_resumes_to_identical_metrics(tmp_path: Path) -> None:
    # plateau: the scheduler whose state (best score, bad epochs) must survive the restart
    common = ["trainer.max_epochs=3", "scheduler=plateau", "imbalance=sampler"]
    whole = cli(*common, f"hydra.run.dir={tmp_path / 'whole'}")
    assert whole.returncode == 0, whole.stderr[-2000:]
    killed = cli(*common, f"hydra.run.dir={tmp_path / 'killed'}",
                 "+callbacks.killer._target_=tests.helpers.KillAfterEpochs", "+callbacks.killer.epoch=2")
    assert killed.returncode == -9
    interrupted = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    assert interrupted["status"] == "running"  # what a report shows for a job killed mid-way
    resumed = cli(*common, f"ckpt_path={tmp_path / 'killed'}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    b = json.loads((tmp_path / "killed" / "metrics.json").read_text())  # same run directory
    assert b["resumed_from"].endswith("last.ckpt") and b["epochs"] == 3
    assert evaluation(a) == evaluation(b)
    assert len(list((tmp_path / "killed" / "csv").glob("metrics*.csv"))) >= 1


def fake_checkpoint(path: Path, epoch: int) -> None:
    AtomicCheckpointIO().save_checkpoint({"epoch": epoch, "state_dict": {}, "fer_lightning": {"config": {}}}, path)


def test_truncated_checkpoint_is_reported_and_the_previous_one_used(tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "run" / "checkpoints"
    fake_checkpoint(folder / "epoch_003.ckpt", 3)
    fake_checkpoint(folder / "last.ckpt", 5)
    path, saved = find_resume_checkpoint(tmp_path / "run")
    assert path == folder / "last.ckpt" and saved["epoch"] == 5  # read once: its contents come with it
    data = (folder / "last.ckpt").read_bytes()
    (folder / "last.ckpt").write_bytes(data[: len(data) // 2])
    assert find_resume_checkpoint(tmp_path / "run")[0] == folder / "epoch_003.ckpt"
    assert "last.ckpt: cannot read checkpoint" in caplog.text and "truncated" in caplog.text
    (folder / "epoch_003.ckpt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="no readable checkpoint"):
        find_resume_checkpoint(tmp_path / "run")
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []


def test_a_scheduler_state_the_scheduler_cannot_load_is_refused_in_one_line(make_cfg: Callable[..., DictConfig]
                                                                             ) -> None:
    """warmup_cosine was a LambdaLR; torch's SequentialLR cannot load that state (a bare KeyError in Lightning)."""
    from omegaconf import OmegaConf

    cfg = make_cfg("scheduler=warmup_cosine")
    ckpt = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    lambda_lr = {"base_lrs": [0.002], "last_epoch": 40, "_step_count": 41, "_get_lr_called_within_step": False,
                 "_last_lr": [0.0019], "lr_lambdas": [None]}
    config = OmegaConf.to_container(cfg, resolve=True)
    AtomicCheckpointIO().save_checkpoint({"epoch": 3, "state_dict": {}, "fer_lightning": {"config": config},
                                          "lr_schedulers": [lambda_lr]}, ckpt)
    with pytest.raises(CheckpointError, match=rf"^ckpt_path={ckpt}: .*SequentialLR.*start a fresh run") as error:
        train(make_cfg("scheduler=warmup_cosine", f"ckpt_path={ckpt}"))
    assert "\n" not in str(error.value) and not (ckpt.parent.parent / "metrics.json").exists()


def test_direct_calls_check_the_resume_target_as_the_cli_does(make_cfg: Callable[..., DictConfig],
                                                              tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such checkpoint file or run directory"):
        train(make_cfg(f"ckpt_path={tmp_path / 'typo'}"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no checkpoints/.*ckpt in this directory"):
        train(make_cfg(f"ckpt_path={tmp_path / 'empty'}"))


def test_atomic_save_leaves_the_old_file_when_writing_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "last.ckpt"
    fake_checkpoint(path, 1)

    def broken_save(obj: object, handle: object) -> None:
        handle.write(b"partial")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        AtomicCheckpointIO().save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_nan_loss_stops_the_run_with_a_clear_message(make_cfg: Callable[..., DictConfig]) -> None:
    from fer_lightning.cli import expected_failure

    with pytest.raises(NonFiniteLossError, match=r"NaN or infinite .* lower optimizer.lr") as error:
        train(make_cfg(*QUICK, "trainer.max_epochs=2", "optimizer=sgd", "optimizer.lr=1e30",
                       "trainer.log_every_n_steps=1"))
    assert expected_failure(error.value) is error.value  # one line and exit 2 from the CLI, not a traceback


@pytest.mark.slow
def test_sweep_skips_completed_jobs_and_records_nan_failures(tmp_path: Path) -> None:
    first = cli(f"hydra.sweep.dir={tmp_path}", "trainer.max_epochs=1", "optimizer=sgd",
                "optimizer.lr=0.01,1e30", "trainer.log_every_n_steps=1", multirun=True)
    assert first.returncode == 0, first.stderr[-2000:]
    ok, bad = (json.loads((tmp_path / str(i) / "metrics.json").read_text()) for i in (0, 1))
    assert ok["status"] == "completed"
    assert bad["status"] == "failed" and "NonFiniteLossError" in bad["error"]
    stamp = (tmp_path / "0" / "metrics.json").stat().st_mtime_ns
    again = cli(f"hydra.sweep.dir={tmp_path}", "trainer.max_epochs=1", "optimizer=sgd",
                "optimizer.lr=0.01,1e30", "trainer.log_every_n_steps=1", "skip_completed=true", multirun=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (tmp_path / "0" / "metrics.json").stat().st_mtime_ns == stamp  # not re-run
    assert "already finished" in again.stderr + again.stdout


@pytest.mark.parametrize(("overrides", "message"), [
    (["imbalance=sampler", "+model.class_weights=[1,1,1,1,1,1,1]"],
     "model.class_weights is set with imbalance=sampler"),
    (["model=resnet18", "model.net.weights=null", "augment.image_size=16"], "augment.image_size=16 is smaller"),
    (["model=resnet18", "augment=gray48"], "augment.channels=1 but ResNet18Classifier takes 3"),
    (["model=resnet18", "callbacks=finetune", "callbacks.finetune.unfreeze_at_epoch=9", "trainer.max_epochs=5"],
     "callbacks.finetune.unfreeze_at_epoch=9 must be < trainer.max_epochs=5"),
    (["callbacks=finetune"], "callbacks.finetune needs a network with a backbone"),
    (["optimized_metric=val/loss"], "optimized_metric=val/loss: expected one of val/acc, val/macro_f1"),
    (["model.tta=[identity,rot90]"], "model.tta=['identity', 'rot90']: expected"),
    (["imbalance.strategy=both"], "imbalance.strategy=both: expected one of none, sampler, weighted_loss"),
])
def test_impossible_combinations_fail_before_loading_data(make_cfg: Callable[..., DictConfig],
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          overrides: list[str], message: str) -> None:
    from fer_lightning.data.datamodule import FERDataModule

    def no_loading(self: object) -> None:
        raise AssertionError("data was loaded before the config was checked")

    monkeypatch.setattr(FERDataModule, "load_splits", no_loading)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")) as error:
        train(make_cfg(*overrides))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(("args", "message"), [
    (["optimizer=adamx"], "optimizer=adamx: unknown option (did you mean adam or adamw?); expected one of adam, "
                          "adamw, fast_adam, fast_adamw, fast_muon, fast_sgd, finetune_adamw, sgd"),
    (["optimizer=adamw,sgdd", "seed=1,2"], "optimizer=sgdd: unknown option (did you mean sgd?); expected one of "
                                           "adam, adamw, fast_adam, fast_adamw, fast_muon, fast_sgd, finetune_adamw, "
                                           "sgd"),
    (["optimizer=rmsprop"], "optimizer=rmsprop: unknown option; expected one of adam, adamw, fast_adam, fast_adamw, "
                            "fast_muon, fast_sgd, finetune_adamw, sgd"),
    (["optimizer.lrr=0.1"], "optimizer.lrr: no key 'lrr' in optimizer; did you mean optimizer.lr? (keys there: "
                            "_target_, _partial_, lr"),
    (["experiment=seed_cnn", "data.pathh=x"], "data.pathh: no key 'pathh' in data; did you mean data.path?"),
    (["model=resnet18", "model.net.weight=null"],
     "model.net.weight: no key 'weight' in model.net; did you mean model.net.weights?"),
    (["trainer.new_thing=1"], "trainer.new_thing: no key 'new_thing' in trainer; expected one of "),
])
def test_bad_overrides_get_one_line_naming_key_and_allowed_values(args: list[str], message: str) -> None:
    from fer_lightning.cli import check_overrides

    problem = check_overrides(args)
    assert problem is not None and problem.startswith(message) and "\n" not in problem
    if "no key" in problem:  # +key= is advised only when no existing key is close (a new key, not a typo)
        assert ("use +" in problem) == ("did you mean" not in problem)


def test_good_overrides_pass_the_check(tmp_path: Path) -> None:
    from fer_lightning.cli import check_overrides

    (tmp_path / "x.csv").write_text("emotion,pixels,Usage\n")
    assert check_overrides(["experiment=seed_cnn", f"data.path={tmp_path / 'x.csv'}", "optimizer=sgd",
                            "optimizer.lr=0.1", "+trainer.limit_train_batches=2", "hydra.run.dir=/tmp/x",
                            "scheduler=none", "-m"]) is None


def test_cli_exits_with_the_one_line_error_before_hydra_starts() -> None:
    result = subprocess.run([sys.executable, "-m", "fer_lightning.train", "scheduler=cosin"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == ("train: error: scheduler=cosin: unknown option (did you mean cosine?); "
                                     "expected one of cosine, fast_warmup_cosine, inverse_sqrt, linear, none, plateau, "
                                     "warmup_cosine")
