"""Pack FER-2013 into one LZMA-compressed .npz of uint8 arrays, to carry the dataset where its source is not.

    python -m fer_lightning.data.pack /path/to/fer2013.csv.gz outputs/carry/fer2013.npz

Any source `load_splits` reads (CSV, folders, tar) goes in; out comes `<split>_images` uint8 [N, 48, 48] and
`<split>_labels` int64 for every non-empty split, which `data.path=<that file>` reads back exactly. Why: the
device machine gets only the repository (64 MiB), not ../shared; the real CSV is 85 MB gzipped, its pixels
74 MB raw and about 56 MB as LZMA - deflate (`np.savez_compressed`) saves only 5 % on these faces. The file
is derived from the dataset: write it to a git-ignored folder and never commit it.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fer_lightning.atomicio import atomic_path
from fer_lightning.data.sources import load_splits
from fer_lightning.data.splits import SPLITS, DataFormatError, Split


def write_arrays(splits: dict[str, Split], out: Path) -> Path:
    """Write the non-empty splits as LZMA-compressed .npy members of a zip (np.load reads it as an .npz),
    atomically: a killed run leaves no half-written file under `out`."""
    with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_LZMA) as archive:
        for name in SPLITS:
            split = splits.get(name)
            if split is None or len(split) == 0:
                continue
            for key, array in ((f"{name}_images", split.images), (f"{name}_labels", split.labels)):
                with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer_lightning.data.pack", description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="a FER-2013 CSV (.csv/.csv.gz), folder layout or tar")
    parser.add_argument("out", type=Path, help="the .npz to write (in a git-ignored folder)")
    args = parser.parse_args(argv)
    if args.out.suffix != ".npz":
        print(f"pack: error: {args.out}: expected an output path ending in .npz", file=sys.stderr)
        return 2
    try:
        splits = load_splits(args.source, required=())
        write_arrays(splits, args.out)
    except (DataFormatError, OSError) as error:
        print(f"pack: error: {error}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{name} {len(splits[name]):,}" for name in SPLITS if len(splits[name]))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB): {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
