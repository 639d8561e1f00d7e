"""RunRecord: metrics.json for every status of a run, atomically, never over a completed run; report reads it."""

from __future__ import annotations

import json
from pathlib import Path

from fer_lightning.runrecord import RECORD_NAME, RunRecord, load_job


def record(run_dir: Path, rank: int = 0) -> RunRecord:
    return RunRecord(run_dir, "train", 7, ["optimizer=sgd"], ["ablation"], rank=rank)


def on_disk(run_dir: Path) -> dict:
    return json.loads((run_dir / RECORD_NAME).read_text())


def test_every_status_carries_the_runs_identity(tmp_path: Path) -> None:
    identity = {"task_name": "train", "run_dir": str(tmp_path), "seed": 7, "overrides": ["optimizer=sgd"],
                "tags": ["ablation"]}
    run = record(tmp_path)
    run.running()
    assert on_disk(tmp_path) == {"status": "running", **identity}
    assert load_job(tmp_path).status == "unfinished"
    run.interrupted()
    assert on_disk(tmp_path)["status"] == "interrupted" and f"ckpt_path={tmp_path}" in on_disk(tmp_path)["resume"]
    done = run.completed(val={"accuracy": 0.5, "macro_f1": 0.4}, epochs=3)
    assert on_disk(tmp_path) == done and done["status"] == "completed" and done["epochs"] == 3
    assert all(done[key] == value for key, value in identity.items()) and done["versions"]["torch"]
    job = load_job(tmp_path)
    assert job.status == "completed" and job.overrides == {"optimizer": "sgd"}
    assert run.is_completed() and [p.name for p in tmp_path.iterdir()] == [RECORD_NAME]  # no temp file left


def test_a_failure_is_recorded_with_its_root_cause_and_traceback(tmp_path: Path) -> None:
    run = record(tmp_path)
    run.running()
    try:
        try:
            raise ValueError("dropout probability has to be between 0 and 1, but got 2.0")
        except ValueError as cause:
            raise RuntimeError("Error in call to target 'FERCNN'") from cause
    except RuntimeError as error:
        assert run.failed(error)
    failed = on_disk(tmp_path)
    assert failed["status"] == "failed" and failed["seed"] == 7
    assert failed["error"] == ("RuntimeError: Error in call to target 'FERCNN' <- ValueError: dropout probability "
                               "has to be between 0 and 1, but got 2.0")
    assert "Traceback" in (tmp_path / "failure.txt").read_text()
    assert load_job(tmp_path).error == failed["error"]


def test_a_completed_record_is_never_replaced_by_a_failure_or_interruption(tmp_path: Path) -> None:
    run = record(tmp_path)
    done = run.completed(val={"accuracy": 0.5})
    assert not run.failed(ValueError("a refused resume"))
    run.interrupted()
    assert on_disk(tmp_path) == done and not (tmp_path / "failure.txt").exists()


def test_only_rank_zero_writes_the_record(tmp_path: Path) -> None:
    run = record(tmp_path, rank=1)
    run.running()
    assert run.completed(val=None)["status"] == "completed"
    assert not (tmp_path / RECORD_NAME).exists()
    assert run.failed(ValueError("rank 1 failed"))
    assert "rank 1 failed" in (tmp_path / "failure_rank1.txt").read_text()
    assert not (tmp_path / RECORD_NAME).exists() and not (tmp_path / "failure.txt").exists()
