"""Checkpoints built without training (a composed config, a freshly initialised network), for fast fault tests."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from tests.conftest import TINY_DATA, compose_config


def constructed_checkpoint(path: Path, *overrides: str, seed: int = 0, run_dir: Path | None = None) -> Path:
    """A checkpoint laid out as fer_lightning.train writes one (state_dict, hyper_parameters, epoch, run config),
    with random weights; `overrides` select the network and input profile (e.g. model=resnet18); `run_dir` is
    the run that wrote it (paths.output_dir)."""
    from fer_lightning.module import FERClassifier

    try:
        cfg = compose_config([*TINY_DATA, *overrides], run_dir or path.parent / "run")
        with open_dict(cfg):
            del cfg["hydra"]
        config = OmegaConf.to_container(cfg, resolve=True)
    finally:
        GlobalHydra.instance().clear()
    torch.manual_seed(seed)
    net_config = dict(config["model"]["net"])
    net = instantiate(net_config)
    hparams = {k: v for k, v in config["model"].items() if k not in ("_target_", "net")}
    model = FERClassifier(net, optimizer=None, **hparams)
    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams), "epoch": 0,
                  "fer_lightning": {"config": config, "torch": str(torch.__version__)}}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path)
    return path


def completed_run(run_dir: Path, *overrides: str, seed: int = 0) -> Path:
    """A run directory as a completed training leaves it: checkpoints/last.ckpt and a completed metrics.json."""
    ckpt = constructed_checkpoint(run_dir / "checkpoints" / "last.ckpt", *overrides, seed=seed, run_dir=run_dir)
    report = {"accuracy": 0.5, "macro_f1": 0.4, "support": 48}
    record = {"status": "completed", "task_name": "train", "run_dir": str(run_dir), "seed": seed,
              "overrides": list(overrides), "model": {"network": "FERCNN", "parameters": 1},
              "evaluated": {"weights": "last", "ckpt_path": str(ckpt), "tta": ["identity"]}, "val": report}
    (run_dir / "metrics.json").write_text(json.dumps(record))
    return run_dir
