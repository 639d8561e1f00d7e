"""TTA views: ten-crop geometry, averaging, validation, and the same views in folded exports."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.transforms.v2.functional import ten_crop

from fer_lightning.inference.loading import EvalNetwork
from fer_lightning.module import FERClassifier
from fer_lightning.tta import average_logits, check_views, ten_crops, views_of


def pooled_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 7))


def test_ten_crop_is_torchvisions_crops_resized_back() -> None:
    x = torch.rand(3, 1, 48, 48)
    crops = ten_crops(x, 0.75)
    assert len(crops) == 10 and all(c.shape == x.shape for c in crops)
    reference = ten_crop(x, [36, 36])
    for mine, theirs in zip(crops, reference, strict=True):
        torch.testing.assert_close(mine, nn.functional.interpolate(theirs, size=(48, 48), mode="bilinear"))
    # crop 5 is the mirrored top-left crop: the mirror image of the top-right crop
    torch.testing.assert_close(crops[5], crops[1].flip(-1))


def test_ten_crop_of_a_constant_image_equals_the_identity_view() -> None:
    x = torch.full((2, 1, 48, 48), 0.3)
    net = pooled_net()
    torch.testing.assert_close(average_logits(net, x, ["ten_crop"]), net(x))


def test_views_are_averaged_in_order_and_counted() -> None:
    x = torch.rand(2, 1, 48, 48)
    net = pooled_net()
    views = ["identity", "hflip", "ten_crop"]
    batches = views_of(x, views)
    assert len(batches) == 12
    torch.testing.assert_close(batches[1], x.flip(-1))
    expected = torch.stack([net(b) for b in batches]).mean(0)
    torch.testing.assert_close(average_logits(net, x, views), expected)
    model = FERClassifier(net, tta=views, channels_last=False)
    torch.testing.assert_close(model.evaluation_logits(x), expected)
    torch.testing.assert_close(EvalNetwork(net, views, channels_last=False)(x), expected)


@pytest.mark.parametrize(("views", "crop", "message"), [
    ([], 0.9, "non-empty list"), (["rot90"], 0.9, "model.tta=\\['rot90'\\]"), (["ten_crop"], 1.0, "model.tta_crop=1.0"),
])
def test_bad_views_are_rejected_in_one_line(views: list[str], crop: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_views(views, crop)
    with pytest.raises(ValueError, match=message):
        FERClassifier(pooled_net(), tta=views, tta_crop=crop)
