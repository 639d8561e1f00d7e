"""Config plumbing shared by the entry points: the config directory, OmegaConf resolvers, and the checks that
reject impossible combinations before any data is loaded."""

from __future__ import annotations

from pathlib import Path

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf


def _config_dir() -> str:
    """The Hydra configs: `fer_lightning/conf` inside an installed wheel (the top-level conf/ is packaged there,
    see pyproject.toml), else the checkout's top-level conf/ (source tree, editable install)."""
    here = Path(__file__).resolve().parent
    packaged = here / "conf"
    return str(packaged if (packaged / "train.yaml").is_file() else here.parent / "conf")


CONFIG_DIR = _config_dir()
OPTIMIZED_METRICS = ("val/acc", "val/macro_f1")
EVAL_WEIGHTS = ("best", "last")
TENSORBOARD_HPARAMS = ("overrides", "all")


class ConfigError(ValueError):
    """An impossible or inconsistent configuration; the message names the key and what is allowed."""


def fast_precision() -> str:
    """bf16 autocast where the hardware runs it natively (CUDA with bf16, CPUs with AVX512-BF16/AMX), else fp32.

    Measured on this project's 2-core CPU: channels_last + bf16 autocast 3.4x faster than fp32 NCHW
    (benchmarks/bench_pipeline.py); the same val accuracy at equal budget (docs/results.md).
    """
    import torch  # here, not at module level: the CLIs' config checks run before torch is imported

    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    is_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    is_amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    return "bf16-mixed" if is_bf16() or is_amx() else "32-true"


def resume_run_dir(ckpt_path: str | None, default: str) -> str:
    """Run directory for `hydra.run.dir`: resuming (ckpt_path = a run dir or one of its checkpoints/*.ckpt)
    continues in the original run's directory, so checkpoints, TensorBoard and metrics.json stay together."""
    if not ckpt_path:
        return default
    path = Path(ckpt_path)
    if path.is_dir():
        return str(path)
    return str(path.parent.parent) if path.parent.name == "checkpoints" else default


def register_resolvers() -> None:
    from fer_lightning.dashboard import tensorboard_save_dir, tensorboard_version

    if not OmegaConf.has_resolver("fer.fast_precision"):
        OmegaConf.register_new_resolver("fer.fast_precision", fast_precision)
    if not OmegaConf.has_resolver("fer.resume_run_dir"):
        OmegaConf.register_new_resolver("fer.resume_run_dir", resume_run_dir)
    if not OmegaConf.has_resolver("fer.tensorboard_save_dir"):
        OmegaConf.register_new_resolver("fer.tensorboard_save_dir", tensorboard_save_dir)
    if not OmegaConf.has_resolver("fer.tensorboard_version"):
        OmegaConf.register_new_resolver("fer.tensorboard_version", tensorboard_version)


DATA_LAYOUTS = ("the challenge CSV (fer2013.csv or fer2013.csv.gz: emotion,pixels,Usage) or the Kaggle folder "
                "layout (train/<class>/*.png and test/<class>/*.png, or its .tar), or an .npz of arrays "
                "(python -m fer_lightning.data.pack)")


def _number(cfg: DictConfig, key: str, kind: type, low: float | None = None, high: float | None = None,
            low_open: bool = False, high_open: bool = False, optional: bool = False) -> None:
    """ConfigError naming `key`, its value and the allowed range unless the value is a `kind` within it."""
    value = OmegaConf.select(cfg, key, default=None)
    if value is None and optional:
        return
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        bounds.append(f"{'<' if high_open else '<='} {high:g}")
    expected = f"expected {'an integer' if kind is int else 'a number'}{' ' + ' and '.join(bounds) if bounds else ''}"
    ok = isinstance(value, int | float) and not isinstance(value, bool) and (kind is float or isinstance(value, int))
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        raise ConfigError(f"{key}={value}: {expected}")


def check_values(cfg: DictConfig) -> None:
    """Types and ranges of the keys users set most, checked before any data is loaded (one line, naming the key)."""
    _number(cfg, "seed", int)
    _number(cfg, "threads_per_job", int, low=1, optional=True)
    _number(cfg, "trainer.max_epochs", int, low=1)
    _number(cfg, "data.batch_size", int, low=1)
    _number(cfg, "data.eval_batch_size", int, low=1)
    _number(cfg, "data.val_fraction", float, low=0, high=1, low_open=True, high_open=True)
    _number(cfg, "optimizer.lr", float, low=0, low_open=True)
    _number(cfg, "optimizer.weight_decay", float, low=0, optional=True)
    _number(cfg, "model.label_smoothing", float, low=0, high=1, high_open=True)
    _number(cfg, "model.mix_prob", float, low=0, high=1, optional=True)
    tta = cfg.model.get("tta")
    if isinstance(tta, str):
        raise ConfigError(f"model.tta={tta}: expected a list of views, e.g. model.tta=[{tta}]")
    data = cfg.get("data") or {}
    path = data.get("path")
    if data.get("synthetic") is None and (not path or not Path(str(path)).exists()):
        found = f"data.path={path}: no such file or folder; " if path else ""
        raise ConfigError(f"{found}data.path is required with a real-data config (data=fer2013): give "
                          f"{DATA_LAYOUTS}, e.g. data.path=/data/fer2013.csv.gz (or use data=synthetic)")


def check_predict_values(cfg: DictConfig) -> None:
    """The predict config's numbers, checked before the model loads (one line, naming the key)."""
    _number(cfg, "batch_size", int, low=1)
    _number(cfg, "video_stride", int, low=1)
    _number(cfg, "max_frames", int, low=1, optional=True)
    _number(cfg, "margin", float, low=0, optional=True)
    _number(cfg, "threads", int, low=1, optional=True)


def check_config(cfg: DictConfig) -> None:
    """Cross-key checks that single components cannot make on their own. Raises ConfigError (one line)."""
    from fer_lightning.data.datamodule import IMBALANCE_STRATEGIES
    from fer_lightning.tta import TEN_CROP_FRACTION, check_views

    check_values(cfg)

    strategy = cfg.imbalance.strategy
    if strategy not in IMBALANCE_STRATEGIES:
        raise ConfigError(f"imbalance.strategy={strategy}: expected one of {', '.join(IMBALANCE_STRATEGIES)}")
    if strategy == "sampler" and cfg.model.get("class_weights") is not None:
        raise ConfigError("model.class_weights is set with imbalance=sampler: the sampler and a weighted loss "
                          "are never combined; use imbalance=weighted_loss, or drop model.class_weights")
    net_class = get_class(cfg.model.net._target_)
    min_size = getattr(net_class, "min_input_size", 1)
    if cfg.augment.image_size < min_size:
        raise ConfigError(f"augment.image_size={cfg.augment.image_size} is smaller than {net_class.__name__} "
                          f"allows; expected >= {min_size}")
    wants = cfg.model.net.get("in_channels", getattr(net_class, "default_in_channels", 1))
    if cfg.augment.channels != wants:
        raise ConfigError(f"augment.channels={cfg.augment.channels} but {net_class.__name__} takes {wants} "
                          f"channel(s); use augment={'imagenet' if wants == 3 else 'gray48'}")
    try:
        check_views(list(cfg.model.get("tta") or []), cfg.model.get("tta_crop", TEN_CROP_FRACTION))
    except ValueError as error:
        raise ConfigError(str(error)) from None
    finetune = (cfg.get("callbacks") or {}).get("finetune")
    if finetune is not None:
        if not getattr(net_class, "has_backbone", False):
            raise ConfigError(f"callbacks.finetune needs a network with a backbone (model=resnet18), "
                              f"not {net_class.__name__}")
        if finetune.unfreeze_at_epoch >= cfg.trainer.max_epochs:
            raise ConfigError(f"callbacks.finetune.unfreeze_at_epoch={finetune.unfreeze_at_epoch} must be < "
                              f"trainer.max_epochs={cfg.trainer.max_epochs}, or the backbone never trains")
    if cfg.optimized_metric not in OPTIMIZED_METRICS:
        raise ConfigError(f"optimized_metric={cfg.optimized_metric}: expected one of {', '.join(OPTIMIZED_METRICS)}")
    if cfg.get("tensorboard_hparams", "overrides") not in TENSORBOARD_HPARAMS:
        raise ConfigError(f"tensorboard_hparams={cfg.tensorboard_hparams}: expected one of "
                          f"{', '.join(TENSORBOARD_HPARAMS)}")
    if cfg.get("eval_weights", "best") not in EVAL_WEIGHTS:
        raise ConfigError(f"eval_weights={cfg.eval_weights}: expected one of {', '.join(EVAL_WEIGHTS)}")
    interval = (cfg.get("scheduler") or {}).get("interval", "epoch")
    if interval not in ("epoch", "step"):
        raise ConfigError(f"scheduler.interval={interval}: expected epoch or step")


register_resolvers()
