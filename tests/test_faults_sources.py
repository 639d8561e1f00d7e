"""Data sources under bad or unusual input: ImageFolder val/, symlinked class folders, duplicate tar members,
tampered caches, and messages that name the real problem (corrupt gzip, unterminated quote, symlink loop)."""

from __future__ import annotations

import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from omegaconf import DictConfig

from fer_lightning.data import sources
from fer_lightning.data.sources import load_splits
from tests.test_sources import assert_bad, make_rows, write_csv, write_folders


@pytest.fixture
def rows() -> list:
    return make_rows(per_usage={"Training": 4, "PublicTest": 1, "PrivateTest": 1})


def test_an_imagefolder_val_folder_is_the_val_split(tmp_path: Path, rows: list) -> None:
    folder = write_folders(tmp_path / "k", rows, named_test=False)
    shutil.copytree(folder / "test", folder / "val")
    for source in (folder, tmp_path / "k.tar"):
        if source.suffix == ".tar":
            with tarfile.open(source, "w") as tar:
                tar.add(folder, arcname="k")
        splits = load_splits(source, tmp_path / "cache")
        assert len(splits["train"]) == 4 * 7, "train is not cut into a hold-out when val/ exists"
        assert len(splits["val"]) == len(splits["test"]) == 2 * 7
        np.testing.assert_array_equal(splits["val"].images, splits["test"].images)


def test_a_symlinked_class_folder_reads_with_and_without_the_cache(tmp_path: Path, rows: list) -> None:
    folder = write_folders(tmp_path / "k", rows)
    shutil.move(folder / "train" / "happy", tmp_path / "happy_elsewhere")
    (folder / "train" / "happy").symlink_to(tmp_path / "happy_elsewhere", target_is_directory=True)
    plain = load_splits(folder)
    cached = load_splits(folder, tmp_path / "cache")
    assert len(plain["train"]) == len(cached["train"]) == 4 * 7
    # the fingerprint follows the link: editing an image behind it invalidates the cache
    target = next((tmp_path / "happy_elsewhere").iterdir())
    target.write_bytes((folder / "train" / "sad" / next((folder / "train" / "sad").iterdir()).name).read_bytes())
    again = load_splits(folder, tmp_path / "cache")
    assert not np.array_equal(again["train"].images, cached["train"].images)


def test_a_tar_member_added_twice_is_one_image(tmp_path: Path, rows: list) -> None:
    folder = write_folders(tmp_path / "k", rows)
    with tarfile.open(tmp_path / "dup.tar", "w") as tar:
        tar.add(folder / "train", arcname="train")
        tar.add(folder / "train" / "sad", arcname="train/sad")  # the same members again
    assert len(load_splits(tmp_path / "dup.tar")["train"]) + len(load_splits(folder)["val"]) == 4 * 7


def test_a_cache_with_labels_outside_the_classes_is_not_served(tmp_path: Path, rows: list) -> None:
    csv = write_csv(tmp_path / "fer.csv", rows)
    cache = tmp_path / "cache"
    good = load_splits(csv, cache)
    (file,) = cache.glob("*.npz")
    with np.load(file) as z:
        arrays = dict(z)
    arrays["train_labels"][0] = 9
    np.savez(file, **arrays)
    with pytest.warns(UserWarning, match=r"train_labels\[0\] = 9 is not a class label in 0..6"):
        again = load_splits(csv, cache)
    np.testing.assert_array_equal(again["train"].labels, good["train"].labels)


def test_a_gzip_that_decodes_to_garbage_rows_is_called_corrupt(tmp_path: Path, rows: list) -> None:
    good = write_csv(tmp_path / "ok.csv.gz", rows).read_bytes()
    for start in range(200, len(good) - 400, 997):  # flip bytes at many places: every message says gzip
        damaged = tmp_path / "damaged.csv.gz"
        damaged.write_bytes(good[:start] + bytes(b ^ 0x5A for b in good[start:start + 50]) + good[start + 50:])
        message = assert_bad(damaged, "gzip")
        assert "expected 3" not in message and "pixel" not in message


def test_an_unterminated_quote_running_past_the_field_limit_says_so(tmp_path: Path) -> None:
    row = "0," + " ".join(["1"] * 2304) + ",Training"
    path = tmp_path / "quote.csv"
    path.write_text("\n".join(["emotion,pixels,Usage", row, '0,"' + row[2:]] + [row] * 60) + "\n")
    message = assert_bad(path, "unterminated quote", "line 3")
    assert "field limit" not in message


def test_a_symlink_loop_is_named_as_one(tmp_path: Path, rows: list) -> None:
    folder = write_folders(tmp_path / "k", rows)
    loop = folder / "train" / "sad" / "loop.png"
    loop.symlink_to(loop)
    message = assert_bad(folder, "symbolic link loop")
    assert "does not exist" not in message and "loop.png" in message


@pytest.mark.parametrize("override", ["data.synthetic.n_train=-5", "data.synthetic.n_test=-1"])
def test_a_negative_synthetic_size_names_its_key(override: str, make_cfg: Callable[..., DictConfig]) -> None:
    from fer_lightning.schema import problem  # the ranges are declared once, in the schema

    assert problem(make_cfg(override), "train").startswith(f"{override}: expected an integer >= 0")


def test_the_fingerprint_covers_only_what_the_reader_reads(tmp_path: Path, rows: list) -> None:
    folder = write_folders(tmp_path / "k", rows)
    before = sources._fingerprint(folder)
    (folder / "README.txt").write_text("notes beside the splits")
    (folder / "train" / ".DS_Store").write_text("hidden")
    assert sources._fingerprint(folder) == before
