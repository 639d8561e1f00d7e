"""The machine-readable record of a run (metrics.json): one object writes it for every status, atomically, with the
software versions and git commit that produced it."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import traceback
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from fer_lightning.atomicio import atomic_write_text

RECORD_NAME = "metrics.json"


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from `path`, or a one-line ValueError naming the file and what was expected."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise ValueError(f"{path}: cannot read {what} ({reason})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected {what} (a JSON object), got a JSON {type(data).__name__}")
    return data


def read_record(run_dir: str | Path) -> dict[str, Any]:
    """The record in `run_dir`, or {} when there is none or it is unreadable."""
    try:
        return read_json(Path(run_dir) / RECORD_NAME, "a run record")
    except ValueError:
        return {}


def completed_record(run_dir: str | Path) -> dict[str, Any] | None:
    """The record of a job that already finished in `run_dir`, if any."""
    record = read_record(run_dir)
    return record if record.get("status") == "completed" else None


def git_commit() -> str | None:
    """The commit of the code that ran (with '+dirty' if the tree had changes), or None outside git."""
    def git(*args: str) -> str:
        return subprocess.check_output(["git", *args], cwd=Path(__file__).parent, text=True, timeout=5,
                                       stderr=subprocess.DEVNULL).strip()

    try:
        return git("rev-parse", "HEAD") + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions(*packages: str) -> dict[str, str | None]:
    """The installed version of each package, None where it is not installed."""
    versions: dict[str, str | None] = dict.fromkeys(packages)
    for package in packages:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return versions


def environment_info() -> dict[str, Any]:
    import torch

    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"versions": package_versions("torch", "torchvision", "lightning", "hydra-core", "omegaconf", "torchmetrics",
                                         "fer_lightning"),
            "git_commit": git_commit(), "python": platform.python_version(),
            "machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "cuda": cuda}}


def failure_reason(error: BaseException) -> str:
    """One line: the error and, if it wraps another (Hydra's InstantiationException does), the root cause."""
    chain = [error]
    while chain[-1].__cause__ is not None and len(chain) < 10:
        chain.append(chain[-1].__cause__)
    lines = [f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}" for e in chain]
    return " <- ".join(dict.fromkeys(lines))


class RunRecord:
    """metrics.json of one run at each status (running, completed, failed, interrupted), with its identity; under DDP
    only rank 0 writes; a failure or interruption never replaces the record of a run that already completed."""

    def __init__(self, run_dir: str | Path, task_name: str, seed: int, overrides: Sequence[str] = (),
                 tags: Sequence[str] = (), rank: int = 0) -> None:
        self.run_dir, self.path, self.rank = Path(run_dir), Path(run_dir) / RECORD_NAME, rank
        self.identity = {"task_name": task_name, "run_dir": str(self.run_dir), "seed": seed,
                         "overrides": list(overrides), "tags": list(tags)}

    def is_completed(self) -> bool:
        return completed_record(self.run_dir) is not None

    def _write(self, status: str, **fields: Any) -> dict[str, Any]:
        record = {"status": status, **self.identity, **fields}
        if self.rank == 0:
            atomic_write_json(self.path, record)
        return record

    def running(self) -> None:
        self._write("running")

    def completed(self, **fields: Any) -> dict[str, Any]:
        """The final record (`fields`: results, history, timings) with the environment; returned on every rank."""
        return self._write("completed", **fields, **environment_info())

    def failed(self, error: BaseException) -> bool:
        """failure.txt (failure_rank<r>.txt on other DDP ranks) and a failed record; False over a completed run."""
        if self.is_completed():
            return False
        trace = "".join(traceback.format_exception(error))
        (self.run_dir / (f"failure_rank{self.rank}.txt" if self.rank else "failure.txt")).write_text(trace)
        if self.rank == 0:
            self._write("failed", error=failure_reason(error), **environment_info())
        return True

    def interrupted(self) -> None:
        """Ctrl-C: `interrupted` and the command that resumes it, not `running` forever."""
        if self.run_dir.is_dir() and not self.is_completed():
            self._write("interrupted",
                        resume=f"python -m fer_lightning.train <same overrides> ckpt_path={self.run_dir}")
