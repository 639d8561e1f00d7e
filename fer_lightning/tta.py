"""Test-time augmentation: the views evaluation averages logits over, shared by FERClassifier and folded exports.

Views: `identity`; `hflip` (mirror the width axis); `ten_crop` (torchvision's ten crops: the four corners and
the centre, each also mirrored, of side `crop` x the input side, each resized back to the input size - the
classic FER-2013 ten-crop protocol, as a zoom of 1/crop the model's scale augmentation has seen).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from fer_lightning.schema import TTA_VIEWS  # the view names, declared once (torch-free)

TEN_CROP_FRACTION = 0.9


def check_views(views: Sequence[str], crop: float = TEN_CROP_FRACTION, key: str = "model.tta") -> None:
    """Raise ValueError (one line, naming `key` or `<key>_crop`) for an empty or unknown view list or a crop side
    that is not a fraction of the input side in (0, 1)."""
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
    batches: list[torch.Tensor] = []
    for view in views:
        if view == "identity":
            batches.append(x)
        elif view == "hflip":
            batches.append(x.flip(-1))
        elif view == "ten_crop":
            batches += ten_crops(x, crop)
        else:
            raise ValueError(f"unknown TTA view {view!r}: expected one of {', '.join(TTA_VIEWS)}")
    return batches


def average_logits(net: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, views: Sequence[str],
                   crop: float = TEN_CROP_FRACTION) -> torch.Tensor:
    """Mean of `net`'s float32 logits over the views (one forward pass per view batch)."""
    batches = views_of(x, views, crop)
    if len(batches) == 1:
        return net(batches[0]).float()
    return torch.stack([net(b).float() for b in batches]).mean(0)
