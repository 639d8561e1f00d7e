"""Read a checkpoint of fer_lightning.train without Lightning (~4 s of a 4.5 s `Predictor.from_pretrained()`) or
Hydra: the plain network, rebuilt from the run's config, computes what `FERClassifier.evaluation_logits` computes."""

from __future__ import annotations

import importlib
import pickle
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fer_lightning.data.augment import AugmentProfile
from fer_lightning.data.splits import CLASS_NAMES
from fer_lightning.pretrained import is_torch_save, resolve
from fer_lightning.tta import TEN_CROP_FRACTION, average_logits, check_views

NETWORKS_MODULE = "fer_lightning.models"
NET_PREFIX = "net."


class CheckpointError(ValueError):
    """A checkpoint that is missing, truncated, or was not written by fer_lightning.train."""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """torch.load with weights_only=True (our checkpoints hold plain values only), with one-line errors;
    `pretrained`: the model released inside the package."""
    try:
        path = resolve(path)
    except FileNotFoundError as error:
        raise CheckpointError(str(error)) from None
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not is_torch_save(path):
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


class EvalNetwork(nn.Module):
    """A trained network whose `forward` is the mean of its logits over the TTA views, as evaluation computes it."""

    def __init__(self, net: nn.Module, tta: Sequence[str] = ("identity",), tta_crop: float = TEN_CROP_FRACTION,
                 channels_last: bool = True, class_names: Sequence[str] = CLASS_NAMES) -> None:
        super().__init__()
        self.set_tta(tta, tta_crop, key="model.tta")
        self.net = net.to(memory_format=torch.channels_last) if channels_last else net
        self.channels_last = channels_last
        self.class_names = tuple(class_names)

    def set_tta(self, views: Sequence[str] | None = None, crop: float | None = None, key: str = "tta") -> None:
        """Average other views from now on (None keeps the current ones); `key` names the setting in errors."""
        views = self.tta if views is None else list(views)
        crop = self.tta_crop if crop is None else crop
        check_views(views, crop, key)
        self.tta, self.tta_crop = views, crop

    def view_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.contiguous(memory_format=torch.channels_last) if self.channels_last else x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return average_logits(self.view_logits, x, self.tta, self.tta_crop)


@dataclass
class LoadedNetwork:
    network: EvalNetwork
    profile: AugmentProfile
    path: Path


def build_net(net_config: dict[str, Any], path: Path) -> nn.Module:
    """The network named by the run config's `model.net._target_`; only classes of fer_lightning.models, so a
    checkpoint cannot name arbitrary code to run."""
    target = str(net_config.get("_target_", ""))
    module_name, _, name = target.rpartition(".")
    if not module_name.startswith(NETWORKS_MODULE):
        raise CheckpointError(f"{path}: model.net._target_={target!r} is not a network of {NETWORKS_MODULE}")
    net_class = getattr(importlib.import_module(module_name), name, None)
    if not isinstance(net_class, type) or not issubclass(net_class, nn.Module):
        raise CheckpointError(f"{path}: model.net._target_={target!r}: no such network in {module_name}")
    # the trained weights come from the state dict: no ImageNet download
    return net_class(**{k: None if k == "weights" else v for k, v in net_config.items() if not k.startswith("_")})


def load_network(path: str | Path) -> LoadedNetwork:
    """The checkpoint's network with its weights and TTA views (eval mode, CPU), and its input profile."""
    checkpoint = read_checkpoint(path)
    path = resolve(path)
    config = checkpoint["fer_lightning"]["config"]
    hparams = checkpoint.get("hyper_parameters", {})
    net = build_net(config["model"]["net"], path)
    weights = {k.removeprefix(NET_PREFIX): v for k, v in checkpoint["state_dict"].items() if k.startswith(NET_PREFIX)}
    try:
        net.load_state_dict(weights)
    except RuntimeError as error:
        raise CheckpointError(f"{path}: its weights do not fit its network ({str(error).splitlines()[0]})") from None
    network = EvalNetwork(net, hparams.get("tta", ("identity",)), hparams.get("tta_crop", TEN_CROP_FRACTION),
                          hparams.get("channels_last", True), hparams.get("class_names", CLASS_NAMES)).eval()
    return LoadedNetwork(network, AugmentProfile(**config["augment"]), path)
