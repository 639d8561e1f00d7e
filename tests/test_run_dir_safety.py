"""Nothing a run left on disk is lost to a later command: refusals come before Hydra creates or rewrites a run
directory, name the command that works, and a resume target is exactly the checkpoint it names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig

from fer_lightning.cli import check_overrides, expected_failure
from tests.conftest import REPO_ROOT, TINY_DATA

ADAMW_PLATEAU = "optimizer:\n  _target_: torch.optim.AdamW\nscheduler:\n  _target_: fer_lightning.schedulers.plateau\n"


def fake_run(run: Path, status: str, overrides: str = "- seed=3\n") -> Path:
    """A run directory as train leaves it: record, .hydra/ config and overrides, a checkpoint."""
    (run / ".hydra").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / "metrics.json").write_text(json.dumps({"status": status, "epochs": 3}))
    (run / ".hydra" / "config.yaml").write_text(ADAMW_PLATEAU)
    (run / ".hydra" / "overrides.yaml").write_text(overrides)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"PK\x03\x04" + b"\0" * 16)
    return run


def snapshot(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def test_a_completed_run_is_refused_before_hydra_rewrites_its_config(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "done", "completed")
    before = snapshot(run)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONWARNINGS": "ignore"}
    result = subprocess.run([sys.executable, "-m", "fer_lightning.train", "optimizer=sgd", f"hydra.run.dir={run}"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "is a completed run" in result.stderr and "force=true" in result.stderr
    assert snapshot(run) == before  # .hydra/config.yaml still says AdamW


def test_the_refusal_of_a_completed_run_suggests_a_command_that_works(
        tiny_checkpoint: Path, make_cfg: Callable[..., DictConfig], tmp_path: Path) -> None:
    from fer_lightning.jobs.train import train

    run = tiny_checkpoint.parent.parent
    problem = check_overrides([f"ckpt_path={run}"])
    assert problem is not None and "is a completed run" in problem
    suggested = problem.split("Train longer into a new directory: python -m fer_lightning.train ")[1].split("; ")[0]
    overrides = suggested.split()
    new_dir = f"hydra.run.dir={run}_continued"
    assert new_dir in overrides and "trainer.max_epochs=2" in overrides  # its one epoch, doubled
    assert check_overrides(overrides) is None  # not refused again
    record = train(make_cfg(*[o for o in overrides if o != new_dir], "+trainer.limit_train_batches=2",
                            "+trainer.limit_val_batches=1", "trainer.num_sanity_val_steps=0", "logger=csv",
                            "callbacks.progress_bar.refresh_rate=0", "test=false"))
    assert record["status"] == "completed" and record["epochs"] == 2
    assert record["resumed_from"] == str(run / "checkpoints" / "last.ckpt")


def test_an_interrupted_run_is_not_overwritten_by_a_fresh_start(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "interrupted", "interrupted")
    problem = check_overrides([*TINY_DATA, f"hydra.run.dir={run}"])
    assert problem is not None and f"resume it: python -m fer_lightning.train seed=3 ckpt_path={run}" in problem
    assert check_overrides([*TINY_DATA, f"hydra.run.dir={run}", "force=true"]) is None
    assert check_overrides([*TINY_DATA, f"ckpt_path={run}"]) is None


def test_resuming_with_another_optimizer_is_refused_up_front(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "adamw", "interrupted")
    before = snapshot(run)
    problem = check_overrides(["optimizer=sgd", f"ckpt_path={run}"])
    assert problem is not None and "its run used optimizer torch.optim.AdamW, this command torch.optim.SGD" in problem
    assert f"python -m fer_lightning.train seed=3 ckpt_path={run}" in problem
    problem = check_overrides(["scheduler=cosine", f"ckpt_path={run}"])
    assert problem is not None and "scheduler's state cannot carry over" in problem
    assert snapshot(run) == before  # still "interrupted"


@pytest.mark.parametrize("name", ["notes.txt", "photo.jpg", "garbage.ckpt"])
def test_a_ckpt_path_that_is_a_file_must_be_that_checkpoint(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "other.ckpt").write_bytes(b"PK\x03\x04" + b"\0" * 16)  # an unrelated checkpoint beside it
    (folder / name).write_bytes(b"\xff\xd8\xff\xe0 not a checkpoint")
    problem = check_overrides([f"ckpt_path={folder / name}"])
    assert problem == (f"ckpt_path={folder / name}: not a checkpoint; expected a .ckpt file written by "
                       "fer_lightning.train, or its run directory")


def test_a_directory_without_checkpoints_is_no_resume_target(tmp_path: Path) -> None:
    problem = check_overrides([f"ckpt_path={tmp_path}"])
    assert problem is not None and "no checkpoints/*.ckpt in this directory" in problem


def test_evaluate_and_export_never_take_over_a_training_run(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "done", "completed")
    problem = check_overrides(["ckpt_path=x.ckpt", f"output_dir={run}"], "evaluate")
    assert problem == (f"output_dir={run}: holds a training run (metrics.json); evaluate would replace its .hydra/ "
                       "config. Choose another directory (or leave output_dir out)")
    problem = check_overrides(["ckpt_path=x.ckpt", f"hydra.run.dir={run}"], "export")
    assert problem is not None and problem.startswith(f"hydra.run.dir={run}: holds a training run")


def test_unusable_directories_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert check_overrides([f"hydra.run.dir={a_file}/run"]) == \
        f"hydra.run.dir={a_file}/run: {a_file} is a file, not a directory"
    assert check_overrides(["ckpt_path=x.ckpt", f"output_dir={a_file}"], "evaluate") == \
        f"output_dir={a_file}: {a_file} is a file, not a directory"
    assert check_overrides(["ckpt_path=x.ckpt", f"output={a_file}/m.onnx"], "export") == \
        f"output={a_file}/m.onnx: {a_file} is a file, not a directory"
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != read_only)  # root ignores chmod
    assert check_overrides([f"hydra.run.dir={read_only}/run"]) == \
        f"hydra.run.dir={read_only}/run: {read_only} is not writable"


def test_lightning_misconfiguration_is_an_expected_failure() -> None:
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    error = MisconfigurationException("CUDAAccelerator can not run on your system")  # accelerator=gpu, no GPU
    assert expected_failure(error) is error


def test_a_sweep_into_a_folder_with_finished_jobs_is_refused_unless_it_skips_or_redoes_them(tmp_path: Path) -> None:
    fake_run(tmp_path / "sweep" / "0", "completed")
    fake_run(tmp_path / "sweep" / "1", "interrupted")
    line = ["-m", "seed=1,2", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    problem = check_overrides(line)
    assert problem is not None and "holds 1 completed job(s) that this sweep would overwrite" in problem
    assert "skip_completed=true" in problem and "\n" not in problem
    assert check_overrides([*line, "skip_completed=true"]) is None
    assert check_overrides([*line, "force=true"]) is None
    assert check_overrides(["-m", "seed=1,2", f"hydra.sweep.dir={tmp_path / 'new'}"]) is None
    (tmp_path / "file").write_text("")
    assert "is a file, not a directory" in check_overrides(["-m", "seed=1,2", f"hydra.sweep.dir={tmp_path / 'file'}/x"])
