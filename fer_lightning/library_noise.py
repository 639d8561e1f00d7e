"""The messages Lightning prints on every run that say nothing about this run, silenced at one place, each with why
(fixed at the cause where the cause is ours, filtered where it is the library's and harmless here)."""

from __future__ import annotations

import logging
import warnings


def _not_an_advert(record: logging.LogRecord) -> bool:
    """Lightning 2.6 logs a litlogger advert ("💡 Tip: ...") on every Trainer: an advert, not a diagnosis."""
    return not str(record.msg).startswith("💡 Tip:")


def silence_known_noise() -> None:
    """Call before building a Trainer; idempotent."""
    # `import lightning` adds a console handler beside Hydra's root one, so each line printed twice: drop the second
    lightning_logger = logging.getLogger("lightning")
    if logging.getLogger().hasHandlers():
        lightning_logger.handlers = [h for h in lightning_logger.handlers if type(h) is not logging.StreamHandler]
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_not_an_advert)  # added once, like a set
    # Lightning 2.6's _pytree calls torch's deprecated LeafSpec; nothing this package can change (torch 2.14).
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    # Under bf16-mixed the parameters are fp32, so the summary's "using 32 bits instead" estimate is the true size.
    warnings.filterwarnings("ignore", message=r"Precision bf16-mixed is not supported by the model summary")
    # FERClassifier.configure_model creates no layers (memory format, compile): the EMA warning about sharding is moot
    warnings.filterwarnings("ignore", message=r"You're using the WeightAveraging callback with a model that overrides")
