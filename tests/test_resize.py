"""ProgressiveResize: the training crop side follows the schedule; evaluation always uses the profile's size."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from fer_lightning.callbacks import ProgressiveResize
from fer_lightning.data.augment import AugmentProfile, BatchAugment


def test_sizes_follow_fractions_of_max_epochs() -> None:
    schedule = ProgressiveResize(sizes=[32, 40], until_epoch=[0.35, 0.65])
    # 16 epochs: 32 px for epochs 0-5 (round(5.6) = 6), 40 px for 6-9 (round(10.4) = 10), then the profile's size
    assert [schedule.size_at(e, 16) for e in range(16)] == [32] * 6 + [40] * 4 + [None] * 6


def test_train_crops_take_the_scheduled_size_and_eval_keeps_the_profile_size() -> None:
    augment = BatchAugment(AugmentProfile())
    images = torch.randint(0, 256, (4, 48, 48), dtype=torch.uint8)
    augment.train_size = 32
    assert augment.train(images).shape == (4, 1, 32, 32)
    assert augment.eval(images).shape == (4, 1, 48, 48)
    augment.train_size = None
    assert augment.train(images).shape == (4, 1, 48, 48)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sizes": [32], "until_epoch": [0.3, 0.6]}, "same, non-zero length"),
    ({"sizes": [4], "until_epoch": [0.5]}, "sides >= 8"),
    ({"sizes": [32, 40], "until_epoch": [0.6, 0.3]}, "increasing"),
])
def test_bad_schedules_name_the_key(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProgressiveResize(**kwargs)


def test_cnn_fast_trains_end_to_end_with_the_schedule(make_cfg: Any) -> None:
    from fer_lightning.jobs.train import train

    cfg = make_cfg("experiment=cnn_fast", "data=synthetic", "data.path=null", "trainer.max_epochs=3",
                   "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1", "trainer.num_sanity_val_steps=0",
                   "callbacks.progress_bar.refresh_rate=0", "logger=csv", "data.batch_size=32",
                   "data.eval_batch_size=48")
    record = train(cfg)
    assert record["status"] == "completed" and record["model"]["parameters"] == 584_807
    assert record["evaluated"]["tta"] == ["identity", "hflip"]
    assert len(record["history"]) == 3
