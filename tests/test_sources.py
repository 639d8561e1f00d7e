"""Tests for fer_lightning.data.sources: both layouts, format detection, the cache, every bad input."""

from __future__ import annotations

import gzip
import io
import logging
import os
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_lightning.data import sources
from fer_lightning.data.sources import load_splits, read_csv, read_folders
from fer_lightning.data.splits import CLASS_NAMES, SPLITS, DataFormatError, Split

Rows = list[tuple[str, int, np.ndarray]]  # (usage, label, image)

USAGES = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
PER_USAGE = {"Training": 3, "PublicTest": 1, "PrivateTest": 1}  # images per class
REAL_DATA = Path(__file__).resolve().parents[2] / "shared/data/fer2013"


# ----------------------------------------------------------------------------------------- helpers


def make_rows(seed: int = 0, per_usage: dict[str, int] = PER_USAGE) -> Rows:
    """(usage, label, image) ordered by usage then class, i.e. the order both readers must return."""
    rng = np.random.default_rng(seed)
    return [(u, c, rng.integers(0, 256, (48, 48), dtype=np.uint8))
            for u, n in per_usage.items() for c in range(len(CLASS_NAMES)) for _ in range(n)]


def expected(rows: Rows) -> dict[str, Split]:
    out = {s: Split.empty() for s in SPLITS}
    for s in SPLITS:
        sel = [(c, im) for u, c, im in rows if USAGES[u] == s]
        if sel:
            out[s] = Split(np.stack([im for _, im in sel]), np.array([c for c, _ in sel], np.int64))
    return out


def assert_splits_equal(got: dict[str, Split], want: dict[str, Split]) -> None:
    assert set(got) == set(SPLITS)
    for s in SPLITS:
        assert got[s].images.dtype == np.uint8 and got[s].labels.dtype == np.int64
        assert got[s].images.shape == want[s].images.shape, s
        np.testing.assert_array_equal(got[s].images, want[s].images)
        np.testing.assert_array_equal(got[s].labels, want[s].labels)


def csv_line(label: object, pixels: object, usage: str = "Training") -> str:
    text = pixels if isinstance(pixels, str) else " ".join(map(str, np.asarray(pixels).ravel()))
    return f"{label},{text},{usage}"


def write_csv(path: Path, rows: Rows, header: str = "emotion,pixels,Usage") -> Path:
    text = "\n".join([header] + [csv_line(c, im, u) for u, c, im in rows]) + "\n"
    path.write_bytes(gzip.compress(text.encode()) if path.name.endswith(".gz") else text.encode())
    return path


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image, "L").save(buf, "PNG")
    return buf.getvalue()


def write_folders(root: Path, rows: Rows, named_test: bool = True) -> Path:
    """Kaggle layout; named_test=False gives the test folder plain names (no PublicTest_/PrivateTest_)."""
    for i, (usage, label, image) in enumerate(rows):
        top = "train" if usage == "Training" else "test"
        name = f"{usage}_{i:04d}.png" if named_test or usage == "Training" else f"img_{i:04d}.png"
        (root / top / CLASS_NAMES[label]).mkdir(parents=True, exist_ok=True)
        (root / top / CLASS_NAMES[label] / name).write_bytes(png_bytes(image))
    return root


def write_tar(folder: Path, tar_path: Path, wrapper: str | None = None) -> Path:
    with tarfile.open(tar_path, "w:gz" if tar_path.name.endswith(("gz", "tgz")) else "w") as tar:
        for top in ("test", "train"):  # archive order != sorted order on purpose
            tar.add(folder / top, arcname=f"{wrapper}/{top}" if wrapper else top)
    return tar_path


def assert_bad(path: Path, *phrases: str, cache_dir: Path | None = None, **kwargs: object) -> str:
    """load_splits raises one clear DataFormatError naming the file and the problem, and caches nothing."""
    with pytest.raises(DataFormatError) as info:
        load_splits(path, cache_dir, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message and path.name in message, message
    for phrase in phrases:
        assert phrase in message, message
    if cache_dir is not None:
        assert not cache_dir.exists() or not list(cache_dir.iterdir())
    return message


@pytest.fixture
def src_rows() -> Rows:
    return make_rows()


@pytest.fixture
def src_csv(tmp_path: Path, src_rows: Rows) -> Path:
    return write_csv(tmp_path / "fer2013.csv", src_rows)


# -------------------------------------------------------------------------------------------- CSV


@pytest.mark.parametrize("name", ["fer2013.csv", "fer2013.csv.gz"])
def test_csv_maps_usages_to_splits(tmp_path: Path, src_rows: Rows, name: str) -> None:
    got = load_splits(write_csv(tmp_path / name, src_rows))
    assert_splits_equal(got, expected(src_rows))
    assert [len(got[s]) for s in SPLITS] == [21, 7, 7]


def test_csv_column_order_extra_columns_crlf_blank_lines(tmp_path: Path, src_rows: Rows) -> None:
    lines = ["Usage,extra,emotion,pixels"]
    lines += [f"{u},x,{c},{' '.join(map(str, im.ravel()))}" for u, c, im in src_rows]
    path = tmp_path / "odd.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert_splits_equal(read_csv(path), expected(src_rows))


def test_csv_slow_path_rows_and_chunk_boundaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows the vectorised parser defers (tabs, leading zeros) parse the same, across small chunks."""
    monkeypatch.setattr(sources, "CHUNK_ROWS", 4)
    rows = make_rows(1)
    lines = ["emotion,pixels,Usage"] + [csv_line(c, im, u) for u, c, im in rows]
    lines[5] = csv_line(rows[4][1], "\t".join(f"{v:03d}" for v in rows[4][2].ravel()), rows[4][0])
    (tmp_path / "s.csv").write_text("\n".join(lines))
    assert_splits_equal(read_csv(tmp_path / "s.csv"), expected(rows))


def bad_pixels(kind: str) -> str:
    values = [str(v % 256) for v in range(2304)]
    if kind == "count":
        values.pop()
    elif kind == "token":
        values[4] = "12.5"
    elif kind == "range":
        values[9] = "256"
    return " ".join(values)


GOOD = csv_line(0, bad_pixels("ok"))
GOOD_VAL = csv_line(1, bad_pixels("ok"), "PublicTest")


@pytest.mark.parametrize(("lines", "phrases"), [
    (["emotion,pixel,Usage", GOOD, GOOD_VAL], ["line 1", "lacks column(s) pixels", "emotion,pixels,Usage"]),
    (["emotion,pixels,Usage", GOOD, csv_line(0, bad_pixels("count")), GOOD_VAL],
     ["line 3", "expected 2304 pixel values (48x48), got 2303"]),
    (["emotion,pixels,Usage", GOOD, GOOD_VAL, csv_line(0, bad_pixels("token"))],
     ["line 4", "pixel 5 is '12.5', not an integer"]),
    (["emotion,pixels,Usage", csv_line(0, bad_pixels("range")), GOOD_VAL],
     ["line 2", "pixel 10 is '256', outside 0..255"]),
    (["emotion,pixels,Usage", GOOD, csv_line(7, bad_pixels("ok")), GOOD_VAL],
     ["line 3", "emotion '7' is not an integer class label in 0..6"]),
    (["emotion,pixels,Usage", GOOD, csv_line("happy", bad_pixels("ok")), GOOD_VAL],
     ["line 3", "emotion 'happy'"]),
    (["emotion,pixels,Usage", GOOD, GOOD_VAL, csv_line(0, bad_pixels("ok"), "Validation")],
     ["line 4", "unknown Usage 'Validation'", "Training, PublicTest, PrivateTest"]),
    (["emotion,pixels,Usage", GOOD, "3,1 2 3", GOOD_VAL],
     ["line 3", "expected 3 comma-separated fields", "got 2"]),
    ([], ["empty file"]),
    (["emotion,pixels,Usage"], ["no data rows"]),
    (["emotion,pixels,Usage", GOOD], ["val split is empty", "'PublicTest' rows"]),
    (["emotion,pixels,Usage", GOOD_VAL], ["train split is empty", "'Training' rows"]),
], ids=["header", "count", "token", "range", "label", "label-text", "usage", "fields", "empty", "header-only",
        "no-val", "no-train"])
def test_bad_csv(tmp_path: Path, lines: list[str], phrases: list[str]) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + ("\n" if lines else ""))
    assert_bad(path, *phrases, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("content", [
    pytest.param(lambda good: bytes(range(256)) * 50, id="binary-garbage"),
    pytest.param(lambda good: gzip.compress(good)[:-40], id="truncated-gz"),
    pytest.param(lambda good: gzip.compress(good)[:10] + b"\x00garbage" * 100, id="corrupt-gz"),
    pytest.param(lambda good: good.replace(b"Training", b"Train\x00ing", 1), id="nul-byte"),
    pytest.param(lambda good: good + b"1" * 2_000_000 + b"\n", id="huge-line"),
    pytest.param(lambda good: gzip.compress(b"1," * 3_000_000), id="gzip-bomb-ish"),
    pytest.param(lambda good: good[:50] + "é".encode("latin-1") + good[50:], id="not-utf8"),
])
def test_corrupt_csv_never_escapes(tmp_path: Path, src_rows: Rows, content: object) -> None:
    good = write_csv(tmp_path / "good.csv", src_rows).read_bytes()
    path = tmp_path / "bad.csv.gz"
    path.write_bytes(content(good))  # type: ignore[operator]
    assert_bad(path, cache_dir=tmp_path / "cache")


def test_random_corruptions_raise_only_data_format_error(tmp_path: Path) -> None:
    """Seeded byte flips / truncations of a .csv.gz and a .tar: load or DataFormatError, nothing else."""
    rows = make_rows(2, {"Training": 1, "PublicTest": 1})
    good_csv = gzip.compress(write_csv(tmp_path / "g.csv", rows).read_bytes())
    good_tar = write_tar(write_folders(tmp_path / "f", rows), tmp_path / "g.tar").read_bytes()
    rng = np.random.default_rng(0)
    for i in range(30):
        for good, name in ((good_csv, f"c{i}.csv.gz"), (good_tar, f"t{i}.tar")):
            data = bytearray(good)
            if i % 3 == 0:
                data = data[: rng.integers(1, len(data))]
            for pos in rng.integers(0, len(data), 1 + i % 5):
                data[pos] = rng.integers(0, 256)
            (tmp_path / name).write_bytes(bytes(data))
            try:
                load_splits(tmp_path / name)
            except DataFormatError as e:
                assert name in str(e) and "\n" not in str(e)


# ---------------------------------------------------------------------------------------- folders


@pytest.mark.parametrize("layout", ["dir", "tar", "tar.gz-wrapped", "tgz"])
def test_folders_equal_csv(tmp_path: Path, src_rows: Rows, src_csv: Path, layout: str) -> None:
    folder = write_folders(tmp_path / "kaggle", src_rows)
    path = {
        "dir": folder,
        "tar": write_tar(folder, tmp_path / "k.tar"),
        "tar.gz-wrapped": write_tar(folder, tmp_path / "k.tar.gz", wrapper="fer2013"),
        "tgz": write_tar(folder, tmp_path / "k.tgz"),
    }[layout]
    assert_splits_equal(load_splits(path), read_csv(src_csv))


def test_unnamed_test_folder_gives_stratified_seeded_holdout(tmp_path: Path) -> None:
    per_class = [10, 1, 10, 10, 10, 10, 10]  # disgust has one image: it stays in train
    rng = np.random.default_rng(3)
    labels = [("Training", c) for c, n in enumerate(per_class) for _ in range(n)]
    labels += [("PublicTest", c) for c in range(7)]
    rows = [(u, c, rng.integers(0, 256, (48, 48), dtype=np.uint8)) for u, c in labels]
    folder = write_folders(tmp_path / "k", rows, named_test=False)
    got = read_folders(folder, val_fraction=0.25, seed=1)
    assert np.bincount(got["val"].labels, minlength=7).tolist() == [3, 0, 3, 3, 3, 3, 3]  # round-half-up(2.5)
    assert np.bincount(got["train"].labels, minlength=7).tolist() == [7, 1, 7, 7, 7, 7, 7]
    assert len(got["test"]) == 7  # the whole (unnamed) test folder
    train_rows = {im.tobytes() for u, _, im in rows if u == "Training"}
    held = {im.tobytes() for im in got["val"].images}
    assert held <= train_rows and held.isdisjoint(im.tobytes() for im in got["train"].images)
    same = read_folders(folder, val_fraction=0.25, seed=1)
    other = read_folders(folder, val_fraction=0.25, seed=2)
    np.testing.assert_array_equal(same["val"].images, got["val"].images)
    assert not np.array_equal(other["val"].images, got["val"].images)
    small = read_folders(folder, val_fraction=0.01, seed=1)  # at least one per class with >= 2 images
    assert np.bincount(small["val"].labels, minlength=7).tolist() == [1, 0, 1, 1, 1, 1, 1]


def test_names_decide_split_and_class_folders_ignore_case(tmp_path: Path, src_rows: Rows) -> None:
    folder = write_folders(tmp_path / "k", src_rows)
    (folder / "train" / "angry").rename(folder / "train" / "Angry")
    extra = np.full((48, 48), 7, np.uint8)
    (folder / "train" / "Angry" / "PublicTest_9999.png").write_bytes(png_bytes(extra))
    (folder / "train" / "Angry" / ".DS_Store").write_bytes(b"junk")
    got = read_folders(folder, 0.1, 0)
    assert len(got["val"]) == 8 and (got["val"].images == 7).all(axis=(1, 2)).sum() == 1
    assert len(got["train"]) == 21 and len(got["test"]) == 7


def test_rgb_and_jpeg_images_become_grayscale(tmp_path: Path) -> None:
    for top, name in (("train", "a.jpg"), ("test", "PublicTest_b.jpeg")):
        (tmp_path / top / "happy").mkdir(parents=True)
        Image.new("RGB", (48, 48), (200, 100, 50)).save(tmp_path / top / "happy" / name)
    got = load_splits(tmp_path)
    assert got["train"].images.shape == (1, 48, 48) and got["train"].labels.tolist() == [3]
    assert abs(int(got["val"].images.mean()) - 124) <= 2  # ITU-R 601 luma of (200, 100, 50)


def make_bad_folder(tmp_path: Path, src_rows: Rows, kind: str) -> tuple[Path, list[str], dict[str, object]]:
    folder = write_folders(tmp_path / "k", src_rows)
    target = folder / "train" / "angry" / "bad.png"
    kwargs: dict[str, object] = {}
    if kind == "class":
        (folder / "train" / "happiness").mkdir()
        (folder / "train" / "happiness" / "x.png").write_bytes(png_bytes(src_rows[0][2]))
        return folder, ["happiness", "unknown class folder", "angry, disgust"], kwargs
    if kind == "corrupt":
        target.write_bytes(b"\x89PNG not really")
        return folder, ["bad.png", "cannot decode image"], kwargs
    if kind == "truncated":
        target.write_bytes(png_bytes(src_rows[0][2])[:200])
        return folder, ["bad.png", "cannot decode image"], kwargs
    if kind == "size":
        Image.new("L", (40, 44)).save(target)
        return folder, ["bad.png", "expected 48x48, got 40x44; resize your images to 48x48"], kwargs
    if kind == "type":
        (folder / "train" / "angry" / "notes.txt").write_text("hi")
        return folder, ["notes.txt", "unsupported file type"], kwargs
    if kind == "no-train":
        for f in (folder / "train").rglob("*.png"):
            f.unlink()
        return folder, ["train split is empty"], kwargs
    if kind == "no-val":
        for f in (folder / "test").rglob("PublicTest_*"):
            f.unlink()
        return folder, ["val split is empty", "val_fraction=0"], {"val_fraction": 0.0}
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["class", "corrupt", "truncated", "size", "type", "no-train", "no-val"])
@pytest.mark.parametrize("as_tar", [False, True])
def test_bad_folders(tmp_path: Path, src_rows: Rows, kind: str, as_tar: bool) -> None:
    folder, phrases, kwargs = make_bad_folder(tmp_path, src_rows, kind)
    path = write_tar(folder, tmp_path / "k.tar.gz") if as_tar else folder
    assert_bad(path, *phrases, cache_dir=tmp_path / "cache", **kwargs)


def test_bad_archives(tmp_path: Path, src_rows: Rows) -> None:
    (tmp_path / "junk" / "stuff").mkdir(parents=True)
    (tmp_path / "junk" / "stuff" / "a.png").write_bytes(png_bytes(src_rows[0][2]))
    with tarfile.open(tmp_path / "notrain.tar", "w") as tar:
        tar.add(tmp_path / "junk", arcname="junk")
    assert_bad(tmp_path / "notrain.tar", "no train/ folder")
    (tmp_path / "garbage.tgz").write_bytes(b"\x1f\x8b" + bytes(range(256)) * 4)
    assert_bad(tmp_path / "garbage.tgz", "cannot")
    good = write_tar(write_folders(tmp_path / "k", src_rows), tmp_path / "k.tar").read_bytes()
    (tmp_path / "cut.tar").write_bytes(good[: len(good) // 2 + 100])
    assert_bad(tmp_path / "cut.tar")


# ---------------------------------------------------------------------------------------- detection


def test_detection(tmp_path: Path, src_rows: Rows, src_csv: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    write_csv(shared / "fer2013.csv.gz", src_rows)
    write_tar(write_folders(tmp_path / "k", src_rows), shared / "fer2013-folders.tar")
    want = expected(src_rows)
    assert_splits_equal(load_splits(shared), want)  # a CSV wins over a tar in the same folder
    (shared / "fer2013.csv.gz").unlink()
    assert_splits_equal(load_splits(str(shared)), want)  # then the single tar
    assert_splits_equal(load_splits(tmp_path / "k"), want)  # a folder holding train/


def test_detection_errors(tmp_path: Path, src_rows: Rows) -> None:
    assert_bad(tmp_path / "missing.csv", "no such file or directory")
    (tmp_path / "data.zip").write_bytes(b"PK")
    assert_bad(tmp_path / "data.zip", "not a FER-2013 source")
    (tmp_path / "empty").mkdir()
    assert_bad(tmp_path / "empty", "not a FER-2013 source")
    write_csv(tmp_path / "empty" / "a.csv", src_rows)
    write_csv(tmp_path / "empty" / "b.csv", src_rows)
    assert_bad(tmp_path / "empty", "several candidate files (a.csv, b.csv); pass one")


# -------------------------------------------------------------------------------------------- cache


def test_cache_hit_skips_parsing(tmp_path: Path, src_csv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    first = load_splits(src_csv, cache)
    assert [p.suffix for p in cache.iterdir()] == [".npz"]  # one file, no temp files left

    def boom(path: Path) -> dict[str, Split]:
        raise AssertionError("parsed although cached")

    monkeypatch.setattr(sources, "read_csv", boom)
    assert_splits_equal(load_splits(src_csv, cache), first)


def test_cache_invalidated_by_source_change(
    tmp_path: Path, src_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    calls: list[Path] = []
    real = sources.read_csv
    monkeypatch.setattr(sources, "read_csv", lambda p, *rest: calls.append(p) or real(p, *rest))
    load_splits(src_csv, cache)
    load_splits(src_csv, cache)
    assert len(calls) == 1
    st = src_csv.stat()
    os.utime(src_csv, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    load_splits(src_csv, cache)
    assert len(calls) == 1  # touched, same bytes: still the cached content
    rows = make_rows(5, {"Training": 2, "PublicTest": 1})
    write_csv(src_csv, rows)
    os.utime(src_csv, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # new content, old mtime kept
    assert_splits_equal(load_splits(src_csv, cache), expected(rows))
    assert len(calls) == 2


def test_same_size_edit_with_kept_mtime_is_not_served_stale(tmp_path: Path, src_csv: Path) -> None:
    """`cp -p` / `touch -r` / `tar x` keep the mtime: the cache must key on content, not on size + mtime."""
    cache = tmp_path / "cache"
    before = load_splits(src_csv, cache)
    st = src_csv.stat()
    text = src_csv.read_text()
    first_label = text.splitlines()[1].split(",")[0]
    swapped = "3" if first_label != "3" else "4"
    lines = text.splitlines(keepends=True)
    lines[1] = swapped + lines[1][len(first_label):]
    src_csv.write_text("".join(lines))
    os.utime(src_csv, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert src_csv.stat().st_size == st.st_size
    after = load_splits(src_csv, cache)
    assert not np.array_equal(after["train"].labels, before["train"].labels) or \
        not np.array_equal(after["val"].labels, before["val"].labels)


def test_stale_cache_temp_files_are_removed(tmp_path: Path, src_csv: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    stale, fresh = cache / ".fer2013-csv-x.npz.abc.tmp", cache / ".fer2013-csv-y.npz.def.tmp"
    for tmp in (stale, fresh):
        tmp.write_bytes(b"partial")
    old = stale.stat().st_mtime - 2 * sources.STALE_TEMP_S
    os.utime(stale, (old, old))
    load_splits(src_csv, cache)
    assert not stale.exists() and fresh.exists()  # a fresh one may belong to a writer still running


def test_folder_cache_keys_on_tree_and_holdout(
    tmp_path: Path, src_rows: Rows, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_folders(tmp_path / "k", src_rows, named_test=False)
    cache = tmp_path / "cache"
    calls: list[Path] = []
    real = sources.read_folders
    monkeypatch.setattr(sources, "read_folders", lambda p, f, s, *rest: calls.append(p) or real(p, f, s, *rest))
    a = load_splits(folder, cache, val_fraction=0.34, seed=0)
    assert_splits_equal(load_splits(folder, cache, val_fraction=0.34, seed=0), a)
    load_splits(folder, cache, val_fraction=0.34, seed=1)
    load_splits(folder, cache, val_fraction=0.5, seed=0)
    assert len(calls) == 3
    (folder / "train" / "sad" / "new.png").write_bytes(png_bytes(src_rows[0][2]))
    assert len(load_splits(folder, cache, val_fraction=0.34, seed=0)["train"]) + len(a["val"]) == 22
    assert len(calls) == 4


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong-arrays"])
def test_corrupt_cache_is_rebuilt(tmp_path: Path, src_csv: Path, damage: str) -> None:
    cache = tmp_path / "cache"
    want = load_splits(src_csv, cache)
    (file,) = cache.iterdir()
    if damage == "truncate":
        file.write_bytes(file.read_bytes()[:1000])
    elif damage == "garbage":
        file.write_bytes(b"not a zip")
    else:  # readable, but not our layout
        np.savez(file, **{f"{s}_{k}": np.zeros((2, 3), np.float32)
                          for s in SPLITS for k in ("images", "labels")})
    with pytest.warns(UserWarning, match="ignoring unreadable cache"):
        assert_splits_equal(load_splits(src_csv, cache), want)
    assert_splits_equal(sources.read_arrays(file), want)  # rewritten


# ---------------------------------------------------------------------------------------- real data

README_COUNTS = {
    "train": [3995, 436, 4097, 7215, 4830, 3171, 4965],
    "val": [467, 56, 496, 895, 653, 415, 607],
}


@pytest.fixture(scope="module")
def src_real_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fer-cache")


@pytest.fixture(scope="module")
def src_real_csv_splits(src_real_cache_dir: Path) -> dict[str, Split]:
    if not (REAL_DATA / "fer2013.csv.gz").is_file():
        pytest.skip(f"real FER-2013 not found at {REAL_DATA}")
    return load_splits(REAL_DATA / "fer2013.csv.gz", src_real_cache_dir)  # first parse: ~10 s on 2 cores


def test_real_csv_class_counts_and_cache(
    src_real_csv_splits: dict[str, Split], src_real_cache_dir: Path
) -> None:
    for split, counts in README_COUNTS.items():
        assert np.bincount(src_real_csv_splits[split].labels, minlength=7).tolist() == counts
    assert len(src_real_csv_splits["test"]) == 0
    start = time.perf_counter()
    cached = load_splits(REAL_DATA / "fer2013.csv.gz", src_real_cache_dir)
    assert time.perf_counter() - start < 1.0
    assert_splits_equal(cached, src_real_csv_splits)


@pytest.mark.slow
def test_real_tar_matches_csv(src_real_csv_splits: dict[str, Split]) -> None:
    """JPEG may be lossy, so compare class counts and per-class mean images, not exact pixels."""
    tar = read_folders(REAL_DATA / "fer2013-folders.tar", 0.1, 0)
    for split in README_COUNTS:
        assert np.bincount(tar[split].labels, minlength=7).tolist() == README_COUNTS[split]
        for c in range(7):
            a = src_real_csv_splits[split].images[src_real_csv_splits[split].labels == c].mean(axis=0)
            b = tar[split].images[tar[split].labels == c].mean(axis=0)
            assert np.abs(a - b).mean() < 1.0


# ------------------------------------------------------------------------- the readers' last holes


def test_corrupt_gzip_is_reported_as_such(tmp_path: Path, src_rows: Rows) -> None:
    good = write_csv(tmp_path / "ok.csv.gz", src_rows).read_bytes()
    damaged = tmp_path / "damaged.csv.gz"
    damaged.write_bytes(good[:20] + bytes(b ^ 0x5A for b in good[20:400]) + good[400:])
    assert_bad(damaged, "gzip")
    truncated = tmp_path / "truncated.csv.gz"
    truncated.write_bytes(good[: len(good) // 2])
    assert_bad(truncated, "gzip")


def test_non_utf8_csv_says_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"emotion,pixels,Usage\n0," + b"\xe9\xff" + b",Training\n")
    assert_bad(path, "expected UTF-8 text")


def test_unterminated_quote_says_so(tmp_path: Path) -> None:
    path = tmp_path / "quote.csv"
    path.write_text('emotion,pixels,Usage\n0,"' + " ".join(["1"] * 2304) + ",Training\n")
    assert_bad(path, "unterminated quote")


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path: Path, src_rows: Rows) -> None:
    folder = write_folders(tmp_path / "k", src_rows)
    target = next((folder / "train" / "angry").iterdir())
    gray8 = np.asarray(Image.open(target))
    Image.fromarray(gray8.astype(np.uint16) * 257).save(target)  # the same picture at 16 bits
    assert Image.open(target).mode.startswith("I")
    splits = load_splits(folder)
    index = sorted(p.name for p in (folder / "train" / "angry").iterdir()).index(target.name)
    np.testing.assert_array_equal(splits["train"].images[index], gray8)


def test_train_and_Train_both_present_is_refused(tmp_path: Path, src_rows: Rows) -> None:
    folder = write_folders(tmp_path / "k", src_rows)
    (folder / "Train" / "happy").mkdir(parents=True)
    (folder / "Train" / "happy" / "x.png").write_bytes(png_bytes(src_rows[0][2]))
    assert_bad(folder, "ambiguous folders", "Train/", "train/")


def test_broken_symlink_is_named_as_one(tmp_path: Path, src_rows: Rows) -> None:
    folder = write_folders(tmp_path / "k", src_rows)
    (folder / "train" / "sad" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    message = assert_bad(folder, "broken symbolic link")
    assert "gone.png" in message


def test_first_parse_says_what_it_reads_and_how_long_it_took(
    tmp_path: Path, src_csv: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A first-time parse (seconds on the real CSV) is announced; a cache hit is silent."""
    cache = tmp_path / "cache"
    with caplog.at_level(logging.INFO, logger="fer_lightning.data.sources"):
        splits = load_splits(src_csv, cache)
        first = [r.getMessage() for r in caplog.records]
        caplog.clear()
        load_splits(src_csv, cache)
    assert first[0].startswith(f"parsing {src_csv} (csv layout); the first time for this content, cached")
    total = sum(len(s) for s in splits.values())
    assert first[1].startswith(f"parsed {total:,} images in ") and f"train {len(splits['train']):,}" in first[1]
    assert caplog.records == []


# ------------------------------------------------------------------------------------------- arrays


def test_pack_round_trips_every_split_exactly(tmp_path: Path, src_rows: Rows, src_csv: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from fer_lightning.data import pack

    out = tmp_path / "carry" / "fer2013.npz"
    assert pack.main([str(src_csv), str(out)]) == 0
    assert "train 21, val 7, test 7" in capsys.readouterr().out
    with np.load(out) as z:  # LZMA members: what makes the real dataset fit the 64 MiB a device run carries
        assert sorted(z.files) == sorted(f"{s}_{k}" for s in SPLITS for k in ("images", "labels"))
    import zipfile

    assert {i.compress_type for i in zipfile.ZipFile(out).infolist()} == {zipfile.ZIP_LZMA}
    assert_splits_equal(load_splits(out, tmp_path / "cache"), expected(src_rows))
    assert not (tmp_path / "cache").exists()  # arrays are not cached again
    assert [p.name for p in out.parent.iterdir()] == ["fer2013.npz"]  # no temp file left


def test_arrays_without_test_split_and_plain_npz(tmp_path: Path, src_rows: Rows) -> None:
    want = expected([r for r in src_rows if r[0] != "PrivateTest"])
    path = tmp_path / "plain.npz"
    np.savez(path, **{f"{s}_{k}": getattr(want[s], k).astype(np.uint8 if k == "images" else np.int16)
                      for s in ("train", "val") for k in ("images", "labels")})
    assert_splits_equal(load_splits(path), want)


@pytest.mark.parametrize(("arrays", "phrases"), [
    ({"train_images": np.zeros((2, 48, 48), np.uint8)}, ["holds train_images but no train_labels"]),
    ({"train_images": np.zeros((2, 48, 48), np.float32), "train_labels": np.zeros(2, np.int64)},
     ["train_images is float32 [2, 48, 48]", "expected uint8 [N, 48, 48]"]),
    ({"train_images": np.zeros((2, 48, 48), np.uint8), "train_labels": np.zeros(3, np.int64)},
     ["train_labels is int64 [3]", "expected 2 integer labels"]),
    ({"train_images": np.zeros((2, 48, 48), np.uint8), "train_labels": np.array([0, 7])},
     ["train_labels[1] = 7 is not a class label in 0..6"]),
    ({"train_images": np.zeros((2, 48, 48), np.uint8), "train_labels": np.zeros(2, np.int64)},
     ["the val split is empty", "val_images and val_labels"]),
])
def test_bad_arrays(tmp_path: Path, arrays: dict[str, np.ndarray], phrases: list[str]) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    assert_bad(path, *phrases)


def test_arrays_that_are_not_an_archive(tmp_path: Path) -> None:
    bare = tmp_path / "bare.npz"
    with open(bare, "wb") as f:
        np.save(f, np.zeros(3))
    assert_bad(bare, "one bare array, not an .npz archive")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip at all")
    assert_bad(garbage, "cannot read")


def test_pack_refuses_a_bad_source_or_out_path(tmp_path: Path, src_csv: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from fer_lightning.data import pack

    assert pack.main([str(tmp_path / "missing.csv"), str(tmp_path / "x.npz")]) == 2
    assert "missing.csv: no such file" in capsys.readouterr().err
    assert pack.main([str(src_csv), str(tmp_path / "x.zip")]) == 2
    assert "expected an output path ending in .npz" in capsys.readouterr().err
    assert not list(tmp_path.glob("x.*"))
