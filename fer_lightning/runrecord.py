"""A run's record (metrics.json): `RunRecord` writes it atomically at every status, with the versions and git commit
that produced it; `find_runs` reads back what runs left on disk (training jobs as `Job`s, evaluate records)."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from fer_lightning.atomicio import atomic_write_text
from fer_lightning.schema import parse_overrides

RECORD_NAME = "metrics.json"


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from `path`, or a one-line ValueError naming the file and what was expected."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: cannot read {what} ({getattr(error, 'strerror', None) or error})") from None
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
        self._write("failed", error=failure_reason(error), **environment_info())
        return True

    def interrupted(self) -> None:
        """Ctrl-C: `interrupted` and the command that resumes it, not `running` forever."""
        if self.run_dir.is_dir() and not self.is_completed():
            self._write("interrupted",
                        resume=f"python -m fer_lightning.train <same overrides> ckpt_path={self.run_dir}")


@dataclass
class Job:
    """One training job as found on disk."""

    path: Path
    status: str  # completed | failed | unfinished
    overrides: dict[str, str]
    record: dict[str, Any]
    choices: dict[str, Any]  # group -> option of this job (optimizer: sgd, ...), so a key nobody overrode has a value
    config: DictConfig  # empty without a readable .hydra/config.yaml
    error: str  # why it is not completed

    def _config_value(self, key: str) -> Any:
        return OmegaConf.select(self.config, key, default=None, throw_on_resolution_failure=False)

    @property
    def seed(self) -> Any:
        seed = self.record.get("seed", self.overrides.get("seed"))
        return self._config_value("seed") if seed is None else seed

    def matches(self, key: str, value: str) -> bool:
        """`--where` semantics: equal setting, or for `tags` one of the run's tags."""
        if key == "tags":
            tags = self.record.get("tags")
            return value in [str(t) for t in (self._config_value("tags") if tags is None else tags) or []]
        return self.setting(key) == value

    def setting(self, key: str) -> str:
        """The value of `key` in this job: its override, else its group choice, else its config value."""
        if key in self.overrides:
            return self.overrides[key]
        if key in self.choices:
            return str(self.choices[key])
        value = self._config_value(key)
        return "-" if value is None else str(value)


def override_settings(overrides: Iterable[str]) -> dict[str, str]:
    """`['optimizer=sgd', '+a.b=2', '~x']` -> {'optimizer': 'sgd', 'a.b': '2', 'x': '(deleted)'}, less Hydra's keys;
    values as the config prints them (`lr=1e-3` -> '0.001'), so an override and a config value compare equal."""
    return {o.key_or_group: "(deleted)" if o.is_delete() else str(o.value()) for o in parse_overrides(overrides)
            if not o.is_hydra_override()}


def _load_yaml(path: Path) -> Any:
    try:
        return OmegaConf.load(path) if path.is_file() else None
    except Exception:  # a half-written or hand-edited file must not stop the whole table
        return None


def _read_record(path: Path) -> tuple[dict[str, Any], str, str]:
    """The record in job folder `path` ({} if none is readable), the job's status and, unless completed, why."""
    try:
        record = json.loads((path / RECORD_NAME).read_text())
    except FileNotFoundError:
        return {}, "unfinished", f"no {RECORD_NAME} (still running, or killed)"
    except (OSError, ValueError) as error:
        return {}, "failed", f"{RECORD_NAME} unreadable: {error}"
    if not isinstance(record, dict):  # a hand-made or foreign file: listed as failed, never read as a record
        return {}, "failed", f"{RECORD_NAME} holds a JSON {type(record).__name__}, not a run record"
    status = record.get("status")
    if status == "failed":
        return record, "failed", str(record.get("error", "failed (no reason recorded)"))
    if status not in (None, "completed"):  # train.py writes "running" when a job starts
        return record, "unfinished", f"{RECORD_NAME} says {status!r} (still running, or killed)"
    if not isinstance(record.get("val"), dict):
        return record, "failed", f"{RECORD_NAME} has no val report"
    return record, "completed", ""


def load_job(path: Path) -> Job:
    """A job's status, overrides, group choices and config from its metrics.json and .hydra/."""
    config, hydra_cfg = _load_yaml(path / ".hydra" / "config.yaml"), _load_yaml(path / ".hydra" / "hydra.yaml")
    chosen = OmegaConf.select(hydra_cfg, "hydra.runtime.choices") if isinstance(hydra_cfg, DictConfig) else None
    choices = {k: v for k, v in (chosen or {}).items() if not str(k).startswith("hydra/")}
    record, status, error = _read_record(path)
    source, listed = f"{RECORD_NAME} overrides", record.get("overrides")
    if not isinstance(listed, list):
        source, listed = ".hydra/overrides.yaml", _load_yaml(path / ".hydra" / "overrides.yaml")
    try:
        overrides = override_settings(listed if isinstance(listed, list | ListConfig) else [])
    except ValueError as reason:
        overrides, status, error = {}, "failed", f"{source} unreadable: {reason}"
    config = config if isinstance(config, DictConfig) else OmegaConf.create()
    return Job(path, status, overrides, record, choices, config, error)


def _natural_key(path: Path) -> tuple[tuple[int, int, str], ...]:
    """Job 10 after job 9."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in path.parts)


def find_runs(roots: Sequence[str | Path]) -> tuple[list[Job], list[tuple[Path, dict[str, Any]]]]:
    """Every training job under `roots` (recursively; a root may itself be a single run), in sweep order, and every
    readable evaluate record with its path (one hand-edited file must not stop a table: unreadable ones are skipped)."""
    found: list[Path] = []
    evaluations = []
    for root in map(Path, roots):
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: no such directory")
        candidates = {p.parent for p in root.rglob(RECORD_NAME)}
        for hydra_dir in root.rglob(".hydra"):
            config = _load_yaml(hydra_dir / "config.yaml")  # of `train`, not of `evaluate` (no trainer)
            if isinstance(config, DictConfig) and "trainer" in config and "task_name" in config:
                candidates.add(hydra_dir.parent)
        found += [d for d in sorted(candidates, key=lambda d: _natural_key(d.relative_to(root))) if d not in found]
        for path in sorted(root.rglob("*_evaluation.json"), key=_natural_key):
            with contextlib.suppress(ValueError):
                record = read_json(path, "an evaluate record")
                if isinstance(record.get("report"), dict):
                    evaluations.append((path, record))
    return [load_job(path) for path in found], evaluations
