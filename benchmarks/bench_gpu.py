"""GPU fast path: training images/s and epoch time, Lightning vs a plain PyTorch loop over the same
device-resident data, for the report's CNN (48x48) and ResNet18 (224 and 112). One JSON line per case.

    python benchmarks/bench_gpu.py                       # on a CUDA machine: bf16, channels_last
    python benchmarks/bench_gpu.py --compile             # + torch.compile
    python benchmarks/bench_gpu.py --device cpu --steps 3 --cases cnn   # smoke test of the script itself

Targets on one H200: CNN >= 50,000 img/s, ResNet18@224 >= 8,000 img/s, Lightning >= 0.95x the plain loop.
Data: synthetic faces with FER-2013's size (28,709 train images); speed does not depend on the pixels.
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial

import lightning as L
import torch
import yaml

from fer_lightning.config import CONFIG_DIR, fast_precision
from fer_lightning.data import FERDataModule, Split
from fer_lightning.data.augment import AugmentProfile, BatchAugment
from fer_lightning.data.synthetic import generate_faces
from fer_lightning.models import FERCNN, ResNet18Classifier
from fer_lightning.module import FERClassifier

FER_TRAIN_SIZE = 28_709
CASES = {  # name: (network factory, augment profile file, image size, batch size)
    "cnn": (FERCNN, "gray48", 48, 256),
    "resnet18_224": (partial(ResNet18Classifier, weights=None), "imagenet", 224, 256),
    "resnet18_112": (partial(ResNet18Classifier, weights=None), "imagenet", 112, 512),
}


def profile(name: str, size: int) -> AugmentProfile:
    with open(f"{CONFIG_DIR}/augment/{name}.yaml") as handle:
        return AugmentProfile(**{**yaml.safe_load(handle), "image_size": size})


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_loop(net: torch.nn.Module, data: Split, aug: BatchAugment, batch: int, steps: int, device: torch.device,
               bf16: bool, compile_net: bool) -> float:
    """The fastest honest loop: data on the device, index, augment, bf16 forward/backward, AdamW; no host syncs."""
    images = torch.from_numpy(data.images).to(device)
    labels = torch.from_numpy(data.labels).to(device)
    net = net.to(device, memory_format=torch.channels_last).train()
    model = torch.compile(net) if compile_net else net
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, fused=device.type == "cuda")
    loss_fn = torch.nn.CrossEntropyLoss()
    order = torch.randperm(len(labels), device=device)
    start = 0.0
    for step in range(steps + 3):
        if step == 3:
            sync(device)
            start = time.perf_counter()
        idx = order[(step * batch) % (len(labels) - batch):][:batch]
        x = aug.train(images[idx]).contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(model(x).float(), labels[idx])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    sync(device)
    return steps * batch / (time.perf_counter() - start)


def lightning_loop(net: torch.nn.Module, data: Split, aug: AugmentProfile, batch: int, steps: int,
                   device: torch.device, bf16: bool, compile_net: bool) -> float:
    dm = FERDataModule(batch_size=batch, augment=aug, device_resident=True)
    dm.load_splits = lambda: {"train": data, "val": Split(data.images[:batch], data.labels[:batch]),  # type: ignore[method-assign]
                              "test": Split.empty()}
    model = FERClassifier(net, optimizer=partial(torch.optim.AdamW, lr=1e-3), compile=compile_net)

    class Clock(L.Callback):
        start = 0.0

        def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
            if trainer.global_step == 3:
                sync(device)
                Clock.start = time.perf_counter()

        def on_train_end(self, trainer: L.Trainer, *args: object) -> None:
            sync(device)
            Clock.end = time.perf_counter()

    trainer = L.Trainer(accelerator=device.type, devices=1, max_steps=steps + 3, limit_val_batches=0,
                        precision="bf16-mixed" if bf16 else "32-true", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        benchmark=device.type == "cuda", callbacks=[Clock()])
    trainer.fit(model, datamodule=dm)
    return steps * batch / (Clock.end - Clock.start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=100, help="timed steps per case (after 3 warm-up)")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    bf16 = device.type == "cuda" or fast_precision() == "bf16-mixed"
    data = generate_faces(FER_TRAIN_SIZE if device.type == "cuda" else 2048, seed=0)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    for case in args.cases:
        make_net, profile_name, size, batch = CASES[case]
        aug = profile(profile_name, size)
        for path, run in (("plain", plain_loop), ("lightning", lightning_loop)):
            torch.manual_seed(0)
            augment = BatchAugment(aug) if path == "plain" else aug
            images_per_s = run(make_net(), data, augment, batch, args.steps, device, bf16, args.compile)
            print(json.dumps({"case": case, "path": path, "device": name, "batch": batch, "image_size": size,
                              "bf16": bf16, "compile": args.compile, "images_per_s": round(images_per_s, 1),
                              "epoch_s": round(FER_TRAIN_SIZE / images_per_s, 2)}), flush=True)


if __name__ == "__main__":
    main()
