"""What a command would do to its run directory, judged before Hydra writes .hydra/ there (torch-free)."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from fer_lightning.config import resume_run_dir
from fer_lightning.pretrained import is_torch_save
from fer_lightning.runrecord import RECORD_NAME, completed_record, read_record
from fer_lightning.schema import parse_overrides


def train_command(run_dir: Path, *settings: str) -> str:
    """The command that trains `run_dir`'s run (its .hydra/overrides.yaml) with `settings` instead of its own."""
    try:
        parsed = parse_overrides(OmegaConf.load(run_dir / ".hydra" / "overrides.yaml"))
    except Exception:
        parsed = []
    replaced = {"ckpt_path", "force", "hydra.run.dir", *(s.split("=")[0] for s in settings)}
    return " ".join(["python -m fer_lightning.train", *(o.input_line or "" for o in parsed
                                                          if o.key_or_group not in replaced), *settings])


def _unwritable(folder: Path, key: str, value: object = None) -> str | None:
    """Hydra (or the job) would fail to create `folder` with a traceback: the key and the reason in one line."""
    existing = next(p for p in (folder, *folder.absolute().parents) if p.exists())
    if not existing.is_dir():
        return f"{key}={value or folder}: {existing} is a file, not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{key}={value or folder}: {existing} is not writable"
    return None


def _resume_problem(cfg: DictConfig, target: Path) -> str | None:
    """A resume target: a run's checkpoint file or directory, of a run with this optimizer and scheduler."""
    if not target.exists():
        return f"ckpt_path={target}: no such checkpoint file or run directory (nothing was created)"
    if target.is_file() and not (target.suffix == ".ckpt" and is_torch_save(target)):
        return (f"ckpt_path={target}: not a checkpoint; expected a .ckpt file written by fer_lightning.train, or "
                "its run directory")
    if target.is_dir() and not any((target / "checkpoints").glob("*.ckpt")):
        return f"ckpt_path={target}: no checkpoints/*.ckpt in this directory; expected a run directory of " \
               "fer_lightning.train or one of its .ckpt files"
    run = Path(resume_run_dir(str(target), "") or target)
    if not (run / ".hydra" / "config.yaml").is_file():
        return None
    saved = OmegaConf.load(run / ".hydra" / "config.yaml")
    for group in ("optimizer", "scheduler"):
        before = OmegaConf.select(saved, f"{group}._target_", default=None)
        now = OmegaConf.select(cfg, f"{group}._target_", default=None)
        if before != now:
            return (f"ckpt_path={target}: its run used {group} {before}, this command {now}; the {group}'s state "
                    f"cannot carry over. Resume with the run's own settings: {train_command(run, f'ckpt_path={run}')}")
    return None


def train_problem(cfg: DictConfig, run_dir: Path) -> str | None:
    """The resume target's problem, or what a run into `run_dir` would overwrite (the CLI's check and the job's)."""
    ckpt_path = cfg.get("ckpt_path")
    problem = _resume_problem(cfg, Path(str(ckpt_path))) if ckpt_path else None
    record = read_record(run_dir)
    status = record.get("status")
    if problem or status is None or cfg.get("force") is True or cfg.get("skip_completed") is True:
        return problem
    named = f"ckpt_path={ckpt_path}" if ckpt_path else f"hydra.run.dir={run_dir}"
    if status == "completed":  # train it longer into a new directory: its own overrides, from its last.ckpt
        epochs = record.get("epochs")
        more = 2 * epochs if isinstance(epochs, int) and epochs > 0 else "<more epochs>"
        longer = train_command(run_dir, f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
                               f"hydra.run.dir={run_dir}_continued", f"trainer.max_epochs={more}")
        return (f"{named}: {run_dir} is a completed run; running into it would overwrite its {RECORD_NAME} and "
                f".hydra/. Train longer into a new directory: {longer}; or pass force=true")
    if not ckpt_path and any((run_dir / "checkpoints").glob("*.ckpt")):
        return (f"{named}: holds an unfinished run ({status}) with checkpoints that a new run would overwrite; "
                f"resume it: {train_command(run_dir, f'ckpt_path={run_dir}')} (or pass force=true to start it over)")
    return None


def problem(cfg: DictConfig, task: str) -> str | None:
    """The first thing a single run of `task` (its composed config) would destroy or fail to create, or None."""
    run_dir = Path(str(cfg.hydra.run.dir))
    key = "output_dir" if task == "evaluate" else "hydra.run.dir"
    found = _unwritable(run_dir, key)
    if found or task == "predict":
        return found
    if task == "train":
        return train_problem(cfg, run_dir)
    if (run_dir / RECORD_NAME).exists():
        return (f"{key}={run_dir}: holds a training run ({RECORD_NAME}); {task} would replace its .hydra/ config. "
                f"Choose another directory (or leave {key} out)")
    output = cfg.get("output")
    return _unwritable(Path(str(output)).parent, "output", output) if task == "export" and output else None


def sweep_problem(cfg: DictConfig, task: str) -> str | None:
    """What a sweep (-m) would destroy or fail to create in `hydra.sweep.dir` (finished jobs, unless skipped/forced)."""
    sweep_dir = Path(str(cfg.hydra.sweep.dir))
    found = _unwritable(sweep_dir, "hydra.sweep.dir")
    if found or task != "train" or cfg.get("skip_completed") is True or cfg.get("force") is True:
        return found
    if done := [path for path in sweep_dir.rglob(RECORD_NAME) if completed_record(path.parent)]:
        return (f"hydra.sweep.dir={sweep_dir}: holds {len(done)} completed job(s) that this sweep would overwrite "
                "(their .hydra/ and metrics.json); rerun it with skip_completed=true (finished jobs are skipped, "
                "unfinished ones resumed), or choose another hydra.sweep.dir (or pass force=true)")
    return None
