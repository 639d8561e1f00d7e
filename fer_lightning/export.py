"""Export a trained network to ONNX or TorchScript, with its preprocessing contract in a JSON sidecar:
`python -m fer_lightning.export ckpt_path=.../best.ckpt format=onnx|torchscript [output=model.onnx] [fold_tta=true]`.
Imports only Hydra, so `--help` and a rejected override answer before torch loads (the job: `jobs.export`)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from fer_lightning.cli import fail, run_checked
from fer_lightning.config import CONFIG_DIR


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="export")
def main(cfg: DictConfig) -> None:
    """Every failure the export can name (bad checkpoint, format, output, a failed verification): one line, exit 2."""
    from fer_lightning.jobs import export as exporting

    suffix = exporting.FORMATS.get(cfg.format, "")
    output = cfg.output or Path(HydraConfig.get().runtime.output_dir) / f"model{suffix}"
    try:
        exporting.export_checkpoint(cfg.ckpt_path, cfg.format, output, fold_tta=cfg.fold_tta, opset=cfg.opset,
                                    check=cfg.verify)
    except (ValueError, OSError, exporting.ExportError) as error:  # CheckpointError is a ValueError
        fail("export", error)


run = partial(run_checked, main, "export")  # the command-line entry: a bad override is rejected before Hydra starts


if __name__ == "__main__":
    run()
