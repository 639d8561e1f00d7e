"""Train a FER model: `python -m fer_lightning.train [group=option ...] [key=value ...]` (`-m`: a sweep). Imports only
Hydra, so `--help` and a rejected override answer before torch loads; the job runs in `fer_lightning.jobs.train`."""

from __future__ import annotations

import logging
from functools import partial

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from fer_lightning.cli import expected_failure, fail, run_checked
from fer_lightning.config import CONFIG_DIR


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """A failed job is recorded in its metrics.json either way; a single run then exits non-zero, a sweep goes on."""
    from fer_lightning.jobs import train as training

    try:
        record = training.train(cfg)
    except (KeyboardInterrupt, SystemExit):  # Lightning turns Ctrl-C into a graceful stop and sys.exit(1)
        training.run_record(cfg).interrupted()
        raise
    except Exception as error:
        training.record_failure(cfg, error)
        if not (HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN):
            if (expected := expected_failure(error)) is None:
                raise
            fail("train", expected)
        logging.getLogger(__name__).error("job failed: %s: %s", type(error).__name__, error)
        # Optuna aborts the study on None and leaves the trial RUNNING on NaN; -inf completes it as the worst value
        return float("-inf")
    return training.objective(record, cfg.optimized_metric)


run = partial(run_checked, main, "train")  # the command-line entry: a bad override is rejected before Hydra starts


if __name__ == "__main__":
    run()
