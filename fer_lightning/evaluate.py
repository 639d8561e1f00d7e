"""Evaluate a trained checkpoint on val or test: the report's classification table, confusion matrix and JSON.

    python -m fer_lightning.evaluate ckpt_path=outputs/runs/.../checkpoints/epoch_012.ckpt
        [split=test] [data.path=/path/to/fer2013.csv.gz] [tta=[identity,hflip]] [raw_weights=true] [output_dir=DIR]
        [bootstrap=1000] [compare_ckpt_path=other.ckpt]

Imports only Hydra, so `--help` and a rejected override answer before torch loads (the job: `jobs.evaluate`).
"""

from __future__ import annotations

import logging
import sys

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
    status = evaluation.run(cfg, HydraConfig.get().runtime.output_dir)
    if status:
        sys.exit(status)


def cli() -> None:
    """Command-line entry: reject a bad override in one line, then hand over to Hydra."""
    run_checked(main, "evaluate")


if __name__ == "__main__":
    cli()
