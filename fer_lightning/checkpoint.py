"""Checkpoints: rebuild a trained classifier and its input profile from one (it carries its run's config, so
evaluation and export need nothing else), write them atomically, pick one to resume from."""

from __future__ import annotations

import errno
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf

from fer_lightning.atomicio import atomic_open
from fer_lightning.data.augment import AugmentProfile
from fer_lightning.inference.loading import CheckpointError, build_net, read_checkpoint
from fer_lightning.module import FERClassifier
from fer_lightning.pretrained import resolve

log = logging.getLogger(__name__)
LOW_DISK_BYTES = 64 * 2**20  # below this, a failed checkpoint write is reported as a full disk


@dataclass
class LoadedCheckpoint:
    model: FERClassifier
    config: DictConfig
    profile: AugmentProfile
    epoch: int | None
    path: Path


def load_classifier(path: str | Path, raw_weights: bool = False) -> LoadedCheckpoint:
    """The network with its trained weights (eval mode, CPU) plus the config and input profile of its run;
    `raw_weights`: a callbacks=ema run's raw weights instead of the averaged ones, to measure what averaging adds."""
    checkpoint = read_checkpoint(path)
    path = resolve(path)
    if raw_weights:
        if "current_model_state" not in checkpoint:
            raise CheckpointError(f"{path}: no raw weights beside averaged ones (the run did not use callbacks=ema); "
                                  "drop raw_weights=true")
        checkpoint["state_dict"] = checkpoint["current_model_state"]
    saved = checkpoint["fer_lightning"]["config"]
    hparams = {**checkpoint.get("hyper_parameters", {}), "compile": False}
    hparams.pop("norm_bias_lr_scale", None)  # a retired learning-rate setting: no effect on the weights
    model = FERClassifier(build_net(saved["model"]["net"], path), optimizer=None, **hparams).eval()
    model.load_state_dict(checkpoint["state_dict"])
    config = OmegaConf.create(saved)
    profile = AugmentProfile(**OmegaConf.to_container(config.augment, resolve=True))
    return LoadedCheckpoint(model, config, profile, checkpoint.get("epoch"), Path(path))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temp file in the same folder, flushed to disk, then renamed over the target:
    a run killed mid-save (SIGKILL, power loss) leaves the previous checkpoint intact, never a truncated one."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        try:
            with atomic_open(path) as handle:
                torch.save(checkpoint, handle)
        except (OSError, RuntimeError) as error:
            # a full disk surfaces from torch's zip writer as "enforce fail ... unexpected pos", not as ENOSPC
            folder = Path(path).parent
            if getattr(error, "errno", None) == errno.ENOSPC or shutil.disk_usage(folder).free < LOW_DISK_BYTES:
                raise OSError(errno.ENOSPC, f"no space left on {folder} while writing checkpoint {Path(path).name} "
                              f"({shutil.disk_usage(folder).free // 2**20} MiB free); free some space and "
                              "resume with ckpt_path=<run dir>") from error
            raise


def find_resume_checkpoint(target: str | Path) -> tuple[Path, dict[str, Any]]:
    """The checkpoint to resume from (`target`, checked by rundir.train_problem) and its contents: the file itself,
    or for a run directory its checkpoints/last.ckpt; an unreadable (e.g. truncated) one is reported and skipped for
    the newest readable checkpoint of the same run."""
    target = Path(target)
    folder = target / "checkpoints" if target.is_dir() else target.parent
    newest = sorted(folder.glob("*.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True)
    first = target if target.is_file() else folder / "last.ckpt"
    candidates = list(dict.fromkeys(p for p in (first, *newest) if p.is_file()))
    for candidate in candidates:
        try:
            return candidate, read_checkpoint(candidate)
        except CheckpointError as error:
            log.warning("skipping unreadable checkpoint: %s", error)
    raise CheckpointError(f"ckpt_path={target}: no readable checkpoint among {', '.join(c.name for c in candidates)}")
