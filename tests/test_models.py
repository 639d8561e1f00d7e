from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch
from torchvision.models import ResNet18_Weights, resnet18

from fer_lightning.models import FERCNN, ResNet18Classifier


def test_cnn_has_the_reports_parameter_count_and_output_shape() -> None:
    model = FERCNN(dropout=0.55)
    assert sum(p.numel() for p in model.parameters()) == 584_807
    assert model(torch.zeros(3, 1, 48, 48)).shape == (3, 7)
    assert model(torch.zeros(2, 1, 40, 40)).shape == (2, 7)  # ten-crop sized inputs work through the global pool


def test_cnn_dropout_comes_from_the_argument() -> None:
    dropouts = [m for m in FERCNN(dropout=0.3).modules() if isinstance(m, torch.nn.Dropout2d)]
    assert [d.p for d in dropouts] == [0.3]


def test_cnn_dirac_init_starts_each_conv_as_the_identity_of_its_input() -> None:
    model = FERCNN(init="dirac")
    assert sum(p.numel() for p in model.parameters()) == 584_807
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    for conv in convs:
        identity = torch.zeros_like(conv.weight[: conv.in_channels])
        identity[range(conv.in_channels), range(conv.in_channels), 1, 1] = 1
        assert torch.equal(conv.weight[: conv.in_channels], identity)
        assert not conv.bias.any()
        if conv.out_channels > conv.in_channels:  # the extra filters keep their random init
            assert conv.weight[conv.in_channels:].abs().sum() > 0
    x = torch.randn(1, 32, 6, 6)  # the second block's first conv (32 -> 64) passes its input through
    assert torch.allclose(convs[2](x)[:, :32], x)


def test_resnet_splits_backbone_and_head() -> None:
    model = ResNet18Classifier(weights=None, dropout=0.2)
    assert isinstance(model.head[0], torch.nn.Dropout) and model.head[-1].in_features == 512
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 7)
    assert sum(p.numel() for p in model.backbone.parameters()) == 11_176_512


def test_resnet_loads_a_local_state_dict(tmp_path: Path) -> None:
    reference = resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    model = ResNet18Classifier(weights=str(path))
    assert torch.equal(model.backbone.conv1.weight, reference.conv1.weight)
    assert torch.equal(model.backbone.layer4[1].bn2.running_var, reference.layer4[1].bn2.running_var)


def test_resnet_imagenet_offline_names_where_to_put_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(ResNet18_Weights.IMAGENET1K_V1, "get_state_dict", offline, raising=False)
    monkeypatch.setattr(type(ResNet18_Weights.IMAGENET1K_V1), "get_state_dict", offline)
    with pytest.raises(RuntimeError, match=r"resnet18-f37072fd\.pth.*checkpoints"):
        ResNet18Classifier(weights="imagenet")


def test_resnet_rejects_missing_or_wrong_weight_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        ResNet18Classifier(weights=str(tmp_path / "missing.pth"))
    bad = tmp_path / "bad.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, bad)
    with pytest.raises((ValueError, RuntimeError)):
        ResNet18Classifier(weights=str(bad))
