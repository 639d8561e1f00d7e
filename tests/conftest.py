"""Shared fixtures: composed Hydra configs pointed at a temporary output directory, tiny synthetic data."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from fer_lightning.config import CONFIG_DIR

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_DATA = ["data.synthetic.n_train=96", "data.synthetic.n_val=48", "data.synthetic.n_test=48",
             "data.batch_size=32", "data.eval_batch_size=48"]


@pytest.fixture(autouse=True)
def _few_threads() -> None:
    """Two threads; one per worker when pytest-xdist runs the suite in several processes (make test: one per core)."""
    torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)


def compose_config(overrides: list[str], output_dir: Path) -> DictConfig:
    """Compose conf/train.yaml like the CLI does, with HydraConfig set so `${hydra:...}` resolves."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    return cfg


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    def _make(*overrides: str, tiny: bool = True) -> DictConfig:
        return compose_config([*(TINY_DATA if tiny else []), *overrides], tmp_path / "run")

    yield _make
    GlobalHydra.instance().clear()


ONE_EPOCH = ["trainer.max_epochs=1", "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1",
             "trainer.num_sanity_val_steps=0", "callbacks.progress_bar.refresh_rate=0", "logger=csv", "test=false",
             "model.tta=[identity,hflip]"]


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The best checkpoint of one tiny CNN training (flip TTA), shared by the tests that consume checkpoints."""
    from fer_lightning.jobs.train import train

    cfg = compose_config([*TINY_DATA, *ONE_EPOCH], tmp_path_factory.mktemp("train") / "run")
    try:
        record = train(cfg)
    finally:
        GlobalHydra.instance().clear()
    return Path(record["best"]["ckpt_path"])
