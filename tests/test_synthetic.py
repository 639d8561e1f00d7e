"""The synthetic faces are what CI trains on, so they must be deterministic, FER-shaped and truly labelled."""

from __future__ import annotations

import numpy as np
import pytest

from fer_lightning.data.splits import CLASS_NAMES, IMAGE_SIZE, NUM_CLASSES, Split
from fer_lightning.data.synthetic import FER2013_TRAIN_PROPORTIONS, generate_faces, make_splits

FEAR, HAPPY, SURPRISE, NEUTRAL = (CLASS_NAMES.index(c) for c in ("fear", "happy", "surprise", "neutral"))


@pytest.fixture(scope="module")
def big() -> Split:
    """One larger sample shared by the statistical tests (well under a second to draw)."""
    return generate_faces(2000, seed=123)


def test_shapes_dtypes_and_range() -> None:
    split = generate_faces(64, seed=0)
    assert isinstance(split, Split)
    assert split.images.shape == (64, IMAGE_SIZE, IMAGE_SIZE) and split.images.dtype == np.uint8
    assert split.labels.shape == (64,) and split.labels.dtype == np.int64
    assert split.labels.min() >= 0 and split.labels.max() < NUM_CLASSES
    assert split.images.std() > 20  # real pictures, not a constant fill


def test_same_seed_identical_different_seed_different() -> None:
    a, b, c = generate_faces(64, seed=7), generate_faces(64, seed=7), generate_faces(64, seed=8)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)


def test_empty_and_bad_proportions() -> None:
    assert len(generate_faces(0, seed=0)) == 0
    with pytest.raises(ValueError):
        generate_faces(8, seed=0, proportions=(1.0, 1.0))
    with pytest.raises(ValueError):
        generate_faces(8, seed=0, proportions=(-1.0,) + (1.0,) * 6)


def test_custom_proportions_pick_the_class() -> None:
    one_hot = [0.0] * NUM_CLASSES
    one_hot[SURPRISE] = 1.0
    assert (generate_faces(32, seed=1, proportions=one_hot).labels == SURPRISE).all()


def test_make_splits_sizes_and_distinct_content() -> None:
    splits = make_splits(n_train=48, n_val=32, n_test=16, seed=3)
    assert set(splits) == {"train", "val", "test"}
    assert [len(splits[k]) for k in ("train", "val", "test")] == [48, 32, 16]
    train, val, test = (splits[k].images[:16] for k in ("train", "val", "test"))
    for a, b in ((train, val), (val, test), (train, test)):
        assert not np.array_equal(a, b)
    again = make_splits(n_train=48, n_val=32, n_test=16, seed=3)
    np.testing.assert_array_equal(again["val"].images, splits["val"].images)
    assert not np.array_equal(make_splits(48, 32, 16, seed=4)["train"].images, splits["train"].images)


def test_proportions_follow_fer2013(big: Split) -> None:
    assert len(FER2013_TRAIN_PROPORTIONS) == NUM_CLASSES
    assert sum(FER2013_TRAIN_PROPORTIONS) == pytest.approx(1.0)
    freq = np.bincount(big.labels, minlength=NUM_CLASSES) / len(big)
    assert (freq > 0).all()
    assert freq.argmin() == CLASS_NAMES.index("disgust") and freq.argmax() == HAPPY
    np.testing.assert_allclose(freq, FER2013_TRAIN_PROPORTIONS, atol=0.03)


def test_mouth_region_depends_on_label(big: Split) -> None:
    """Would fail if labels were unrelated to the drawing: open mouths are darker where the mouth is."""
    images = big.images.astype(np.float32)
    images = (images - images.mean((1, 2), keepdims=True)) / images.std((1, 2), keepdims=True)
    darkness = -images[:, 33:41, 19:29].mean((1, 2))  # per-image standardised: skin and lighting cancel

    def z_score(labels: np.ndarray, a: int, b: int) -> float:
        da, db = darkness[labels == a], darkness[labels == b]
        return float((da.mean() - db.mean()) / np.sqrt(da.var() / len(da) + db.var() / len(db)))

    shuffled = np.random.default_rng(0).permutation(big.labels)
    for open_mouth in (SURPRISE, FEAR):
        assert z_score(big.labels, open_mouth, NEUTRAL) > 4.0, CLASS_NAMES[open_mouth]
        assert abs(z_score(shuffled, open_mouth, NEUTRAL)) < 3.0, CLASS_NAMES[open_mouth]


def test_no_global_brightness_shortcut(big: Split) -> None:
    brightness = big.images.reshape(len(big), -1).mean(1)
    spread = brightness.std()
    for c in range(NUM_CLASSES):
        members = brightness[big.labels == c]
        if len(members) >= 100:  # disgust is too rare for a stable mean at this size
            assert abs(members.mean() - brightness.mean()) < 0.15 * spread, CLASS_NAMES[c]
