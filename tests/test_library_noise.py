"""The four messages Lightning printed on every run are gone; other warnings still reach the user."""

from __future__ import annotations

import logging
import warnings

import pytest

from fer_lightning.library_noise import silence_known_noise

NOISE = [
    "`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec) and treespec.is_leaf()`",
    "Precision bf16-mixed is not supported by the model summary.  Estimated model size in MB will not be accurate.",
    "You're using the WeightAveraging callback with a model that overrides the configure_model callback.",
]


def test_known_warnings_are_filtered_and_others_are_not() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        silence_known_noise()
        for message in NOISE:
            warnings.warn(message, UserWarning, stacklevel=1)
        warnings.warn("a warning that matters", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["a warning that matters"]


def test_the_litlogger_advert_is_dropped_and_lightning_prints_once(caplog: pytest.LogCaptureFixture) -> None:
    """caplog (a root handler) is present, as Hydra's handlers are in a run: Lightning's own printer goes."""
    import lightning  # noqa: F401  (adds its console handler)

    silence_known_noise()
    silence_known_noise()  # idempotent
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")

    def record(message: str) -> logging.LogRecord:
        return rank_zero.makeRecord(rank_zero.name, logging.INFO, __file__, 1, message, None, None)

    # the logger's own filters (not handlers: an earlier in-process Hydra run may have disabled this logger)
    assert not rank_zero.filter(record("💡 Tip: For seamless cloud logging ... try installing [litlogger]"))
    assert rank_zero.filter(record("GPU available: False, used: False"))
    assert sum(type(h) is logging.StreamHandler for h in logging.getLogger("lightning").handlers) == 0
