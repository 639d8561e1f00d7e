"""Every option of every config group composes, resolves and instantiates its objects (no data loaded)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from fer_lightning.config import CONFIG_DIR

GROUPS = ["data", "augment", "model", "optimizer", "scheduler", "imbalance", "trainer", "logger", "callbacks",
          "debug", "experiment"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))


CASES = [(group, option) for group in GROUPS for option in options(group)]


def test_every_group_has_options() -> None:
    assert all(options(group) for group in GROUPS)
    assert {"cnn", "resnet18"} <= set(options("model"))
    assert {"cosine", "linear", "inverse_sqrt", "warmup_cosine", "fast_warmup_cosine", "plateau", "none"} == set(
        options("scheduler"))
    assert {"sgd", "adam", "adamw", "fast_sgd", "fast_adam", "fast_adamw", "fast_muon"} == set(options("optimizer"))
    assert {"none", "sampler", "weighted_loss"} == set(options("imbalance"))


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


def test_experiments_set_the_reports_recipes(make_cfg: Callable[..., DictConfig]) -> None:
    cnn = make_cfg("experiment=seed_cnn", tiny=False)
    assert (cnn.optimizer.lr, cnn.optimizer.weight_decay, cnn.data.batch_size) == (1.7e-3, 1.8e-5, 256)
    assert (cnn.model.net.dropout, cnn.trainer.max_epochs, cnn.imbalance.strategy) == (0.55, 80, "sampler")
    assert (cnn.scheduler.factor, cnn.scheduler.patience, cnn.scheduler.monitor) == (0.5, 5, "val/acc")
    res = make_cfg("experiment=seed_resnet18", tiny=False)
    assert res.augment.name == "imagenet" and res.augment.image_size == 224 and res.augment.interpolation == "bicubic"
    assert (res.optimizer.lr, res.optimizer.weight_decay, res.model.backbone_lr) == (1e-3, 1e-2, 5e-5)
    assert res.callbacks.finetune.unfreeze_at_epoch == 5 and res.model.label_smoothing == 0.1
    assert list(res.model.tta) == ["identity", "hflip"] and res.trainer.max_epochs == 70
    assert res.data.batch_size == 128 and res.scheduler._target_.endswith("cosine")


def test_resnet_model_brings_its_input_profile(make_cfg: Callable[..., DictConfig]) -> None:
    assert make_cfg("model=resnet18", tiny=False).augment.channels == 3
    assert make_cfg("model=cnn", tiny=False).augment.channels == 1


def test_cnn_best_keeps_the_reports_network(make_cfg: Callable[..., DictConfig]) -> None:
    best = make_cfg("experiment=cnn_best", tiny=False)
    net = instantiate(best.model.net)
    assert sum(p.numel() for p in net.parameters()) == 584_807
    assert best.model.net._target_ == make_cfg("experiment=seed_cnn", tiny=False).model.net._target_
    assert (best.imbalance.strategy, best.imbalance.power, best.model.label_smoothing) == ("weighted_loss", 0.5, 0.1)
    assert best.callbacks.ema._target_.endswith("EMAWeights") and best.augment.erasing_p > 0
    assert (best.trainer.max_epochs, best.eval_weights) == (120, "last")  # the measured recipe: final weights
    optimizer = best.optimizer
    assert (optimizer._target_, optimizer.lr, optimizer.weight_decay) == ("torch.optim.AdamW", 2e-3, 0.05)
    assert make_cfg("experiment=cnn_best", "scheduler=cosine", tiny=False).scheduler._target_.endswith("cosine")
