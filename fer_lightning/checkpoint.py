"""Checkpoints: rebuild a trained classifier (and its input profile) from one, write them atomically, pick one
to resume from.

Checkpoints written by `fer_lightning.train` carry the run's resolved config (ConfigInCheckpoint), so
evaluation, prediction and export need nothing but the .ckpt file.
"""

from __future__ import annotations

import errno
import logging
import pickle
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from lightning.pytorch.plugins.io import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf

from fer_lightning.atomicio import atomic_open
from fer_lightning.data.augment import AugmentProfile
from fer_lightning.module import FERClassifier
from fer_lightning.pretrained import resolve

log = logging.getLogger(__name__)


LOW_DISK_BYTES = 64 * 2**20  # below this, a failed checkpoint write is reported as a full disk


class CheckpointError(ValueError):
    """A checkpoint that is missing, truncated, or was not written by fer_lightning.train."""


@dataclass
class LoadedCheckpoint:
    model: FERClassifier
    config: DictConfig
    profile: AugmentProfile
    epoch: int | None
    path: Path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """torch.load with weights_only=True (our checkpoints hold plain values only), with one-line errors.
    `pretrained` names the model released inside the package (fer_lightning/weights/fer_cnn.pt)."""
    try:
        path = resolve(path)
    except FileNotFoundError as error:
        raise CheckpointError(str(error)) from None
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    with path.open("rb") as handle:
        head = handle.read(4)
    if not head.startswith((b"PK\x03\x04", b"\x80")):  # torch.save's zip archive, or a legacy pickle
        raise CheckpointError(f"{path}: not a fer_lightning checkpoint (not a torch.save file); expected a .ckpt "
                              "written by fer_lightning.train, or ckpt_path=pretrained")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Detected pickle protocol 4": a foreign pickle, refused
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, foreign pickles, ...
        message = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip().partition("\n")[0]  # no terminal colours
        if isinstance(error, pickle.UnpicklingError) or "weights_only" in message or "Unsupported global" in message:
            raise CheckpointError(f"{path}: not a fer_lightning checkpoint (it holds objects other than tensors "
                                  "and plain values)") from None
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(error).__name__}: {message}); is it "
                              "truncated?") from None
    if not isinstance(checkpoint, dict) or "fer_lightning" not in checkpoint or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path}: not a fer_lightning checkpoint (no run config); "
                              "expected a .ckpt written by fer_lightning.train")
    return checkpoint


def load_classifier(path: str | Path, raw_weights: bool = False) -> LoadedCheckpoint:
    """The network with its trained weights (eval mode, CPU) plus the config and input profile of its run.

    A run with callbacks=ema saves the averaged weights as `state_dict` and the raw ones beside them;
    `raw_weights=True` loads the raw ones, to measure what the average adds.
    """
    checkpoint = read_checkpoint(path)
    path = resolve(path)
    if raw_weights:
        if "current_model_state" not in checkpoint:
            raise CheckpointError(f"{path}: no raw weights beside averaged ones (the run did not use callbacks=ema); "
                                  "drop raw_weights=true")
        checkpoint["state_dict"] = checkpoint["current_model_state"]
    config = OmegaConf.create(checkpoint["fer_lightning"]["config"])
    net_config = OmegaConf.to_container(config.model.net, resolve=True)
    if "weights" in net_config:
        net_config["weights"] = None  # the trained weights come from the state dict, no ImageNet download
    net = instantiate(net_config)
    hparams = {**checkpoint.get("hyper_parameters", {}), "compile": False}
    model = FERClassifier(net, optimizer=None, **hparams)
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
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


def find_resume_checkpoint(target: str | Path) -> Path:
    """The checkpoint to resume from: `target` itself, or for a run directory its checkpoints/last.ckpt.

    Unreadable (e.g. truncated) candidates are reported and skipped in favour of the newest readable
    checkpoint of the same run.
    """
    target = Path(target)
    folder = target / "checkpoints" if target.is_dir() else target.parent
    if not target.exists():
        raise CheckpointError(f"ckpt_path={target}: no such checkpoint file or run directory")
    others = sorted(folder.glob("*.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True)
    first = [target] if target.is_file() else [folder / "last.ckpt"] if (folder / "last.ckpt").is_file() else []
    candidates = list(dict.fromkeys(first + others))
    if not candidates:
        raise CheckpointError(f"ckpt_path={target}: no .ckpt files in {folder}")
    for candidate in candidates:
        try:
            read_checkpoint(candidate)
        except CheckpointError as error:
            log.warning("skipping unreadable checkpoint: %s", error)
            continue
        return candidate
    raise CheckpointError(f"ckpt_path={target}: no readable checkpoint among {', '.join(c.name for c in candidates)}")
