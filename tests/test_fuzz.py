"""Randomly corrupted inputs: the readers either load correctly or raise their own one-line DataFormatError —
never another exception, a hang, or a partial cache file."""

from __future__ import annotations

import gzip
import io
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fer_lightning.data import DataFormatError
from fer_lightning.data.sources import load_splits

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
USAGES = ["Training", "PublicTest", "PrivateTest"]


def good_row(label: int, usage: str, seed: int) -> str:
    pixels = np.random.default_rng(seed).integers(0, 256, 48 * 48)
    return f"{label},{' '.join(map(str, pixels))},{usage}"


BASE_ROWS = [good_row(i % 7, USAGES[i % 2], i) for i in range(8)]

mutation = st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, 30_000)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.integers(0, 30_000), st.integers(0, 255)), max_size=8)),
    st.tuples(st.just("insert"), st.integers(0, 30_000), st.binary(max_size=64)),
    st.tuples(st.just("row"), st.sampled_from([
        "", "x", "1,,Training", "7,1 2 3,Training", "0,abc,PublicTest", ",".join(["0"] * 5),
        "3," + " ".join(["255"] * 2305) + ",Training", "3," + " ".join(["-1"] * 2304) + ",Training",
        "3," + " ".join(["1.5"] * 2304) + ",Training", "3," + "9" * 200_000 + ",Training",
        "2," + " ".join(["1"] * 2304) + ",Validation", "\x00\x01\x02", "emotion,pixels,Usage",
    ])),
    st.tuples(st.just("header"), st.sampled_from(["", "emotion,pixels", "pixels,emotion,Usage", "a,b,c",
                                                  "emotion;pixels;Usage", "\ufeffemotion,pixels,Usage"])),
    st.tuples(st.just("noise"), st.binary(min_size=0, max_size=2048)),
)


def corrupt(text: bytes, change: tuple) -> bytes:
    kind = change[0]
    if kind == "truncate":
        return text[: change[1] % (len(text) + 1)]
    if kind == "flip":
        data = bytearray(text)
        for pos, value in change[1]:
            if data:
                data[pos % len(data)] = value
        return bytes(data)
    if kind == "insert":
        pos = change[1] % (len(text) + 1)
        return text[:pos] + change[2] + text[pos:]
    if kind == "row":
        lines = text.split(b"\n")
        lines.insert(1 + len(change[1]) % max(1, len(lines) - 1), change[1].encode())
        return b"\n".join(lines)
    if kind == "header":
        newline = text.find(b"\n")
        return change[1].encode() + (text[newline:] if newline >= 0 else b"")
    return change[1]


def assert_loads_or_clean_error(path: Path, cache: Path) -> None:
    try:
        splits = load_splits(path, cache_dir=cache)
    except DataFormatError as error:
        message = str(error)
        assert "\n" not in message and path.name in message, message
        leftovers = list(cache.glob("*")) if cache.exists() else []
        assert leftovers == [], f"partial cache after an error: {leftovers}"
        return
    for split in splits.values():  # a load that succeeds must be a valid dataset
        assert split.images.dtype == np.uint8 and split.images.shape[1:] == (48, 48)
        assert split.labels.dtype == np.int64 and ((split.labels >= 0) & (split.labels <= 6)).all()
        assert len(split.images) == len(split.labels)
    assert len(splits["train"]) > 0 and len(splits["val"]) > 0


@SETTINGS
@given(changes=st.lists(mutation, min_size=1, max_size=3), compressed=st.booleans())
def test_fuzzed_csv(changes: list[tuple], compressed: bool) -> None:
    data = ("emotion,pixels,Usage\n" + "\n".join(BASE_ROWS) + "\n").encode()
    for change in changes:
        data = corrupt(data, change)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("f.csv.gz" if compressed else "f.csv")
        path.write_bytes(gzip.compress(data) if compressed else data)
        assert_loads_or_clean_error(path, Path(tmp) / "cache")


def png(seed: int, size: tuple[int, int] = (48, 48)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, size[::-1], dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


member = st.tuples(
    st.sampled_from(["train/angry", "train/happy", "train/disgust", "test/sad", "test/fear", "train/joy", "x"]),
    st.sampled_from(["Training_1.png", "PublicTest_2.png", "PrivateTest_3.jpg", "img.txt", ".hidden.png"]),
    st.one_of(st.integers(0, 9).map(png), st.binary(max_size=300),
              st.tuples(st.integers(1, 90), st.integers(1, 90)).map(lambda s: png(1, s))),
)


@SETTINGS
@given(extra=st.lists(member, max_size=5), cut=st.one_of(st.none(), st.integers(0, 20_000)))
def test_fuzzed_tar(extra: list[tuple], cut: int | None) -> None:
    files = [("train/angry", "Training_a.png", png(1)), ("train/happy", "Training_b.png", png(2)),
             ("test/happy", "PublicTest_c.png", png(3)), ("test/angry", "PublicTest_d.png", png(4)), *extra]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for i, (folder, name, payload) in enumerate(files):
            info = tarfile.TarInfo(f"{folder}/{i}_{name}" if i >= 4 else f"{folder}/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    data = buffer.getvalue()
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.tar"
        path.write_bytes(data)
        assert_loads_or_clean_error(path, Path(tmp) / "cache")
