"""Rebuild a trained classifier, and the input profile it was trained with, from a checkpoint alone.

Checkpoints written by `fer_lightning.train` carry the run's resolved config (ConfigInCheckpoint), so
evaluation, prediction and export need nothing but the .ckpt file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from fer_lightning.data.augment import AugmentProfile
from fer_lightning.module import FERClassifier


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
    """torch.load with weights_only=True (our checkpoints hold plain values only), with one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, not a torch file, ...
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(error).__name__}: "
                              f"{str(error).splitlines()[0] if str(error) else ''}); is it truncated?") from None
    if not isinstance(checkpoint, dict) or "fer_lightning" not in checkpoint or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path}: not a fer_lightning checkpoint (no run config); "
                              "expected a .ckpt written by fer_lightning.train")
    return checkpoint


def load_classifier(path: str | Path) -> LoadedCheckpoint:
    """The network with its trained weights (eval mode, CPU) plus the config and input profile of its run."""
    checkpoint = read_checkpoint(path)
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
