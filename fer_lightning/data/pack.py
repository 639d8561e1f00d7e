"""Pack FER-2013 into one LZMA-compressed .npz of uint8 arrays, to carry the dataset where its source is not.
Any source `load_splits` reads goes in; `data.path=<that file>` reads it back exactly. The real CSV's pixels are
74 MB raw, about 56 MB as LZMA (deflate saves only 5 %). Derived from the dataset: never commit it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from fer_lightning.data.sources import load_splits, write_arrays
from fer_lightning.data.splits import SPLITS, DataFormatError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer_lightning.data.pack", description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="a FER-2013 CSV (.csv/.csv.gz), folder layout or tar")
    parser.add_argument("out", type=Path, help="the .npz to write (in a git-ignored folder)")
    args = parser.parse_args(argv)
    try:
        if args.out.suffix != ".npz":
            raise DataFormatError(f"{args.out}: expected an output path ending in .npz")
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
