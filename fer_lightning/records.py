"""Finding training jobs on disk: each job's metrics.json (its run record) and .hydra/ folder, read into a `Job`
with its status, overrides, group choices and config, so tables can be rebuilt from what runs leave behind; and
the records `evaluate` leaves (<split>_evaluation.json: one checkpoint or an ensemble)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException
from omegaconf import DictConfig, ListConfig, OmegaConf

from fer_lightning.runrecord import RECORD_NAME


@dataclass
class Job:
    """One training job as found on disk."""

    path: Path
    status: str  # completed | failed | unfinished
    overrides: dict[str, str]
    record: dict[str, Any] = field(default_factory=dict)
    choices: dict[str, Any] = field(default_factory=dict)
    config: DictConfig | None = None
    error: str = ""

    @property
    def seed(self) -> Any:
        seed = self.record.get("seed", self.overrides.get("seed"))
        if seed is None and self.config is not None:
            seed = OmegaConf.select(self.config, "seed", default=None, throw_on_resolution_failure=False)
        return seed

    def matches(self, key: str, value: str) -> bool:
        """`--where` semantics: equal setting, or for `tags` one of the run's tags."""
        if key == "tags":
            tags = self.record.get("tags")
            if tags is None and self.config is not None:
                tags = OmegaConf.select(self.config, "tags", default=None, throw_on_resolution_failure=False)
            return value in [str(t) for t in (tags or [])]
        return self.setting(key) == value

    def setting(self, key: str) -> str:
        """The value of `key` in this job: its override, else its group choice, else its config value."""
        if key in self.overrides:
            return self.overrides[key]
        if key in self.choices:
            return str(self.choices[key])
        if self.config is not None:
            value = OmegaConf.select(self.config, key, default=None, throw_on_resolution_failure=False)
            if value is not None:
                return str(value)
        return "-"


def parse_overrides(overrides: Iterable[str]) -> dict[str, str]:
    """Hydra's parser: `['optimizer=sgd', '+trainer.limit_train_batches=2', '~x']` -> {'optimizer': 'sgd',
    'trainer.limit_train_batches': '2', 'x': '(deleted)'}, hydra.* left out. Values are written as the config
    prints them (`lr=1e-3` -> '0.001'), so an override and a config value compare equal. OverrideParseException
    for a line that is not an override."""
    parsed = OverridesParser.create().parse_overrides([str(o) for o in overrides])
    return {o.key_or_group: "(deleted)" if o.is_delete() else str(o.value()) for o in parsed
            if not o.key_or_group.startswith("hydra.")}


def _load_yaml(path: Path) -> Any:
    try:
        return OmegaConf.load(path) if path.is_file() else None
    except Exception:  # a half-written or hand-edited file must not stop the whole table
        return None


def _is_training_dir(path: Path) -> bool:
    """A .hydra/ of `fer_lightning.train` (not of `evaluate`, whose config has no trainer)."""
    config = _load_yaml(path / ".hydra" / "config.yaml")
    return isinstance(config, DictConfig) and "trainer" in config and "task_name" in config


def load_job(path: Path) -> Job:
    """A job's status, overrides, group choices and config from its metrics.json and .hydra/."""
    hydra_dir = path / ".hydra"
    config = _load_yaml(hydra_dir / "config.yaml")
    hydra_cfg = _load_yaml(hydra_dir / "hydra.yaml")
    chosen = OmegaConf.select(hydra_cfg, "hydra.runtime.choices") if isinstance(hydra_cfg, DictConfig) else None
    # group -> option of this job (optimizer: sgd, ...), so a key nobody overrode still has a value
    choices = {k: v for k, v in (chosen or {}).items() if not str(k).startswith("hydra/")}
    listed = _load_yaml(hydra_dir / "overrides.yaml")
    record_file = path / RECORD_NAME
    job = Job(path, "unfinished", {}, choices=choices, config=config if isinstance(config, DictConfig) else None,
              error=f"no {RECORD_NAME} (still running, or killed)")
    try:
        job.overrides = parse_overrides(listed if isinstance(listed, ListConfig) else [])
    except OverrideParseException as error:
        job.status, job.error = "failed", f".hydra/overrides.yaml unreadable: {str(error).splitlines()[0]}"
        return job
    if not record_file.is_file():
        return job
    try:
        record = json.loads(record_file.read_text())
    except (OSError, ValueError) as error:
        job.status, job.error = "failed", f"{RECORD_NAME} unreadable: {error}"
        return job
    if not isinstance(record, dict):  # a hand-made or foreign file: listed as failed, never read as a record
        job.status, job.error = "failed", f"{RECORD_NAME} holds a JSON {type(record).__name__}, not a run record"
        return job
    job.record = record
    try:
        if isinstance(record.get("overrides"), list):
            job.overrides = parse_overrides(record["overrides"])
    except OverrideParseException as error:
        job.status, job.error = "failed", f"{RECORD_NAME} overrides unreadable: {str(error).splitlines()[0]}"
        return job
    status = record.get("status")
    if status == "failed":
        job.status, job.error = "failed", str(record.get("error", "failed (no reason recorded)"))
    elif status not in (None, "completed"):  # train.py writes "running" when a job starts
        job.error = f"{RECORD_NAME} says {status!r} (still running, or killed)"
    elif not isinstance(record.get("val"), dict):
        job.status, job.error = "failed", f"{RECORD_NAME} has no val report"
    else:
        job.status, job.error = "completed", ""
    return job


def _natural_key(path: Path) -> tuple[tuple[int, int, str], ...]:
    """Job 10 after job 9."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in path.parts)


def find_jobs(roots: Sequence[str | Path]) -> list[Job]:
    """Every job under `roots` (recursively; a root may itself be a single run), in sweep order."""
    found: list[Path] = []
    for root in map(Path, roots):
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: no such directory")
        candidates = {p.parent for p in root.rglob(RECORD_NAME)}
        candidates |= {p.parent for p in root.rglob(".hydra") if p.is_dir() and _is_training_dir(p.parent)}
        found += [d for d in sorted(candidates, key=lambda d: _natural_key(d.relative_to(root))) if d not in found]
    return [load_job(path) for path in found]


EVALUATION_SUFFIX = "_evaluation.json"


@dataclass
class Evaluation:
    """One `evaluate` result as found on disk."""

    path: Path
    record: dict[str, Any]

    @property
    def members(self) -> list[dict[str, Any]]:
        return list(self.record.get("members") or [])


def find_evaluations(roots: Sequence[str | Path]) -> list[Evaluation]:
    """Every readable evaluate record under `roots` (recursively), in path order; unreadable files are skipped (a
    table of evaluations must not stop at one hand-edited file)."""
    found = []
    for root in map(Path, roots):
        for path in sorted(root.rglob(f"*{EVALUATION_SUFFIX}"), key=_natural_key):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(record, dict) and isinstance(record.get("report"), dict):
                found.append(Evaluation(path, record))
    return found
