"""Time FER-2013 loading: the first parse (into a fresh temp cache), then the cached load (best of 3).

    python benchmarks/bench_data_load.py [PATH] [--val-fraction 0.1] [--seed 0]

PATH defaults to ../shared/data/fer2013/fer2013.csv.gz (relative to the repository root); pass the .tar, a
folder, or your own copy to compare layouts.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from fer_lightning.data.sources import load_splits

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("path", nargs="?", default=str(ROOT.parent / "shared/data/fer2013/fer2013.csv.gz"))
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"path: {args.path}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as cache_dir:
        start = time.perf_counter()
        splits = load_splits(args.path, cache_dir, args.val_fraction, args.seed)
        first = time.perf_counter() - start
        sizes = ", ".join(f"{name} {len(split)}" for name, split in splits.items())
        print(f"first parse (and cache write): {first:.2f} s  [{sizes}]")
        cached = []
        for _ in range(3):
            start = time.perf_counter()
            load_splits(args.path, cache_dir, args.val_fraction, args.seed)
            cached.append(time.perf_counter() - start)
        cache_mb = sum(f.stat().st_size for f in Path(cache_dir).iterdir()) / 2**20
        print(f"cached load: best of 3 {min(cached):.3f} s  (cache file {cache_mb:.0f} MiB)")


if __name__ == "__main__":
    main()
