"""Batched augmentation: this package's BatchAugment vs kornia.augmentation, same gray48 recipe, interleaved.

    pip install kornia && python benchmarks/bench_augment.py [--threads 1] [--reps 20]

Decides the "kornia or our own code" question by measurement (docs/results.md).
"""

from __future__ import annotations

import argparse
import time

import torch

from fer_lightning.data.augment import AugmentProfile, BatchAugment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    try:
        import kornia.augmentation as K
    except ImportError:
        raise SystemExit("bench_augment: kornia is not installed (pip install kornia)") from None
    torch.set_num_threads(args.threads)
    images = torch.randint(0, 256, (256, 48, 48), dtype=torch.uint8)
    ours = BatchAugment(AugmentProfile())  # flip, crop with padding 4, rotation 10, brightness/contrast 0.2
    theirs = K.AugmentationSequential(K.RandomHorizontalFlip(), K.RandomAffine(degrees=10, translate=(4 / 48, 4 / 48)),
                                      K.ColorJiggle(brightness=0.2, contrast=0.2, p=1.0))
    cases = {"fer_lightning": lambda: ours.train(images),
             "kornia": lambda: (theirs(images.unsqueeze(1).float() / 255) - 0.5) / 0.5}
    totals = dict.fromkeys(cases, 0.0)
    for run in cases.values():
        run()  # warm-up
    for _ in range(args.reps):
        for name, run in cases.items():
            start = time.perf_counter()
            run()
            totals[name] += time.perf_counter() - start
    for name, total in totals.items():
        print(f"{name:14s} {1000 * total / args.reps:6.1f} ms per batch of 256 ({args.threads} thread)")
    print(f"kornia / fer_lightning = {totals['kornia'] / totals['fer_lightning']:.2f}")


if __name__ == "__main__":
    main()
