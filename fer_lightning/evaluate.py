"""Evaluate a checkpoint: `python -m fer_lightning.evaluate ckpt_path=X.ckpt [split=test] ...` (conf/evaluate.yaml).
Imports only Hydra, so `--help` and a rejected override answer before torch loads (the job: `jobs.evaluate`)."""

from __future__ import annotations

import logging
from functools import partial

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from fer_lightning.cli import run_checked
from fer_lightning.config import CONFIG_DIR


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="evaluate")
def main(cfg: DictConfig) -> None:
    """Known bad input (a missing checkpoint, an unknown split) exits 2 after one line on stderr."""
    from fer_lightning.jobs import evaluate as evaluation

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    if status := evaluation.run(cfg, HydraConfig.get().runtime.output_dir):
        raise SystemExit(status)


cli = partial(run_checked, main, "evaluate")  # the command-line entry: a bad override is rejected before Hydra starts


if __name__ == "__main__":
    cli()
