"""The preprocessing contract: what a 48x48 gray face goes through to become the network's input, from the
checkpoint's AugmentProfile (what `BatchAugment.eval` applies); written into prediction tables and export
sidecars, so a consumer outside this package can reproduce the input exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fer_lightning.data.augment import AugmentProfile
from fer_lightning.data.splits import IMAGE_SIZE


def preprocessing_contract(profile: AugmentProfile, class_names: Sequence[str], tta: Sequence[str]) -> dict[str, Any]:
    """Plain-JSON description of the evaluation transform of `profile`, plus the classes and TTA views."""
    size, channels = profile.image_size, profile.channels
    steps = ["x = float32(face) / 255  (face: uint8 [48, 48] grayscale)"]
    if size != IMAGE_SIZE:
        steps.append(f"resize to {size}x{size}, {profile.interpolation}, align_corners=False "
                     "(torch.nn.functional.interpolate), clamp to [0, 1]")
    if channels > 1:
        steps.append(f"repeat the gray channel {channels} times")
    steps.append("x = (x - mean[c]) / std[c]")
    return {
        "face": {"size": [IMAGE_SIZE, IMAGE_SIZE], "dtype": "uint8",
                 "color": "grayscale, ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B)"},
        "input_shape": ["batch", channels, size, size], "layout": "NCHW", "dtype": "float32",
        "image_size": size, "channels": channels,
        "mean": [float(m) for m in profile.mean], "std": [float(s) for s in profile.std],
        "interpolation": profile.interpolation, "steps": steps, "class_names": list(class_names), "tta": list(tta),
        "tta_rule": ("average the logits over the views (hflip = flip the width axis; ten_crop = "
                     "fer_lightning.tta.ten_crops, exported folded only), then softmax"),
    }
