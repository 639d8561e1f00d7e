"""Statistics that decide whether one recipe beats another (time to an accuracy, paired-seed t-intervals, bootstrap
over images, McNemar's test): pure functions on plain numbers, each tested against values computed by hand."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as scipy_stats


def check_threshold(threshold: float | str) -> float:
    """A target accuracy in (0, 1], given as a number or as report's --time-to text; ValueError naming --time-to."""
    try:
        value = float(threshold)
    except ValueError:
        raise ValueError(f"--time-to {threshold!r}: expected accuracies in (0, 1], e.g. 0.65,0.68") from None
    if not 0.0 < value <= 1.0:
        raise ValueError(f"--time-to {value!r}: expected accuracies in (0, 1], e.g. 0.65,0.68")
    return value


def time_to(history: Sequence[Mapping[str, Any]], threshold: float) -> tuple[int, float] | None:
    """(1-based epoch, seconds of training) of the first history row whose val/acc reaches `threshold`;
    None if no row does. Rows are train.py's per-epoch history (`epoch` from 0, `time_s` since the fit began)."""
    check_threshold(threshold)
    for row in sorted(history, key=lambda r: r.get("epoch", 0)):
        value = row.get("val/acc")
        if value is not None and float(value) >= threshold:
            return int(row["epoch"]) + 1, float(row["time_s"])
    return None


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval."""

    estimate: float
    low: float
    high: float
    n: int

    def excludes_zero(self) -> bool:
        return self.low > 0.0 or self.high < 0.0


def paired_difference(candidate: Mapping[Any, float], baseline: Mapping[Any, float]) -> Interval | None:
    """Mean over the seeds both rows ran of (candidate - baseline), with the paired 95 % t-interval: pairing by seed
    removes the seed's own effect (data order, initialisation) from the comparison. None when no seed is shared."""
    seeds = [s for s in candidate if s in baseline]
    if not seeds:
        return None
    a, b = (np.array([values[s] for s in seeds], dtype=np.float64) for values in (candidate, baseline))
    low, high = scipy_stats.ttest_rel(a, b).confidence_interval(0.95) if len(seeds) > 1 else (math.nan,) * 2
    return Interval(float((a - b).mean()), float(low), float(high), len(seeds))


def macro_f1(targets: Any, predictions: Any, num_classes: int) -> float:
    """torchmetrics' macro F1, the training records' definition (a class absent from both targets and predictions
    is left out of the mean)."""
    import torch
    from torchmetrics.functional.classification import multiclass_f1_score

    return float(multiclass_f1_score(torch.as_tensor(np.asarray(predictions)), torch.as_tensor(np.asarray(targets)),
                                     num_classes, average="macro", validate_args=False))


def bootstrap_intervals(targets: Sequence[int], predictions: Sequence[int], num_classes: int,
                        resamples: int = 1000, seed: int = 0) -> dict[str, Interval]:
    """95 % percentile bootstrap over images (targets and predictions resampled together) for accuracy and macro-F1 of
    one classifier on one split: how much the numbers would move on another draw of the same number of test images
    (not across training seeds)."""
    if resamples < 1:
        raise ValueError(f"bootstrap={resamples}: expected a number of resamples >= 1 (e.g. 1000)")
    y, p = np.asarray(targets, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    if y.shape != p.shape or y.ndim != 1 or y.size == 0:
        raise ValueError("bootstrap_intervals: targets and predictions need the same, non-zero length")
    # macro F1 one resample at a time: 1,000 x 3,589 images 4.3 s (busy 2-core CPU), vectorised it was ~20x slower
    statistics = {"accuracy": (lambda t, q, axis=-1: (t == q).mean(axis=axis), True),
                  "macro_f1": (lambda t, q: macro_f1(t, q, num_classes), False)}
    result = {}
    for name, (statistic, vectorized) in statistics.items():  # the same seed: both metrics on the same resamples
        ci = scipy_stats.bootstrap((y, p), statistic, paired=True, vectorized=vectorized, n_resamples=resamples,
                                   batch=100, confidence_level=0.95, method="percentile",
                                   random_state=np.random.default_rng(seed)).confidence_interval
        result[name] = Interval(float(statistic(y, p)), float(ci.low), float(ci.high), int(y.size))
    return result


@dataclass(frozen=True)
class McNemar:
    """McNemar's test on paired predictions: b = images only A gets right, c = only B gets right."""

    b: int
    c: int
    statistic: float  # chi-squared with continuity correction, (|b - c| - 1)^2 / (b + c)
    p_value: float  # exact two-sided binomial p-value on the b + c discordant images


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> McNemar:
    """Whether two classifiers' accuracies on the same images differ by more than chance: only the images on
    which they disagree count. The exact binomial p-value is used (valid for few discordant images too)."""
    right_a, right_b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if right_a.shape != right_b.shape or right_a.size == 0:
        raise ValueError("mcnemar: both classifiers need predictions on the same, non-empty set of images")
    b, c = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum())
    if b + c == 0:
        return McNemar(0, 0, 0.0, 1.0)
    return McNemar(b, c, (abs(b - c) - 1) ** 2 / (b + c), float(scipy_stats.binomtest(min(b, c), b + c).pvalue))
