"""Every option of every config group composes, resolves and instantiates its objects (no data loaded)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from fer_lightning.config import CONFIG_DIR, ConfigError

GROUPS = ["data", "augment", "model", "optimizer", "scheduler", "imbalance", "trainer", "logger", "callbacks",
          "debug", "experiment"]


def options(group: str) -> list[str]:
    """The selectable options (files starting with _ hold keys that options share, e.g. model/_base.yaml)."""
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml") if not p.stem.startswith("_"))


CASES = [(group, option) for group in GROUPS for option in options(group)]


def test_every_group_has_options() -> None:
    assert all(options(group) for group in GROUPS)


@pytest.mark.parametrize(("group", "option"), CASES, ids=[f"{g}={o}" for g, o in CASES])
def test_option_composes_and_instantiates(group: str, option: str, make_cfg: Callable[..., DictConfig]) -> None:
    overrides = [f"{group}={option}"] + (["model.net.weights=null"] if "resnet" in option else [])
    cfg = make_cfg(*overrides, tiny=False)
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    if cfg.get("optimizer"):
        assert callable(instantiate(cfg.optimizer))
    if cfg.get("scheduler"):
        assert callable(instantiate(cfg.scheduler))
    dm = instantiate(cfg.data, augment=OmegaConf.to_container(cfg.augment), imbalance=cfg.imbalance.strategy,
                     _convert_="all")
    assert dm.datasets == {}  # nothing loaded yet
    for callback in (cfg.get("callbacks") or {}).values():
        instantiate(callback)
    for logger in (cfg.get("logger") or {}).values():
        instantiate(logger)


def test_resnet_model_brings_its_input_profile(make_cfg: Callable[..., DictConfig]) -> None:
    assert make_cfg("model=resnet18", tiny=False).augment.channels == 3
    assert make_cfg("model=cnn", tiny=False).augment.channels == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_a_gpu_asked_for_without_one_names_the_key() -> None:
    from fer_lightning.config import check_accelerator

    with pytest.raises(ConfigError, match=r"^trainer.accelerator=gpu: torch sees no CUDA GPU on this machine; use "
                                          r"trainer.accelerator=cpu \(or auto\)$"):
        check_accelerator("gpu", "trainer.accelerator")
    check_accelerator("cpu", "trainer.accelerator")
    check_accelerator("auto", "accelerator")
