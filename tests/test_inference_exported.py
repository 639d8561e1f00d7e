"""The exported model's consumer preprocessing resizes as the checkpoint's own eval transform does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fer_lightning.data.augment import AugmentProfile, BatchAugment
from fer_lightning.inference.exported import preprocess, preprocessing_contract


@pytest.mark.parametrize(("size", "channels", "interpolation"), [(224, 3, "bicubic"), (64, 1, "bilinear"),
                                                                 (40, 1, "bicubic"), (48, 1, "bilinear")])
def test_preprocess_matches_the_eval_transform(size: int, channels: int, interpolation: str) -> None:
    profile = AugmentProfile(image_size=size, channels=channels, mean=(0.4,) * channels, std=(0.2,) * channels,
                             interpolation=interpolation)
    faces = np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    contract = {"preprocessing": preprocessing_contract(profile, ["a"], ["identity"])}
    expected = BatchAugment(profile).eval(torch.from_numpy(faces)).numpy()
    got = preprocess(faces, contract)
    assert got.dtype == np.float32 and got.shape == expected.shape == (3, channels, size, size)
    assert np.abs(got - expected).max() < 1e-4
