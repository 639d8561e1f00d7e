"""FERDataModule for every source (challenge CSV, Kaggle folders, synthetic faces): each split is one uint8 tensor in
memory, a batch one tensor index (no worker processes), augmented on the model's device (`on_after_batch_transfer`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from lightning import LightningDataModule
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, RandomSampler, SequentialSampler, TensorDataset, WeightedRandomSampler

from fer_lightning.data import sources
from fer_lightning.data.augment import AugmentProfile, BatchAugment
from fer_lightning.data.splits import CLASS_NAMES, NUM_CLASSES, DataFormatError, Split
from fer_lightning.data.synthetic import make_splits


class TensorBatchDataset(TensorDataset):
    """Images, labels and optional per-image targets; `__getitems__` fetches a whole batch with one tensor index."""

    images = property(lambda self: self.tensors[0])
    labels = property(lambda self: self.tensors[1])

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        return self[torch.as_tensor(indices, dtype=torch.long, device=self.labels.device)]


def inverse_frequency_weights(labels: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """Class weights (N / (K * n_c)) ** power: 1 for every class when balanced, larger for rare classes. power 1 is
    the report's full correction; 0.5 corrects half-way and keeps more of the accuracy full rebalancing gives away."""
    counts = torch.bincount(labels, minlength=NUM_CLASSES).double()
    return ((counts.sum() / (NUM_CLASSES * counts)) ** power).float()


class FERDataModule(LightningDataModule):
    """Train = Training, val = PublicTest, test = PrivateTest from `sources.load_splits(path)` or synthetic faces (path
    None). `imbalance`: "none", "sampler" (one epoch = len(train)) or "weighted_loss" (`class_weights`, which
    FERClassifier takes in its `setup`). `device_resident`: the uint8 data on the device: True, False, "auto" (CUDA)."""

    def __init__(self, path: str | Path | None = None, synthetic: Mapping[str, int] | None = None,
                 cache_dir: str | Path | None = None, val_fraction: float = 0.1, split_seed: int = 0,
                 augment: Mapping[str, Any] | AugmentProfile | None = None, imbalance: str = "none",
                 imbalance_power: float = 1.0, batch_size: int = 256, eval_batch_size: int = 512,
                 device_resident: bool | str = "auto", required_splits: Sequence[str] = ("train", "val")) -> None:
        super().__init__()
        self.path, self.synthetic = path, dict(synthetic or {})
        self.cache_dir, self.val_fraction, self.split_seed = cache_dir, val_fraction, split_seed
        profile = augment if isinstance(augment, AugmentProfile) else AugmentProfile(**dict(augment or {}))
        self.augment = BatchAugment(profile)
        self.imbalance, self.imbalance_power = imbalance, imbalance_power
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.device_resident, self.required_splits = device_resident, tuple(required_splits)
        self.datasets: dict[str, TensorBatchDataset] = {}

    def load_splits(self) -> Mapping[str, Split]:
        if self.path is None:
            return make_splits(**self.synthetic)
        return sources.load_splits(self.path, self.cache_dir, val_fraction=self.val_fraction, seed=self.split_seed,
                                   required=self.required_splits)

    def setup(self, stage: str | None = None) -> None:
        if not self.datasets:
            self.datasets = {name: TensorBatchDataset(torch.from_numpy(split.images), torch.from_numpy(split.labels))
                             for name, split in self.load_splits().items()}
            for name in self.required_splits:
                if not self.has_split(name):
                    needed = " and ".join(self.required_splits)
                    raise DataFormatError(f"data: split {name!r} has no images; this run needs {needed}")
            counts = torch.bincount(self.datasets["train"].labels, minlength=NUM_CLASSES).tolist()
            missing = [name for name, n in zip(CLASS_NAMES, counts, strict=True) if n == 0]
            if self.imbalance != "none" and missing:
                raise DataFormatError(f"data: class(es) {', '.join(missing)} have no training images; "
                                      f"imbalance={self.imbalance} needs every class present (use imbalance=none)")
        device = self.trainer.strategy.root_device if self.trainer is not None else None
        auto = self.device_resident == "auto" and device is not None and device.type == "cuda"
        if device is not None and (self.device_resident is True or auto):
            # ~80 MB of uint8 for all of FER-2013: moved once, then every batch is an index on the device
            for name, data in self.datasets.items():
                self.datasets[name] = TensorBatchDataset(*(t.to(device) for t in data.tensors))

    def has_split(self, name: str) -> bool:
        return len(self.datasets.get(name, ())) > 0

    @property
    def class_weights(self) -> torch.Tensor | None:
        """Loss weights under `weighted_loss` only, so sampler and weighted loss are never combined."""
        weighted = self.imbalance == "weighted_loss"
        return inverse_frequency_weights(self.datasets["train"].labels, self.imbalance_power) if weighted else None

    def attach_train_targets(self, targets: torch.Tensor) -> None:
        """Per-image tensors that travel with each training image as a third batch element (a distillation
        teacher's cached log-probabilities), so every sampler keeps them paired with their images."""
        train = self.datasets["train"]
        self.datasets["train"] = TensorBatchDataset(train.images, train.labels, targets.to(train.labels.device))

    def train_dataloader(self) -> DataLoader:
        dataset = self.datasets["train"]
        if self.imbalance == "sampler":
            labels = dataset.labels.cpu()
            per_class = inverse_frequency_weights(labels, self.imbalance_power).double()
            sampler = WeightedRandomSampler(per_class[labels], num_samples=len(dataset), replacement=True)
        else:
            sampler = RandomSampler(dataset)
        # collate_fn: `__getitems__` already returns the batch as a tuple of tensors
        return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler, collate_fn=tuple)

    def _eval_loader(self, name: str) -> DataLoader:
        """In order; under DDP every world_size-th image per rank, without the repeated images that Lightning's
        default DistributedSampler pads with, so the metrics summed over the ranks count every image once."""
        sampler = SequentialSampler(self.datasets[name])
        if self.trainer is not None and self.trainer.world_size > 1:
            sampler = UnrepeatedDistributedSampler(self.datasets[name], num_replicas=self.trainer.world_size,
                                                   rank=self.trainer.global_rank, shuffle=False)
        return DataLoader(self.datasets[name], batch_size=self.eval_batch_size, sampler=sampler, collate_fn=tuple)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        if not self.has_split("test"):
            raise DataFormatError("data: the test split (PrivateTest) is empty in this source; evaluate on val")
        return self._eval_loader("test")

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Augment on the device the model runs on: random per sample while fitting, resize/normalise otherwise."""
        images, labels, *targets = batch
        training = self.trainer is not None and self.trainer.training
        return (self.augment.train(images) if training else self.augment.eval(images)), labels, *targets
