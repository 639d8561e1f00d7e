"""stats: time-to-accuracy, paired t-intervals, bootstrap and McNemar against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fer_lightning.stats import bootstrap_intervals, macro_f1, mcnemar, paired_difference, time_to

HISTORY = [{"epoch": 0, "time_s": 30.0, "val/acc": 0.50}, {"epoch": 1, "time_s": 61.0, "val/acc": 0.66},
           {"epoch": 2, "time_s": 90.5, "val/acc": 0.64}, {"epoch": 3, "time_s": 121.0, "val/acc": 0.69}]


def test_time_to_is_the_first_epoch_reaching_the_threshold() -> None:
    assert time_to(HISTORY, 0.65) == (2, 61.0)  # epoch index 1 -> the 2nd epoch, 61 s into the fit
    assert time_to(HISTORY, 0.68) == (4, 121.0)
    assert time_to(HISTORY, 0.66) == (2, 61.0)  # reaching means >=
    assert time_to(HISTORY, 0.70) is None
    assert time_to(list(reversed(HISTORY)), 0.65) == (2, 61.0)  # order of rows does not matter


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5])
def test_time_to_rejects_thresholds_outside_the_unit_interval(bad: float) -> None:
    with pytest.raises(ValueError, match="--time-to"):
        time_to(HISTORY, bad)


def differences(*values: float) -> dict[int, float]:
    return dict(enumerate(values))


def test_t_interval_matches_the_textbook_formula() -> None:
    # differences 0.01, 0.02, 0.03: mean 0.02, s = 0.01, t_{0.975, 2} = 4.302652729911275
    zeros = differences(0.0, 0.0, 0.0)
    interval = paired_difference(differences(0.01, 0.02, 0.03), zeros)
    half = 4.302652729911275 * 0.01 / math.sqrt(3)
    assert interval.estimate == pytest.approx(0.02)
    assert (interval.low, interval.high) == (pytest.approx(0.02 - half), pytest.approx(0.02 + half))
    assert interval.n == 3 and not interval.excludes_zero()  # half-width 0.0248 > 0.02
    assert paired_difference(differences(0.020, 0.021, 0.019), zeros).excludes_zero()
    single = paired_difference({1: 0.5}, {1: 0.0})
    assert single.estimate == 0.5 and math.isnan(single.low) and single.n == 1


def test_paired_difference_uses_only_shared_seeds() -> None:
    candidate = {1: 0.70, 2: 0.72, 3: 0.69, 9: 0.10}  # seed 9 has no partner: ignored
    baseline = {1: 0.68, 2: 0.69, 3: 0.69, 4: 0.99}
    interval = paired_difference(candidate, baseline)
    # per-seed differences 0.02, 0.03, 0.00: mean 0.016667, s = 0.015275, t_{0.975,2} = 4.302653
    assert interval.estimate == pytest.approx(0.05 / 3)
    assert interval.high - interval.estimate == pytest.approx(4.302652729911275 * 0.015275252 / math.sqrt(3), rel=1e-6)
    assert not interval.excludes_zero()
    assert paired_difference({5: 0.1}, {6: 0.2}) is None


def test_macro_f1_by_hand() -> None:
    targets = np.array([0, 0, 1, 1, 2])
    predictions = np.array([0, 1, 1, 1, 0])
    # class 0: tp 1 fp 1 fn 1 -> 0.5; class 1: tp 2 fp 1 fn 0 -> 0.8; class 2: tp 0 fn 1 -> 0; class 3 unseen: left out
    assert macro_f1(targets, predictions, 4) == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def test_bootstrap_interval_contains_the_estimate_and_shrinks_with_more_images() -> None:
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 7, 400)
    predictions = np.where(rng.random(400) < 0.7, targets, rng.integers(0, 7, 400))
    small = bootstrap_intervals(targets[:100], predictions[:100], 7, resamples=300, seed=1)
    large = bootstrap_intervals(targets, predictions, 7, resamples=300, seed=1)
    for result in (small, large):
        for interval in result.values():
            assert interval.low <= interval.estimate <= interval.high
    assert large["accuracy"].estimate == pytest.approx(float((targets == predictions).mean()))
    # binomial standard error sqrt(p(1-p)/n): the 95 % width is about 4 of them
    p = large["accuracy"].estimate
    assert large["accuracy"].high - large["accuracy"].low == pytest.approx(3.92 * math.sqrt(p * (1 - p) / 400), rel=0.2)
    assert (large["accuracy"].high - large["accuracy"].low) < (small["accuracy"].high - small["accuracy"].low)
    assert bootstrap_intervals(targets, predictions, 7, resamples=50, seed=3) == \
        bootstrap_intervals(targets, predictions, 7, resamples=50, seed=3)
    with pytest.raises(ValueError, match="bootstrap=0"):
        bootstrap_intervals(targets, predictions, 7, resamples=0)


def test_mcnemar_counts_discordant_pairs_and_gives_the_exact_binomial_p() -> None:
    a = [True] * 10 + [False] * 2 + [True] * 5 + [False] * 3  # 10 only-A, 2 only-B, 5 both, 3 neither
    b = [False] * 10 + [True] * 2 + [True] * 5 + [False] * 3
    result = mcnemar(a, b)
    assert (result.b, result.c) == (10, 2)
    assert result.statistic == pytest.approx((abs(10 - 2) - 1) ** 2 / 12)
    # two-sided exact: 2 * P(X <= 2), X ~ Bin(12, 0.5) = 2 * (1 + 12 + 66) / 4096
    assert result.p_value == pytest.approx(2 * 79 / 4096)
    assert mcnemar([True, False], [True, False]).p_value == 1.0
    with pytest.raises(ValueError, match="same"):
        mcnemar([True], [True, False])
