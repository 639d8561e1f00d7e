"""Ensembles (for evaluation and distillation teachers): several checkpoints, each with its own TTA views, as one
classifier whose probabilities are the mean of its members' softmax probabilities (the deep-ensemble rule)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fer_lightning.data.augment import AugmentProfile
from fer_lightning.inference.loading import CheckpointError, EvalNetwork, load_network
from fer_lightning.runrecord import RECORD_NAME, completed_record

# the input-profile fields that define what a network sees at evaluation (the rest only perturbs training)
INPUT_FIELDS = ("image_size", "channels", "mean", "std", "interpolation")


def mean_probabilities(member_logits: Sequence[torch.Tensor]) -> torch.Tensor:
    """The ensemble rule: the mean over members of softmax(logits), [B, K] from K-class logits [B, K] each."""
    return torch.stack([logits.float().softmax(dim=-1) for logits in member_logits]).mean(0)


def input_signature(profile: AugmentProfile) -> tuple[Any, ...]:
    """What two networks must share to be fed the same evaluation batch."""
    return tuple(tuple(v) if isinstance(v, list | tuple) else v for v in (getattr(profile, f) for f in INPUT_FIELDS))


class Ensemble(nn.Module):
    """Checkpoints' networks (EvalNetwork: logits) -> log of their mean probability, so a softmax of its output gives
    the mean back and a cross-entropy on it is the ensemble's negative log-likelihood; with their input and classes."""

    def __init__(self, members: Sequence[EvalNetwork], profile: AugmentProfile, paths: Sequence[Path]) -> None:
        super().__init__()
        self.members, self.profile, self.paths = nn.ModuleList(members), profile, list(paths)
        self.class_names = members[0].class_names

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mean_probabilities([member(x) for member in self.members]).clamp_min(1e-12).log()


MEMBER_RULES = ("every member needs the same classes in the same order",
                "every member needs the same input profile (network family)")


def check_members(paths: Sequence[Path | str], profiles: Sequence[AugmentProfile],
                  class_names: Sequence[Sequence[str]], key: str = "ckpt_path", rules: tuple[str, str] = MEMBER_RULES,
                  error: type[ValueError] = CheckpointError) -> None:
    """One line naming the first member whose classes or input differ from the first one's, and the rule."""
    for path, profile, names in zip(paths[1:], profiles[1:], class_names[1:], strict=True):
        if tuple(names) != tuple(class_names[0]):
            raise error(f"{key}: {path} predicts classes {list(names)}, {paths[0]} {list(class_names[0])}; {rules[0]}")
        if input_signature(profile) != input_signature(profiles[0]):
            raise error(f"{key}: {path} takes {profile.image_size} px x {profile.channels} channel input, {paths[0]} "
                        f"{profiles[0].image_size} px x {profiles[0].channels}; {rules[1]}")


def load_ensemble(paths: Sequence[str | Path], tta: Sequence[str] | None = None, tta_crop: float | None = None,
                  key: str = "ckpt_path") -> Ensemble:
    """The checkpoints as one Ensemble (eval mode, CPU); `tta`/`tta_crop` replace every member's own views."""
    loaded = [load_network(path) for path in paths]
    check_members([item.path for item in loaded], [item.profile for item in loaded],
                  [item.network.class_names for item in loaded], key)
    for item in loaded:
        item.network.set_tta(tta, tta_crop)
    return Ensemble([item.network for item in loaded], loaded[0].profile, [item.path for item in loaded]).eval()


def run_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint a finished training run reported (its metrics.json `evaluated.ckpt_path`), else its last.ckpt."""
    evaluated = ((completed_record(run_dir) or {}).get("evaluated") or {}).get("ckpt_path")
    return next((Path(p) for p in (evaluated, run_dir / "checkpoints" / "last.ckpt") if p and Path(p).is_file()), None)


def checkpoint_paths(spec: Any, key: str = "ckpt_path") -> list[str]:
    """`ckpt_path` as given: a checkpoint, a list, or a folder of training runs (each run's reported checkpoint)."""
    if isinstance(spec, Sequence) and not isinstance(spec, str):  # a list, also OmegaConf's
        return [str(item) for item in spec]
    path = Path(str(spec))
    if not path.is_dir():
        return [str(spec)]
    runs = sorted({p.parent for p in path.rglob(RECORD_NAME)} | {p.parent.parent for p in path.rglob("last.ckpt")})
    if not (found := [checkpoint for checkpoint in map(run_checkpoint, runs) if checkpoint is not None]):
        raise CheckpointError(f"{key}={spec}: a folder with no training run in it (no {RECORD_NAME} or "
                              "checkpoints/last.ckpt); give a .ckpt file, a list [a.ckpt,b.ckpt], or a sweep folder")
    return [str(checkpoint) for checkpoint in found]
