from __future__ import annotations

import math

import pytest
import torch

from fer_lightning import schedulers


def optimizer(lr: float = 1.0) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def lrs(config: dict, n: int) -> list[float]:
    """LR in force at t = 0..n-1 (the scheduler stepped once per unit)."""
    opt, sched = config["scheduler"].optimizer, config["scheduler"]
    values = []
    for _ in range(n):
        values.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return values


def test_cosine_matches_the_reports_formula() -> None:
    config = schedulers.cosine(optimizer(0.1), max_epochs=10, steps_per_epoch=7)
    assert config["interval"] == "epoch"
    expected = [0.5 * 0.1 * (1 + math.cos(t * math.pi / 10)) for t in range(10)]
    assert lrs(config, 10) == pytest.approx(expected)


def test_cosine_per_step_spans_all_steps() -> None:
    config = schedulers.cosine(optimizer(), max_epochs=2, steps_per_epoch=5, interval="step")
    values = lrs(config, 10)
    assert config["interval"] == "step"
    assert values[5] == pytest.approx(0.5 * (1 + math.cos(5 * math.pi / 10)))


def test_linear_matches_the_reports_formula() -> None:
    values = lrs(schedulers.linear(optimizer(0.2), max_epochs=4, steps_per_epoch=1), 4)
    assert values == pytest.approx([0.2, 0.15, 0.1, 0.05])


def test_inverse_sqrt_matches_the_reports_formula() -> None:
    values = lrs(schedulers.inverse_sqrt(optimizer(1.0), max_epochs=9, steps_per_epoch=1), 9)
    assert values == pytest.approx([1 / math.sqrt(t) for t in range(1, 10)])


def test_warmup_then_cosine() -> None:
    config = schedulers.warmup_cosine(optimizer(1.0), max_epochs=10, steps_per_epoch=2, warmup_epochs=2)
    values = lrs(config, 20)
    assert values[:4] == pytest.approx([0.2, 0.4, 0.6, 0.8])  # 4 warmup steps rising linearly
    assert values[4] == pytest.approx(1.0)
    assert values[12] == pytest.approx(0.5 * (1 + math.cos(math.pi * 8 / 16)))
    assert values == sorted(values[:5]) + sorted(values[4:], reverse=True)[1:]


def test_plateau_halves_after_patience_epochs_without_improvement() -> None:
    config = schedulers.plateau(optimizer(1.0), max_epochs=20, steps_per_epoch=3, factor=0.5, patience=2)
    assert config["monitor"] == "val/acc" and config["interval"] == "epoch"
    sched, opt = config["scheduler"], config["scheduler"].optimizer
    seen = []
    for accuracy in [0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.7]:
        sched.step(accuracy)
        seen.append(opt.param_groups[0]["lr"])
    # 0.6 stops improving at epoch 1; the third epoch beyond patience 2 halves the LR; 0.7 improves again
    assert seen == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5]


def test_schedulers_scale_every_param_group() -> None:
    opt = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 1.0},
                           {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.01}], lr=1.0)
    sched = schedulers.linear(opt, max_epochs=2, steps_per_epoch=1)["scheduler"]
    opt.step()
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.5, 0.005])
