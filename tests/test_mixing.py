from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from fer_lightning.jobs.train import train
from fer_lightning.mixing import build_batch_mix, cross_entropy


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
def test_one_hot_distributions_give_the_index_loss(label_smoothing: float, weighted: bool) -> None:
    torch.manual_seed(0)
    logits, labels = torch.randn(12, 7), torch.randint(0, 7, (12,))
    weight = torch.rand(7) + 0.5 if weighted else None
    expected = F.cross_entropy(logits, labels, weight=weight, label_smoothing=label_smoothing)
    soft = cross_entropy(logits, F.one_hot(labels, 7).float(), weight, label_smoothing)
    torch.testing.assert_close(soft, expected)
    torch.testing.assert_close(cross_entropy(logits, labels, weight, label_smoothing), expected)


def test_a_half_half_mix_costs_the_mean_of_its_two_labels() -> None:
    logits = torch.randn(1, 7)
    mixed = cross_entropy(logits, torch.tensor([[0.5, 0.5, 0, 0, 0, 0, 0]]))
    halves = [F.cross_entropy(logits, torch.tensor([c])) for c in (0, 1)]
    torch.testing.assert_close(mixed, (halves[0] + halves[1]) / 2)


def test_mixing_is_off_unless_an_alpha_and_a_probability_are_set() -> None:
    assert build_batch_mix(0.0, 0.0, 1.0, 7) is None
    assert build_batch_mix(0.2, 1.0, 0.0, 7) is None
    assert build_batch_mix(0.2, 0.0, 1.0, 7) is not None


@pytest.mark.parametrize("override", ["model.mixup_alpha=-0.1", "model.cutmix_alpha=-1.0", "model.mix_prob=1.5"])
def test_bad_mixing_values_name_their_key(override: str, make_cfg: Callable[..., DictConfig]) -> None:
    from fer_lightning.schema import problem  # the ranges are declared once, in the schema

    assert problem(make_cfg(override), "train").startswith(f"{override}: expected a number >= 0")


def test_mixup_mixes_images_and_labels_with_the_same_weight() -> None:
    torch.manual_seed(0)
    images, labels = torch.rand(6, 1, 48, 48), torch.arange(6)
    mixed, targets = build_batch_mix(0.4, 0.0, 1.0, 7)(images, labels)
    assert targets.shape == (6, 7)
    torch.testing.assert_close(targets.sum(dim=1), torch.ones(6))
    lam = targets[0, 0].item()  # image 0 is mixed with image 5 (torchvision rolls the batch by one)
    assert 0.0 < lam < 1.0 and targets[0, 5].item() == pytest.approx(1 - lam)
    torch.testing.assert_close(mixed[0], lam * images[0] + (1 - lam) * images[5])


def test_cutmix_pastes_a_box_and_weights_labels_by_its_area() -> None:
    torch.manual_seed(1)
    images, labels = torch.zeros(4, 1, 48, 48), torch.tensor([0, 1, 2, 3])
    images[1:] = 1.0  # image 0 is black; the box pasted into it comes from image 3 (white)
    mixed, targets = build_batch_mix(0.0, 1.0, 1.0, 7)(images, labels)
    pasted = mixed[0].mean().item()
    assert 0.0 < pasted < 1.0
    torch.testing.assert_close(targets[0, 3].item(), pasted)  # label weight of the donor = its area share
    torch.testing.assert_close(targets[0, 0].item(), 1 - pasted)


def test_training_with_mixup_and_cutmix_runs_end_to_end(make_cfg: Callable[..., DictConfig]) -> None:
    cfg = make_cfg("debug=fast_dev_run", "model.mixup_alpha=0.2", "model.cutmix_alpha=1.0", "model.mix_prob=0.8",
                   "imbalance=weighted_loss", "model.label_smoothing=0.1")
    assert train(cfg)["status"] == "completed"
