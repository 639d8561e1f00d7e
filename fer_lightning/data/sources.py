"""Readers for FER-2013 as users have it on disk: the challenge CSV, the Kaggle folder layout (or its tar), or
arrays (`.npz`: the parse cache's layout and `python -m fer_lightning.data.pack`'s). Each returns
``{"train", "val", "test"}`` -> `Split`; bad input raises a one-line `DataFormatError` naming the file and line."""

from __future__ import annotations

import csv
import errno
import gzip
import hashlib
import io
import logging
import os
import re
import tarfile
import time
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from functools import partial
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from fer_lightning.atomicio import atomic_open
from fer_lightning.data.splits import CLASS_NAMES, IMAGE_SIZE, SPLITS, USAGE_TO_SPLIT, DataFormatError, Split

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # bump when parsing rules or the cache layout change: old cache files are then ignored
STALE_TEMP_S = 3600.0  # a cache temp file older than this was left by a killed write
PIXELS = IMAGE_SIZE * IMAGE_SIZE
CHUNK_ROWS = 2048  # CSV rows parsed per vectorised batch (bounds peak memory to tens of MB)
MAX_LINE_CHARS = 1 << 20  # a real row is < 10 kB: stop at garbage lines before buffering gigabytes
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
CSV_SUFFIXES = (".csv", ".csv.gz")
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")
FORMATS = {CSV_SUFFIXES: "csv", TAR_SUFFIXES: "folders", (".npz",): "arrays"}
_FILLED_BY = {  # what fills each split in each format, for the message when a required split is empty
    "csv": {split: f"{usage!r} rows" for usage, split in USAGE_TO_SPLIT.items()},
    "arrays": {s: f"{s}_images and {s}_labels" for s in SPLITS},
    "folders": {"train": "images in train/<class>/", "val": "val/<class>/ or PublicTest_* images, or a train hold-out "
                "(val_fraction={val_fraction})", "test": "test/<class>/ images other than PublicTest_*"},
}
_INT_TOKEN = re.compile(r"[+-]?[0-9]+")
_LABELS = {str(i): i for i in range(len(CLASS_NAMES))}


def _describe(e: BaseException) -> str:
    """One short line such as 'zlib.error: ...' (a bare 'error' says nothing): fuzzed input's texts can be huge."""
    if isinstance(e, UnidentifiedImageError):
        return "not a JPEG or PNG image PIL can identify"
    name, text = type(e).__name__, " ".join(str(e).split())
    text = text if len(text) <= 200 else text[:197] + "..."
    return f"{type(e).__module__ + '.' if name == 'error' else ''}{name}: {text}"


def _show(token: str) -> str:
    return repr(token if len(token) <= 20 else token[:20] + "...")


@contextmanager
def _reading(where: object, what: str) -> Iterator[None]:
    """Turn any unexpected failure (gzip, tarfile, zipfile, PIL, OS...) into a DataFormatError naming the file."""
    try:
        yield
    except (DataFormatError, MemoryError):
        raise
    except Exception as e:  # fuzzed inputs raise many types; callers only see DataFormatError
        raise DataFormatError(f"{where}: cannot {what}: {_describe(e)}") from e


def _parse_pixels_slow(text: str, where: str) -> np.ndarray:
    """Authoritative per-row parser: gives the precise message (non-integer, count, range, in that order)."""
    tokens = text.split()
    for i, tok in enumerate(tokens):
        if not _INT_TOKEN.fullmatch(tok):
            raise DataFormatError(f"{where}: pixel {i + 1} is {_show(tok)}, not an integer; "
                                  f"expected {PIXELS} space-separated integers in 0..255")
    if len(tokens) != PIXELS:
        raise DataFormatError(f"{where}: expected {PIXELS} pixel values (48x48), got {len(tokens)}")
    for i, tok in enumerate(tokens):
        if len(tok) > 12 or not 0 <= int(tok) <= 255:
            raise DataFormatError(f"{where}: pixel {i + 1} is {_show(tok)}, outside 0..255")
    return np.array([int(t) for t in tokens], np.uint8)


def _parse_pixels(texts: list[str], lines: list[int], path: Path) -> np.ndarray:
    """Parse many pixel strings at once with numpy byte arithmetic (~10x faster than per-row str.split); rows
    that are not 2304 plain values of <= 3 digits go to `_parse_pixels_slow` (tabs, leading zeros, or an error)."""
    encoded = [t.encode("utf-8", "replace") for t in texts]
    starts = 3 + np.cumsum([0] + [len(b) + 1 for b in encoded])  # row i is buf[starts[i]:starts[i + 1]]
    buf = np.frombuffer(b"   " + b" ".join(encoded) + b" ", np.uint8)  # 3 pad bytes keep `ends - 2` valid
    digit = buf - np.uint8(ord("0")) < 10
    dd = (buf - np.uint8(ord("0"))) * digit  # digit values, 0 elsewhere
    ends = np.flatnonzero(digit[:-1] & ~digit[1:])  # the last digit of every token
    tens, hundreds = dd[ends - 1].astype(np.uint16), (dd[ends - 2] * digit[ends - 1]).astype(np.uint16)
    value = dd[ends] + 10 * tens + 100 * hundreds  # exact for tokens of <= 3 digits
    counts = np.diff(np.searchsorted(ends, starts))
    bad = counts != PIXELS
    long_token = digit[:-3] & digit[1:-2] & digit[2:-1] & digit[3:]
    for pos in (np.flatnonzero(~digit & (buf != ord(" "))), np.flatnonzero(long_token), ends[value > 255]):
        bad[np.searchsorted(starts, pos, "right") - 1] = True
    out = np.empty((len(texts), PIXELS), np.uint8)
    out[~bad] = value[~np.repeat(bad, counts)].reshape(-1, PIXELS)
    for i in np.flatnonzero(bad):
        out[i] = _parse_pixels_slow(texts[i], f"{path}: line {lines[i]}")
    return out.reshape(-1, IMAGE_SIZE, IMAGE_SIZE)


def _lines(f: io.TextIOBase, path: Path) -> Iterator[str]:
    """The file's lines, refusing absurdly long ones (a gzip bomb with no newline would fill memory)."""
    for number, line in enumerate(iter(partial(f.readline, MAX_LINE_CHARS + 1), ""), start=1):
        if len(line) > MAX_LINE_CHARS:
            raise DataFormatError(f"{path}: line {number}: longer than {MAX_LINE_CHARS} characters; expected "
                                  f"rows of emotion,pixels,Usage (about 10 kB each)")
        yield line


def _gzip_intact(path: Path) -> bool:
    """Whether the whole gzip stream decompresses and passes its CRC (checked only once a row looked wrong)."""
    with suppress(OSError, EOFError, zlib.error), gzip.open(path, "rb") as f:
        while f.read(1 << 24):
            pass
        return True
    return False


def read_csv(path: Path) -> dict[str, Split]:
    """Read the challenge CSV (``emotion,pixels,Usage``; plain or gzip); errors name 1-based file lines. Kept over
    pandas: first parse of the real CSV 11.2 s here, 21.4 s with `pandas.read_csv` + `np.fromstring` and the same
    checks (medians of 3, busy 2-core machine), and pandas would still need this reader to name a bad line."""
    labels, usages, images, texts, lines = [], [], [], [], []  # texts, lines: the rows of one chunk
    line = 0
    with _reading(path, "read CSV"), open(path, "rb") as raw:
        is_gzip = raw.read(2) == b"\x1f\x8b"
    try:
        with (gzip.open if is_gzip else open)(path, "rt", encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(_lines(f, path))
            header = next(reader, None)
            if header is None:
                raise DataFormatError(f"{path}: empty file; expected a CSV with header emotion,pixels,Usage")
            header = [h.strip() for h in header]
            if missing := [c for c in ("emotion", "pixels", "Usage") if c not in header]:
                raise DataFormatError(f"{path}: line 1: header {_show(','.join(header))} lacks column(s) "
                                      f"{','.join(missing)}; expected a header with emotion,pixels,Usage")
            i_emo, i_pix, i_use = (header.index(c) for c in ("emotion", "pixels", "Usage"))
            for row in reader:
                line = reader.line_num
                if not row:
                    continue
                if len(row) != len(header):
                    raise DataFormatError(f"{path}: line {line}: " + (
                        "unterminated quote (a field opened with \" runs past the end of its line); expected rows "
                        "of emotion,pixels,Usage" if any("\n" in f or "\r" in f for f in row) else
                        f"expected {len(header)} comma-separated fields ({','.join(header)}), got {len(row)}"))
                emotion, usage = row[i_emo].strip(), row[i_use].strip()
                if emotion not in _LABELS:
                    raise DataFormatError(f"{path}: line {line}: emotion {_show(emotion)} is not an integer "
                                          f"class label in 0..{len(CLASS_NAMES) - 1}")
                if usage not in USAGE_TO_SPLIT:
                    raise DataFormatError(f"{path}: line {line}: unknown Usage {_show(usage)}; expected "
                                          f"{', '.join(USAGE_TO_SPLIT)}")
                labels.append(_LABELS[emotion])
                usages.append(USAGE_TO_SPLIT[usage])
                texts.append(row[i_pix])
                lines.append(line)
                if len(texts) == CHUNK_ROWS:
                    images.append(_parse_pixels(texts, lines, path))
                    texts, lines = [], []
            if texts:
                images.append(_parse_pixels(texts, lines, path))
    except MemoryError:
        raise
    except Exception as e:  # fuzzed inputs raise many types; callers only see DataFormatError
        if is_gzip and not _gzip_intact(path):  # a damaged stream decodes to garbage rows before its CRC check
            raise DataFormatError(f"{path}: corrupt gzip file (the stream fails gzip's integrity check); "
                                  "re-download or re-compress the file") from e
        if isinstance(e, DataFormatError):
            raise
        if isinstance(e, UnicodeDecodeError):
            raise DataFormatError(f"{path}: near line {line + 1}: expected UTF-8 text, found byte "
                                  f"0x{e.object[e.start]:02x}; is this the challenge CSV (or a binary file)?") from e
        problem = f"cannot read CSV: {_describe(e)}"
        if isinstance(e, csv.Error) and any(k in str(e) for k in ("EOF", "newline", "field limit")):
            problem = "unterminated quote (a field opened with \" runs on over the following lines)"
        raise DataFormatError(f"{path}: near line {line + 1}: {problem}; expected rows of emotion,pixels,Usage") from e
    if not labels:
        raise DataFormatError(f"{path}: no data rows after the header; expected rows of emotion,pixels,Usage")
    all_images, all_labels, split_of = np.concatenate(images), np.array(labels, np.int64), np.array(usages)
    return {s: Split(all_images[split_of == s], all_labels[split_of == s]) for s in SPLITS}


def read_arrays(path: Path) -> dict[str, Split]:
    """Read an .npz (members stored, deflated or LZMA) holding per split `<split>_images` uint8 [N, 48, 48] and
    `<split>_labels` integers in 0..6; a split with neither key is empty."""
    splits = {name: Split.empty() for name in SPLITS}  # a split with neither key
    with _reading(path, "read arrays"):
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise DataFormatError(f"{path}: one bare array, not an .npz archive; expected <split>_images and "
                                  "<split>_labels arrays (python -m fer_lightning.data.pack writes them)")
        with z:
            for name in SPLITS:
                keys = (f"{name}_images", f"{name}_labels")
                present = [k for k in keys if k in z.files]
                if len(present) == 1:
                    raise DataFormatError(f"{path}: holds {present[0]} but no "
                                          f"{(set(keys) - set(present)).pop()}; expected both keys of a split")
                if not present:
                    continue
                images, labels = z[keys[0]], z[keys[1]]
                if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
                    raise DataFormatError(f"{path}: {keys[0]} is {images.dtype} {list(images.shape)}; expected "
                                          f"uint8 [N, {IMAGE_SIZE}, {IMAGE_SIZE}]")
                if not np.issubdtype(labels.dtype, np.integer) or labels.shape != images.shape[:1]:
                    raise DataFormatError(f"{path}: {keys[1]} is {labels.dtype} {list(labels.shape)}; expected "
                                          f"{len(images)} integer labels, one per image of {keys[0]}")
                bad = np.flatnonzero((labels < 0) | (labels >= len(CLASS_NAMES)))
                if bad.size:
                    raise DataFormatError(f"{path}: {keys[1]}[{bad[0]}] = {labels[bad[0]]} is not a class label "
                                          f"in 0..{len(CLASS_NAMES) - 1}")
                splits[name] = Split(images, labels.astype(np.int64))
    return splits


def write_arrays(splits: dict[str, Split], out: Path, compression: int = zipfile.ZIP_LZMA) -> None:
    """Write the non-empty splits as .npy members of a zip (what `read_arrays` reads), atomically: a killed run
    leaves no half-written file under `out`. LZMA to carry the dataset; none (ZIP_STORED) for the fast cache."""
    with atomic_open(out) as handle, zipfile.ZipFile(handle, "w", compression=compression) as archive:
        for name, split in splits.items():
            if len(split) == 0:
                continue
            for key, array in ((f"{name}_images", split.images), (f"{name}_labels", split.labels)):
                with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)


class _Entry(NamedTuple):
    split: str
    label: int
    name: str
    where: str  # for messages: the file path, or "archive.tar:member"
    read: Callable[[], bytes]


def _entry(top: str, cls: str, name: str, where: str, read: Callable[[], bytes]) -> _Entry:
    """Classify one file by its place: class folder -> label; PublicTest_/PrivateTest_ names -> val/test."""
    if cls.lower() not in CLASS_NAMES:
        raise DataFormatError(f"{where}: unknown class folder {_show(cls)}; expected one of {', '.join(CLASS_NAMES)}")
    if not name.lower().endswith(IMAGE_SUFFIXES):
        raise DataFormatError(f"{where}: unsupported file type; expected {', '.join(IMAGE_SUFFIXES)} images")
    split = "val" if name.startswith("PublicTest_") else "test" if name.startswith("PrivateTest_") else top
    return _Entry(split, CLASS_NAMES.index(cls.lower()), name, where, read)


def _child(root: Path, name: str) -> Path | None:
    """The subfolder called `name` (any case), so Train/ and TEST/ work too; two that differ only in case
    (train/ and Train/) are refused, since reading one would silently drop the other's images."""
    found = [p for p in sorted(root.iterdir()) if p.name.lower() == name and p.is_dir()]
    if len(found) > 1:
        raise DataFormatError(f"{root}: ambiguous folders {' and '.join(p.name + '/' for p in found)}; expected one "
                              f"{name}/ folder (merge them or remove one)")
    return found[0] if found else None


def _list_directory(root: Path) -> list[_Entry]:
    entries = []
    for top in SPLITS:
        folder = _child(root, top)
        for cls_dir in sorted(p for p in folder.iterdir() if not p.name.startswith(".")) if folder else []:
            if not cls_dir.is_dir():
                raise DataFormatError(f"{cls_dir}: expected only class folders in {folder}, found a file")
            for f in sorted(p for p in cls_dir.iterdir() if not p.name.startswith(".")):  # hidden files are not ours
                try:
                    f.stat()
                except OSError as e:  # listed but not there: a dangling or looping symbolic link
                    what = ("a symbolic link loop" if e.errno == errno.ELOOP
                            else f"broken symbolic link (its target {os.readlink(f)} does not exist)")
                    raise DataFormatError(f"{f}: {what}; expected an image file") from e
                if not f.is_file():
                    raise DataFormatError(f"{f}: expected {top}/<class>/<image>, found a nested folder")
                entries.append(_entry(top, cls_dir.name, f.name, str(f), f.read_bytes))
    return entries


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    """Opened only when read: a file object per member at listing time holds an 8.7 kB buffer (300 MB for 35,887)."""
    return tar.extractfile(member).read()  # type: ignore[union-attr]  # only regular files are listed


def _list_tar(path: Path, tar: tarfile.TarFile) -> list[_Entry]:
    """Members in archive order (sequential reads stay fast for .tar.gz); one wrapper folder is allowed."""
    members = tar.getmembers()
    parts = [tuple(p for p in PurePosixPath(m.name).parts if p != "/") for m in members]
    if not any(p and p[0].lower() == "train" for p in parts):
        tops = {p[0] for p in parts if len(p) > 1 and p[1].lower() == "train"}
        if len(tops) != 1:
            found = "several candidates" if tops else "no train/ folder"
            raise DataFormatError(f"{path}: expected train/<class>/<image> (optionally inside one top "
                                  f"folder), found {found}")
        parts = [p[1:] if p and p[0] in tops else () for p in parts]  # members beside the wrapper are not ours
    entries = {}  # by place: a member added twice is one file (extraction keeps the last)
    for m, rel in zip(members, parts, strict=True):
        if not (m.isfile() and len(rel) >= 2 and rel[0].lower() in SPLITS) or any(x.startswith(".") for x in rel):
            continue  # files beside train/ and test/ (README, other folders) and hidden files are not ours
        where = f"{path}:{m.name}"
        if len(rel) != 3:
            raise DataFormatError(f"{where}: expected {rel[0]}/<class>/<image>")
        entries[rel] = _entry(rel[0].lower(), rel[1], rel[2], where, partial(_read_member, tar, m))
    return list(entries.values())


def _decode(entry: _Entry) -> np.ndarray:
    """Grayscale uint8 48x48. Other sizes are rejected, not resized: a silent resize would change the data."""
    with _reading(entry.where, "decode image"), Image.open(io.BytesIO(entry.read())) as im:
        if im.size != (IMAGE_SIZE, IMAGE_SIZE):
            raise DataFormatError(f"{entry.where}: expected 48x48, got {im.width}x{im.height}; "
                                  "resize your images to 48x48")
        if im.mode.startswith("I"):  # 16-bit (or 32-bit integer) gray: scale, not clip at 255 as convert("L") does
            wide = np.asarray(im, dtype=np.float64)
            top = 65535.0 if im.mode.startswith("I;16") or wide.max() > 255 else 255.0
            return np.clip(np.rint(wide * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.asarray(im.convert("L"), np.uint8)


def _holdout(labels: np.ndarray, val_fraction: float, seed: int) -> np.ndarray:
    """Stratified, seeded val mask: per class round-half-up(fraction * n), >= 1 if n >= 2, < n."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), bool)
    for c in range(len(CLASS_NAMES)):
        idx = np.flatnonzero(labels == c)
        k = int(np.floor(val_fraction * len(idx) + 0.5))
        k = min(max(k, 1 if len(idx) >= 2 and val_fraction > 0 else 0), max(len(idx) - 1, 0))
        mask[rng.permutation(idx)[:k]] = True
    return mask


def read_folders(path: Path, val_fraction: float, seed: int) -> dict[str, Split]:
    """Read the Kaggle layout ``train/<class>/*.jpg|jpeg|png``, ``test/<class>/*`` (and ImageFolder's ``val/``) from
    a folder or a tar. ``PublicTest_*`` go to val, ``PrivateTest_*`` to test; an empty val is a stratified seeded
    hold-out of train. Within a split images are ordered by (class, file name)."""
    path = Path(path)
    with _reading(path, "read image folders"), (tarfile.open(path, "r:*") if path.is_file() else nullcontext()) as tar:
        decoded = [(e, _decode(e)) for e in (_list_tar(path, tar) if tar else _list_directory(path))]
    decoded.sort(key=lambda d: (d[0].label, d[0].name))
    images = np.stack([a for _, a in decoded]) if decoded else Split.empty().images
    labels, split_of = np.array([e.label for e, _ in decoded], np.int64), np.array([e.split for e, _ in decoded], "U5")
    if "val" not in split_of:
        train = np.flatnonzero(split_of == "train")
        split_of[train[_holdout(labels[train], val_fraction, seed)]] = "val"
    return {s: Split(images[split_of == s], labels[split_of == s]) for s in SPLITS}


def _detect(path: Path) -> tuple[Path, str]:
    """-> (source, "csv" | "folders" | "arrays"). In a folder: train/ wins, then a single CSV, then a single tar."""
    if not path.exists():
        raise DataFormatError(f"{path}: no such file or directory; expected a FER-2013 CSV, folder or tar")
    for suffixes, fmt in FORMATS.items():
        if path.is_file() and path.name.lower().endswith(suffixes):
            return path, fmt
    if path.is_dir() and _child(path, "train"):
        return path, "folders"
    for suffixes in (CSV_SUFFIXES, TAR_SUFFIXES) if path.is_dir() else ():
        found = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(suffixes))
        if len(found) > 1:
            raise DataFormatError(f"{path}: several candidate files ({', '.join(p.name for p in found)}); "
                                  "pass one as the path")
        if found:
            return _detect(found[0])
    raise DataFormatError(f"{path}: not a FER-2013 source; expected a .csv/.csv.gz, a .tar/.tar.gz/.tgz, an .npz "
                          "of arrays, or a folder holding train/ (or one such file)")


def _fingerprint(path: Path, *key: object) -> str:
    """The cache key: a blake2b of `key` and of the name and bytes of every file the reader reads, not the mtime (a
    same-size edit whose mtime `cp -p`, `touch -r` or `tar x` kept must not load stale labels)."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=16)
    for file in [path] if path.is_file() else sorted(Path(e.where) for e in _list_directory(path)):
        digest.update(f"{file.relative_to(path)}\0".encode())
        with open(file, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def load_splits(path: str | Path, cache_dir: str | Path | None = None, val_fraction: float = 0.1, seed: int = 0,
                required: Sequence[str] = ("train", "val")) -> dict[str, Split]:
    """Detect the format, parse once, cache as one uncompressed .npz in `cache_dir` (loads in ~0.1 s) keyed by the
    content: a moved copy still hits, an edited source never does. `val_fraction`, `seed`: the hold-out of folders
    without val/ or PublicTest_ names; `required`: the splits that must hold images."""
    file = None
    with _reading(path, "open data source"):
        source, fmt = _detect(Path(path).expanduser())
        if cache_dir is not None and fmt != "arrays":  # arrays load as fast as the cache would
            holdout = (val_fraction, seed) if fmt == "folders" else ()
            file = Path(cache_dir).expanduser() / f"fer2013-{fmt}-{_fingerprint(source, CACHE_VERSION, *holdout)}.npz"
    splits = None
    if file is not None and file.is_file():
        try:
            splits = read_arrays(file)
        except DataFormatError as e:  # a broken cache is only a miss: parsed and written again
            warnings.warn(f"ignoring unreadable cache: {e}", stacklevel=2)
    cached = splits is not None
    if splits is None:  # a first parse takes seconds on the real data: announced; a cache hit is silent
        log.info("parsing %s (%s layout)%s", source, fmt,
                 "" if file is None else f"; the first time for this content, cached afterwards in {file.parent}")
        start = time.perf_counter()
        splits = (read_csv(source) if fmt == "csv" else read_arrays(source) if fmt == "arrays"
                  else read_folders(source, val_fraction, seed))
        log.info("parsed %s images in %.1f s (%s)", f"{sum(len(s) for s in splits.values()):,}",
                 time.perf_counter() - start, ", ".join(f"{k} {len(v):,}" for k, v in splits.items()))
    for name in required:
        if len(splits[name]) == 0:
            raise DataFormatError(f"{source}: the {name} split is empty; expected "
                                  f"{_FILLED_BY[fmt][name].format(val_fraction=val_fraction)}")
    if file is not None and not cached:
        for tmp in file.parent.glob(".fer2013-*.tmp"):  # left by a killed write
            with suppress(OSError):
                if time.time() - tmp.stat().st_mtime > STALE_TEMP_S:
                    tmp.unlink()
        try:
            write_arrays(splits, file, zipfile.ZIP_STORED)  # atomic: readers never see half a cache
        except OSError as e:
            warnings.warn(f"could not write cache {file}: {_describe(e)}", stacklevel=2)
    return splits
