from __future__ import annotations

import pytest
import torch
import yaml

from fer_lightning.config import CONFIG_DIR
from fer_lightning.data.augment import AugmentProfile, BatchAugment


def profile(name: str, **changes: object) -> AugmentProfile:
    with open(f"{CONFIG_DIR}/augment/{name}.yaml") as handle:
        return AugmentProfile(**{**yaml.safe_load(handle), **changes})


@pytest.fixture
def faces() -> torch.Tensor:
    return torch.randint(0, 256, (16, 48, 48), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_gray48_shapes_and_range(faces: torch.Tensor) -> None:
    aug = BatchAugment(profile("gray48"))
    for out in (aug.train(faces), aug.eval(faces)):
        assert out.shape == (16, 1, 48, 48) and out.dtype == torch.float32
        assert out.min() >= -1.0 and out.max() <= 1.0


def test_gray48_eval_is_only_normalisation(faces: torch.Tensor) -> None:
    out = BatchAugment(profile("gray48")).eval(faces)
    torch.testing.assert_close(out[:, 0], faces.float() / 255 * 2 - 1)


def test_imagenet_profile_resizes_to_three_normalised_channels(faces: torch.Tensor) -> None:
    aug = BatchAugment(profile("imagenet", image_size=96))
    train, evaluation = aug.train(faces), aug.eval(faces)
    assert train.shape == evaluation.shape == (16, 3, 96, 96)
    gray = evaluation[:, 0] * 0.229 + 0.485  # undo normalisation of channel 0: every channel is the same gray
    torch.testing.assert_close(evaluation[:, 2] * 0.225 + 0.406, gray, atol=1e-5, rtol=0)
    assert gray.min() >= 0 and gray.max() <= 1


def test_identity_parameters_reproduce_evaluation(faces: torch.Tensor) -> None:
    still = profile("gray48", hflip=0.0, translate_px=0, rotation=0.0, brightness=0.0, contrast=0.0)
    aug = BatchAugment(still)
    torch.testing.assert_close(aug.train(faces), aug.eval(faces), atol=1e-5, rtol=0)
    flipped = BatchAugment(profile("gray48", hflip=1.0, translate_px=0, rotation=0.0, brightness=0.0, contrast=0.0))
    torch.testing.assert_close(flipped.train(faces), aug.eval(faces).flip(-1), atol=1e-5, rtol=0)


def test_translation_is_a_whole_pixel_shift_with_black_padding() -> None:
    image = torch.zeros(1, 48, 48, dtype=torch.uint8)
    image[0, 20, 20] = 255
    aug = BatchAugment(profile("gray48", hflip=0.0, rotation=0.0, brightness=0.0, contrast=0.0, translate_px=4))
    for seed in range(5):
        out = aug.train(image, generator=torch.Generator().manual_seed(seed))[0, 0]
        peak = (out == out.max()).nonzero()
        assert len(peak) == 1 and out.max() == 1.0
        assert (peak[0] - 20).abs().max() <= 4


def test_same_seed_same_batch_and_every_sample_gets_its_own_parameters() -> None:
    same = torch.full((32, 48, 48), 128, dtype=torch.uint8)
    same[:, 10:30, 5:20] = 250  # an asymmetric shape so flips and shifts show
    for name in ("gray48", "imagenet"):
        aug = BatchAugment(profile(name, image_size=64) if name == "imagenet" else profile(name))
        a = aug.train(same, generator=torch.Generator().manual_seed(7))
        b = aug.train(same, generator=torch.Generator().manual_seed(7))
        c = aug.train(same, generator=torch.Generator().manual_seed(8))
        assert torch.equal(a, b)
        assert not torch.equal(a, c)
        distinct = {tuple(x.flatten()[::97].tolist()) for x in a}
        assert len(distinct) > 28, f"{name}: identical inputs should be augmented differently"


def test_random_erasing_zeroes_a_rectangle_of_the_requested_area() -> None:
    aug = BatchAugment(profile("imagenet", image_size=64, erasing_p=1.0, brightness=0.0, contrast=0.0))
    white = torch.full((64, 48, 48), 255, dtype=torch.uint8)
    still = BatchAugment(profile("imagenet", image_size=64, erasing_p=0.0, scale=[1.0, 1.0], ratio=[1.0, 1.0],
                                 rotation=0.0, hflip=0.0, brightness=0.0, contrast=0.0))
    out = aug.train(white, generator=torch.Generator().manual_seed(0))
    erased = (out[:, 0] == 0).float().mean(dim=(1, 2))
    assert (erased > 0.01).all() and (erased < 0.2).all()
    assert (still.train(white)[:, 0] != 0).all()


def test_profile_rejects_inconsistent_channels() -> None:
    with pytest.raises(ValueError, match="mean/std need 3 values"):
        AugmentProfile(channels=3, mean=(0.5,), std=(0.5,))
