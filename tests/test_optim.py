"""MuonAdamW: conv filters get Muon's orthogonalised step, everything else AdamW, in one optimizer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fer_lightning.models import FERCNN
from fer_lightning.optim import MuonAdamW


def test_groups_split_filters_from_the_rest_and_keep_names_and_lr_factors() -> None:
    net = FERCNN()
    head, body = list(net.classifier.parameters()), list(net.features.parameters())
    optimizer = MuonAdamW([{"params": body, "name": "backbone", "lr": 1e-3}, {"params": head, "name": "head"}],
                          lr=0.02, adam_lr=2e-3)
    groups = {g["name"]: g for g in optimizer.param_groups}
    assert set(groups) == {"backbone_muon", "backbone", "head"}
    assert all(p.ndim == 4 for p in groups["backbone_muon"]["params"]) and len(groups["backbone_muon"]["params"]) == 7
    assert all(p.ndim < 4 for p in groups["backbone"]["params"])
    assert groups["backbone_muon"]["lr"] == pytest.approx(0.01)  # the group's lr is half of adam_lr: Muon's too
    assert groups["backbone"]["lr"] == pytest.approx(1e-3) and groups["head"]["lr"] == pytest.approx(2e-3)


def test_a_filter_step_is_orthogonalised_whatever_the_gradient_scale() -> None:
    conv = nn.Conv2d(4, 8, 3).to(memory_format=torch.channels_last)  # channels-last grads, as in training
    optimizer = MuonAdamW(conv.parameters(), lr=1.0, momentum=0.0)
    steps = []
    for scale in (1e-3, 1e3):
        before = conv.weight.detach().clone()
        conv.weight.grad = torch.randn_like(conv.weight) * scale
        conv.bias.grad = torch.zeros_like(conv.bias)
        optimizer.step()
        steps.append((before - conv.weight.detach()).reshape(8, -1))
    for step in steps:  # rows of an (almost) orthogonal 8 x 36 matrix: singular values near 1, not near the scale
        singular = torch.linalg.svdvals(step.float())
        assert float(singular.min()) > 0.3 and float(singular.max()) < 1.6


def test_it_trains_the_cnn_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    net = FERCNN(dropout=0.0)
    optimizer = MuonAdamW(net.parameters(), lr=0.02)
    x, y = torch.randn(16, 1, 16, 16), torch.arange(16) % 7
    losses = []
    for _ in range(15):
        loss = nn.functional.cross_entropy(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]


def test_state_round_trips_through_state_dict() -> None:
    net = FERCNN()
    optimizer = MuonAdamW(net.parameters())
    net(torch.randn(4, 1, 16, 16)).sum().backward()
    optimizer.step()
    again = MuonAdamW(net.parameters())
    again.load_state_dict(optimizer.state_dict())
    assert {k for s in again.state.values() for k in s} == {"momentum_buffer", "exp_avg", "exp_avg_sq", "step"}


def test_without_the_muon_package_fast_muon_fails_in_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys

    from hydra.utils import instantiate

    import fer_lightning
    from fer_lightning.cli import expected_failure

    monkeypatch.setitem(sys.modules, "muon", None)  # `import muon` now raises ImportError
    monkeypatch.delitem(sys.modules, "fer_lightning.optim")
    monkeypatch.delattr(fer_lightning, "optim")
    with pytest.raises(ImportError, match=r"pip install fer_lightning\[muon\]"):
        importlib.import_module("fer_lightning.optim")
    with pytest.raises(Exception) as error:  # what train() meets: Hydra's InstantiationException around it
        instantiate({"_target_": "fer_lightning.optim.MuonAdamW", "_partial_": True})
    assert str(expected_failure(error.value)) == ("optimizer=fast_muon needs the optional muon-optimizer package: "
                                                  "pip install fer_lightning[muon]")
