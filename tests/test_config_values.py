"""Values are checked before any data is loaded (one line naming key, value and what is allowed), and a resume
never destroys a completed run or creates a directory for a target that does not exist."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig

from fer_lightning.cli import check_overrides
from fer_lightning.config import ConfigError, check_config


@pytest.mark.parametrize(("override", "message"), [
    ("data.batch_size=abc", "data.batch_size=abc: expected an integer >= 1"),
    ("data.batch_size=0", "data.batch_size=0: expected an integer >= 1"),
    ("data.batch_size=-5", "data.batch_size=-5: expected an integer >= 1"),
    ("data.eval_batch_size=0", "data.eval_batch_size=0: expected an integer >= 1"),
    ("optimizer.lr=-1", "optimizer.lr=-1: expected a number > 0"),
    ("optimizer.lr=abc", "optimizer.lr=abc: expected a number > 0"),
    ("seed=abc", "seed=abc: expected an integer >= 0 and <= 4294967295"),
    ("threads_per_job=-1", "threads_per_job=-1: expected an integer >= 1"),
    ("model.label_smoothing=2", "model.label_smoothing=2: expected a number >= 0 and < 1"),
    ("model.mix_prob=5", "model.mix_prob=5: expected a number >= 0 and <= 1"),
    ("trainer.max_epochs=0", "trainer.max_epochs=0: expected an integer >= 1"),
    ("data.val_fraction=1.5", "data.val_fraction=1.5: expected a number > 0 and < 1"),
    ("model.tta=hflip", "model.tta=hflip: expected a list of views, e.g. model.tta=[hflip]"),
])
def test_bad_values_name_the_key_and_the_range(override: str, message: str,
                                               make_cfg: Callable[..., DictConfig]) -> None:
    with pytest.raises(ConfigError) as error:
        check_config(make_cfg(override))
    assert str(error.value) == message


def test_good_values_pass(make_cfg: Callable[..., DictConfig]) -> None:
    check_config(make_cfg("optimizer.lr=1e-3", "threads_per_job=2", "model.label_smoothing=0.1"))


@pytest.mark.parametrize("path", ["null", "/nonexistent/fer2013.csv.gz"])
def test_real_data_config_without_a_path_is_an_error(path: str, make_cfg: Callable[..., DictConfig]) -> None:
    with pytest.raises(ConfigError, match="data.path is required .*Kaggle folder"):
        check_config(make_cfg("data=fer2013", f"data.path={path}", tiny=False))


def test_a_missing_resume_target_is_refused_before_anything_is_created(tmp_path: Path) -> None:
    target = tmp_path / "typo" / "checkpoints" / "last.ckpt"
    problem = check_overrides([f"ckpt_path={target}"])
    assert problem is not None and "no such checkpoint file or run directory" in problem
    assert not (tmp_path / "typo").exists()


def test_a_completed_run_is_only_resumed_with_force(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"PK\x03\x04")
    record = {"status": "completed", "val": {"accuracy": 0.7}}
    (run / "metrics.json").write_text(json.dumps(record, indent=2))
    for target in (run, run / "checkpoints" / "last.ckpt"):
        problem = check_overrides([f"ckpt_path={target}"])
        assert problem is not None and "is a completed run" in problem and "force=true" in problem
        assert check_overrides([f"ckpt_path={target}", "force=true"]) is None
    assert json.loads((run / "metrics.json").read_text()) == record


def test_train_refuses_to_overwrite_a_completed_record(make_cfg: Callable[..., DictConfig], tmp_path: Path) -> None:
    from fer_lightning.jobs.train import record_failure, train

    cfg = make_cfg()
    run = Path(cfg.paths.output_dir)
    run.mkdir(parents=True)
    record = {"status": "completed", "val": {"accuracy": 0.7}}
    (run / "metrics.json").write_text(json.dumps(record))
    with pytest.raises(ConfigError, match="is a completed run.*force=true") as error:
        train(cfg)
    record_failure(cfg, error.value)  # what main() does with any failure: the completed record stays
    assert json.loads((run / "metrics.json").read_text()) == record
    assert not (run / "failure.txt").exists()


def test_ctrl_c_marks_the_record_interrupted(make_cfg: Callable[..., DictConfig], monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    import signal
    import sys

    from hydra.core.global_hydra import GlobalHydra

    from fer_lightning.train import main

    run = tmp_path / "ctrl_c"
    argv = ["train", "trainer.max_epochs=2", "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1",
            "trainer.num_sanity_val_steps=0", "callbacks.progress_bar.refresh_rate=0", "logger=csv",
            "+callbacks.ctrl_c._target_=tests.helpers.CtrlCAtEpoch", "+callbacks.ctrl_c.epoch=1",
            "data.synthetic.n_train=96", "data.synthetic.n_val=48", "data.synthetic.n_test=48",
            "data.batch_size=32", f"hydra.run.dir={run}", "hydra/job_logging=none", "hydra/hydra_logging=none"]
    monkeypatch.setattr(sys, "argv", argv)
    GlobalHydra.instance().clear()
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit):
            main()
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores SIGINT after a graceful stop
        GlobalHydra.instance().clear()
    record = json.loads((run / "metrics.json").read_text())
    assert record["status"] == "interrupted" and f"ckpt_path={run}" in record["resume"]
    assert (run / "checkpoints" / "last.ckpt").is_file()  # epoch 0 was saved: the run resumes from there


def test_a_full_disk_while_checkpointing_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    from collections import namedtuple

    import fer_lightning.checkpoint as checkpoint

    def full_disk_save(obj: object, handle: object) -> None:
        raise RuntimeError("[enforce fail at inline_container.cc:783] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed; unexpected pos 64 vs 0")

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(checkpoint.torch, "save", full_disk_save)
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**9, 10**9, 1024))
    with pytest.raises(OSError, match=f"no space left on {tmp_path}"):
        checkpoint.AtomicCheckpointIO().save_checkpoint({"x": 1}, tmp_path / "last.ckpt")
    assert list(tmp_path.iterdir()) == []  # no temp file left behind
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**12, 0, 10**12))
    with pytest.raises(RuntimeError, match="enforce fail"):  # other failures are not disguised as a full disk
        checkpoint.AtomicCheckpointIO().save_checkpoint({"x": 1}, tmp_path / "last.ckpt")


def test_export_into_an_existing_directory_is_refused(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from fer_lightning.jobs.export import export_checkpoint

    with pytest.raises(ValueError, match="is a directory; expected a file name"):
        export_checkpoint(tiny_checkpoint, "onnx", tmp_path)
