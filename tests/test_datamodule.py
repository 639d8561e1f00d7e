from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from omegaconf import DictConfig

from fer_lightning.data import DataFormatError, FERDataModule, Split
from fer_lightning.data.datamodule import inverse_frequency_weights

COUNTS = [400, 40, 300, 700, 450, 300, 460]  # FER-2013-like imbalance


def imbalanced(counts: list[int], seed: int = 0) -> Split:
    labels = np.repeat(np.arange(len(counts)), counts).astype(np.int64)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (len(labels), 48, 48), dtype=np.uint8)
    images[:, 0, 0] = labels  # lets a test recover the label from the image
    return Split(images, labels)


def datamodule(imbalance: str = "none", counts: list[int] = COUNTS, **kwargs: object) -> FERDataModule:
    dm = FERDataModule(imbalance=imbalance, batch_size=64, eval_batch_size=100, **kwargs)
    splits = {"train": imbalanced(counts), "val": imbalanced([5] * 7, 1), "test": Split.empty()}
    dm.load_splits = lambda: splits  # type: ignore[method-assign]
    dm.setup("fit")
    return dm


def test_batches_are_tensor_slices_with_matching_labels() -> None:
    dm = datamodule()
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (64, 48, 48) and images.dtype == torch.uint8 and labels.dtype == torch.int64
    assert torch.equal(images[:, 0, 0].long(), labels)
    val_batches = list(dm.val_dataloader())
    assert sum(len(b[1]) for b in val_batches) == 35
    assert sum(len(b[1]) for b in dm.train_dataloader()) == sum(COUNTS)


def test_sampler_balances_classes_over_an_epoch() -> None:
    torch.manual_seed(0)
    dm = datamodule("sampler")
    labels = torch.cat([b[1] for b in dm.train_dataloader()])
    assert len(labels) == sum(COUNTS)  # one epoch = len(train)
    freq = torch.bincount(labels, minlength=7).float() / len(labels)
    assert torch.allclose(freq, torch.full((7,), 1 / 7), atol=0.02), freq
    assert dm.class_weights is None  # never both


def test_sampler_is_reproducible_under_a_seed() -> None:
    dm = datamodule("sampler")
    torch.manual_seed(3)
    first = torch.cat([b[1] for b in dm.train_dataloader()])
    torch.manual_seed(3)
    second = torch.cat([b[1] for b in dm.train_dataloader()])
    assert torch.equal(first, second)


def test_class_weights_formula_and_strategy() -> None:
    labels = torch.tensor([0, 0, 0, 1, 2, 2, 3, 4, 5, 6, 6, 6])
    counts = torch.bincount(labels, minlength=7).float()
    torch.testing.assert_close(inverse_frequency_weights(labels), 12 / (7 * counts))
    balanced = inverse_frequency_weights(torch.arange(7).repeat(5))
    torch.testing.assert_close(balanced, torch.ones(7))
    assert datamodule("none").class_weights is None
    weights = datamodule("weighted_loss").class_weights
    expected = torch.tensor([sum(COUNTS) / (7 * c) for c in COUNTS])
    torch.testing.assert_close(weights, expected)


def test_power_softens_the_correction_for_loss_and_sampler(make_cfg: Callable[..., DictConfig]) -> None:
    full = torch.tensor([sum(COUNTS) / (7 * c) for c in COUNTS])
    torch.testing.assert_close(datamodule("weighted_loss", imbalance_power=0.5).class_weights, full.sqrt())
    assert torch.equal(datamodule("weighted_loss", imbalance_power=0.0).class_weights, torch.ones(7))
    torch.manual_seed(0)
    labels = torch.cat([b[1] for b in datamodule("sampler", imbalance_power=0.5).train_dataloader()])
    freq = torch.bincount(labels, minlength=7).float() / len(labels)
    counts = torch.tensor(COUNTS, dtype=torch.float32)
    expected = counts.sqrt() / counts.sqrt().sum()  # n_c * n_c ** -0.5, normalised
    assert torch.allclose(freq, expected, atol=0.02), (freq, expected)
    from fer_lightning.schema import problem  # the range is declared once, in the schema
    assert "imbalance.power=-1" in problem(make_cfg("imbalance=sampler", "imbalance.power=-1"), "train")


@pytest.mark.parametrize("strategy", ["sampler", "weighted_loss"])
def test_balancing_needs_every_class(strategy: str) -> None:
    with pytest.raises(DataFormatError, match=rf"disgust have no training images; imbalance={strategy}"):
        datamodule(strategy, counts=[10, 0, 10, 10, 10, 10, 10])
    datamodule("none", counts=[10, 0, 10, 10, 10, 10, 10])  # fine without balancing


def test_empty_val_split_is_an_error() -> None:
    dm = FERDataModule()
    dm.load_splits = lambda: {"train": imbalanced([3] * 7), "val": Split.empty(), "test": Split.empty()}  # type: ignore[method-assign]
    with pytest.raises(DataFormatError, match="split 'val' has no images"):
        dm.setup("fit")


def test_missing_test_split_is_reported_not_crashed() -> None:
    dm = datamodule()
    assert not dm.has_split("test")
    with pytest.raises(DataFormatError, match="test split"):
        dm.test_dataloader()


def test_augmentation_runs_after_transfer_train_vs_eval() -> None:
    dm = datamodule(augment={"rotation": 0.0})
    batch = next(iter(dm.val_dataloader()))

    class FakeTrainer:
        training = True

    dm.trainer = FakeTrainer()  # type: ignore[assignment]
    train_x, labels = dm.on_after_batch_transfer(batch, 0)
    FakeTrainer.training = False
    eval_x, _ = dm.on_after_batch_transfer(batch, 0)
    assert train_x.shape == eval_x.shape == (35, 1, 48, 48)
    torch.testing.assert_close(eval_x[:, 0], batch[0].float() / 127.5 - 1)
    assert not torch.allclose(train_x, eval_x)
    assert torch.equal(labels, batch[1])


def test_device_resident_data_is_moved_once_to_the_trainers_device() -> None:
    class FakeStrategy:
        root_device = torch.device("cpu")

    class FakeTrainer:
        strategy = FakeStrategy()
        training = True

    dm = datamodule("sampler", device_resident=True)
    dm.trainer = FakeTrainer()  # type: ignore[assignment]
    dm.setup("fit")
    images, labels = next(iter(dm.train_dataloader()))
    assert images.device == labels.device == torch.device("cpu") and images.dtype == torch.uint8
    assert torch.equal(images[:, 0, 0].long(), labels)
    auto = datamodule(device_resident="auto")
    auto.trainer = FakeTrainer()  # type: ignore[assignment]
    before = auto.datasets["train"].images
    auto.setup("fit")
    assert auto.datasets["train"].images is before  # auto: only CUDA devices get a copy
