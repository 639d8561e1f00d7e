"""Mixup / CutMix on training batches (torchvision.transforms.v2) and the soft-target loss they need. timm's surface:
`mixup_alpha`, `cutmix_alpha` (0: off; both set: one of the two per batch), `mix_prob` (share of batches mixed)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.transforms import v2


def build_batch_mix(mixup_alpha: float, cutmix_alpha: float, mix_prob: float, num_classes: int) -> v2.Transform | None:
    """The (images, labels) -> (images, targets) transform for training batches, or None when mixing is off."""
    mixes = [mix(alpha=alpha, num_classes=num_classes)
             for mix, alpha in ((v2.MixUp, mixup_alpha), (v2.CutMix, cutmix_alpha)) if alpha > 0]
    if not mixes or mix_prob == 0:
        return None
    mix = mixes[0] if len(mixes) == 1 else v2.RandomChoice(mixes)
    return mix if mix_prob == 1 else v2.RandomApply([mix], p=mix_prob)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None,
                  label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy for class indices (F.cross_entropy) or label distributions [B, C]. For distributions the weighted
    mean divides by the targets' total weight (F.cross_entropy would divide by the batch size), so a one-hot
    distribution gives exactly the index loss, class weights and label smoothing included."""
    logits = logits.float()
    if targets.dim() == 1:
        return F.cross_entropy(logits, targets, weight=weight, label_smoothing=label_smoothing)
    targets = targets.float()
    smoothed = targets * (1.0 - label_smoothing) + label_smoothing / logits.shape[-1]
    class_weight = torch.ones_like(logits[0]) if weight is None else weight.to(logits.dtype)
    per_class = -(smoothed * class_weight) * F.log_softmax(logits, dim=-1)
    return per_class.sum() / (targets * class_weight).sum()
