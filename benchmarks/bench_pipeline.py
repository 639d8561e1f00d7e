"""Training throughput of the report's CNN at batch 256: the report's input pipeline vs this package's.

    python benchmarks/bench_pipeline.py [--batches 20] [--data PATH] [--threads N] [--batch 256] [--cases b c]
        [--keep-freed-memory]

(a) report: torchvision PIL transforms per image + DataLoader collate, fp32 NCHW, plain PyTorch loop.
(b) package, plain loop: batches by tensor indexing, batched augmentation (BatchAugment), channels_last + bf16
    autocast when the CPU supports it (fer_lightning.config.fast_precision) - the same loop otherwise.
(c) package through Lightning: FERDataModule + FERClassifier + Trainer.fit, the path `fer_lightning.train` runs.
Also (d), model only on fixed tensors, for each precision/memory-format combination.
--keep-freed-memory applies what `fer_lightning.train` applies (fer_lightning.allocator): run the benchmark with
and without it, in separate processes, to see what it buys.
Each case prints one JSON line; a summary table with the per-part time split follows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable, Iterator
from functools import partial

import lightning as L
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from fer_lightning.allocator import keep_freed_memory
from fer_lightning.config import fast_precision
from fer_lightning.data import FERDataModule, Split
from fer_lightning.data.augment import AugmentProfile, BatchAugment
from fer_lightning.data.synthetic import make_splits
from fer_lightning.models import FERCNN
from fer_lightning.module import FERClassifier

BATCH = 256


class PILDataset(Dataset):
    """The report's data path: one PIL image per sample through torchvision transforms."""

    def __init__(self, split: Split) -> None:
        self.split = split
        self.transform = transforms.Compose([
            transforms.RandomHorizontalFlip(),
            transforms.RandomCrop(48, padding=4),
            transforms.RandomRotation(10),
            transforms.ColorJitter(brightness=0.2, contrast=0.2),
            transforms.ToTensor(),
            transforms.Normalize((0.5,), (0.5,)),
        ])

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.split.images[i])), int(self.split.labels[i])


def timed_loop(batches: Iterator, model: torch.nn.Module, prepare: Callable, autocast: bool, n: int) -> dict:
    """Train n batches after 2 warm-up batches; time data (fetch + augment), forward+backward, optimizer."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1.7e-3, weight_decay=1.8e-5)
    loss_fn = torch.nn.CrossEntropyLoss()
    parts = {"data": 0.0, "forward_backward": 0.0, "optimizer": 0.0}
    images_seen = 0
    for step in range(n + 2):
        t0 = time.perf_counter()
        x, y = prepare(*next(batches))
        t1 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = loss_fn(model(x).float(), y)
        loss.backward()
        t2 = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        t3 = time.perf_counter()
        if step >= 2:
            parts["data"] += t1 - t0
            parts["forward_backward"] += t2 - t1
            parts["optimizer"] += t3 - t2
            images_seen += len(y)
    total = sum(parts.values())
    return {"images_per_s": images_seen / total, "seconds": total,
            "split": {k: round(v / total, 3) for k, v in parts.items()}}


def forever(loader: DataLoader) -> Iterator:
    while True:
        yield from loader


def report_pipeline(train: Split, n: int, workers: int) -> dict:
    loader = DataLoader(PILDataset(train), batch_size=BATCH, shuffle=True, drop_last=True, num_workers=workers,
                        persistent_workers=workers > 0)
    model = FERCNN().train()
    return timed_loop(forever(loader), model, lambda x, y: (x, y), autocast=False, n=n)


def package_pipeline(train: Split, n: int, bf16: bool, channels_last: bool) -> dict:
    dm = FERDataModule(batch_size=BATCH)
    dm.load_splits = lambda: {"train": train, "val": train, "test": Split.empty()}  # type: ignore[method-assign]
    dm.setup("fit")
    augment = BatchAugment(AugmentProfile())
    model = FERCNN().train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)

    def prepare(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = augment.train(images)
        return (x.contiguous(memory_format=torch.channels_last) if channels_last else x), labels

    return timed_loop(forever(dm.train_dataloader()), model, prepare, autocast=bf16, n=n)


def lightning_pipeline(train: Split, n: int, precision: str) -> dict:
    dm = FERDataModule(batch_size=BATCH)
    dm.load_splits = lambda: {"train": train, "val": train, "test": Split.empty()}  # type: ignore[method-assign]
    model = FERClassifier(FERCNN(), optimizer=partial(torch.optim.AdamW, lr=1.7e-3, weight_decay=1.8e-5))
    trainer = L.Trainer(max_epochs=1, limit_train_batches=n + 2, limit_val_batches=0, precision=precision,
                        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0)

    class Clock(L.Callback):
        start = 0.0

        def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
            if trainer.global_step == 2:
                Clock.start = time.perf_counter()

    trainer.callbacks.append(Clock())
    trainer.fit(model, datamodule=dm)
    seconds = time.perf_counter() - Clock.start
    return {"images_per_s": n * BATCH / seconds, "seconds": seconds, "split": None}


def model_only(n: int, bf16: bool, channels_last: bool) -> dict:
    x, y = torch.randn(BATCH, 1, 48, 48), torch.randint(0, 7, (BATCH,))
    model = FERCNN().train()
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)

    def batches() -> Iterator:
        while True:
            yield x, y

    return timed_loop(batches(), model, lambda a, b: (a, b), autocast=bf16, n=n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=20, help="timed batches per case (after 2 warm-up)")
    parser.add_argument("--data", default=None, help="FER-2013 path (default: synthetic faces; speed is the same)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers for the report's pipeline")
    parser.add_argument("--batch", type=int, default=256, help="training batch size (the report's: 256)")
    parser.add_argument("--cases", nargs="+", default=None, help="run only these cases (prefixes: a, b, c, d)")
    parser.add_argument("--keep-freed-memory", action="store_true", help="glibc keeps freed memory, as train does")
    args = parser.parse_args()
    global BATCH
    BATCH = args.batch
    if args.keep_freed_memory and not keep_freed_memory():
        parser.error("--keep-freed-memory: this C library is not glibc")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.data:
        from fer_lightning.data.sources import load_splits

        train = load_splits(args.data, cache_dir="outputs/cache")["train"]
    else:
        train = make_splits(n_train=BATCH * (args.batches + 4), n_val=0, n_test=0)["train"]
    fast = fast_precision() == "bf16-mixed"
    machine = {"processor": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
               "torch": torch.__version__, "bf16": fast, "batch": BATCH, "keep_freed_memory": args.keep_freed_memory}
    cases = {
        "a_report_pil_dataloader_fp32": lambda: report_pipeline(train, args.batches, args.workers),
        "b_package_plain_loop": lambda: package_pipeline(train, args.batches, bf16=fast, channels_last=True),
        "c_package_lightning": lambda: lightning_pipeline(train, args.batches, "bf16-mixed" if fast else "32-true"),
        "d_model_only_fp32_nchw": lambda: model_only(args.batches, bf16=False, channels_last=False),
        "d_model_only_fp32_channels_last": lambda: model_only(args.batches, bf16=False, channels_last=True),
        "d_model_only_bf16_channels_last": lambda: model_only(args.batches, bf16=True, channels_last=True),
    }
    if args.cases:
        cases = {name: run for name, run in cases.items() if name.startswith(tuple(args.cases))}
    results = {}
    for name, run in cases.items():
        results[name] = run()
        print(json.dumps({"case": name, **{k: (round(v, 2) if isinstance(v, float) else v)
                                           for k, v in results[name].items()}, "machine": machine}), flush=True)
    base = results.get("a_report_pil_dataloader_fp32", {}).get("images_per_s", float("nan"))
    print(f"\n{'case':36s} {'img/s':>8s} {'x (a)':>6s}  data / fwd+bwd / optimizer")
    for name, r in results.items():
        split = r["split"]
        parts = " / ".join(f"{100 * split[k]:.0f}%" for k in split) if split else "-"
        print(f"{name:36s} {r['images_per_s']:8.1f} {r['images_per_s'] / base:6.2f}  {parts}")
    print(f"\nmachine: {machine}")


if __name__ == "__main__":
    main()
