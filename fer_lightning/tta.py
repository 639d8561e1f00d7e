"""Test-time augmentation: the views evaluation averages logits over (identity, hflip, ten_crop: the classic
FER-2013 protocol), shared by FERClassifier and folded exports."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from fer_lightning.schema import TTA_VIEWS  # the view names, declared once (torch-free)

TEN_CROP_FRACTION = 0.9


def check_views(views: Sequence[str], crop: float = TEN_CROP_FRACTION, key: str = "model.tta") -> None:
    """A one-line ValueError naming `key` for an empty or unknown view list or a crop side outside (0, 1)."""
    if isinstance(views, str) or not views or any(v not in TTA_VIEWS for v in views):
        shown = views if isinstance(views, str) else list(views)
        raise ValueError(f"{key}={shown}: expected a non-empty list of {', '.join(TTA_VIEWS)}")
    if isinstance(crop, bool) or not isinstance(crop, int | float) or not 0.0 < crop < 1.0:
        raise ValueError(f"{key}_crop={crop}: expected a fraction of the input side in (0, 1)")


def ten_crops(x: torch.Tensor, crop: float = TEN_CROP_FRACTION) -> list[torch.Tensor]:
    """torchvision's ten_crop (tl, tr, bl, br, centre of x, then of x mirrored), each resized back to x's size.
    Sliced here rather than imported: importing torchvision took ~2 s of predict's ~3 s cold start."""
    height, width = x.shape[-2:]
    h, w = max(1, round(crop * height)), max(1, round(crop * width))
    corners = [(0, 0), (0, width - w), (height - h, 0), (height - h, width - w),
               (round((height - h) / 2), round((width - w) / 2))]
    crops = [image[..., top : top + h, left : left + w] for image in (x, x.flip(-1)) for top, left in corners]
    return [F.interpolate(c, size=(height, width), mode="bilinear", align_corners=False) for c in crops]


def views_of(x: torch.Tensor, views: Sequence[str], crop: float = TEN_CROP_FRACTION) -> list[torch.Tensor]:
    """The batch `x` [B, C, H, W] under each view, in order (ten_crop contributes ten batches)."""
    view_batches = {"identity": lambda: [x], "hflip": lambda: [x.flip(-1)], "ten_crop": lambda: ten_crops(x, crop)}
    return [batch for view in views for batch in view_batches[view]()]


def average_logits(net: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, views: Sequence[str],
                   crop: float = TEN_CROP_FRACTION) -> torch.Tensor:
    """Mean of `net`'s float32 logits over the views (one forward pass per view batch)."""
    logits = [net(batch).float() for batch in views_of(x, views, crop)]
    return logits[0] if len(logits) == 1 else torch.stack(logits).mean(0)
