"""Config plumbing of the entry points: the config directory, the resolvers, and check_config."""

from __future__ import annotations

from pathlib import Path

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from fer_lightning.dashboard import tensorboard_save_dir, tensorboard_version
from fer_lightning.schema import ConfigError, check

# The Hydra configs: fer_lightning/conf in a wheel (pyproject.toml packages conf/ there), else the checkout's conf/
_PACKAGED = Path(__file__).resolve().parent / "conf"
CONFIG_DIR = str(_PACKAGED if (_PACKAGED / "train.yaml").is_file() else _PACKAGED.parent.parent / "conf")


def fast_precision() -> str:
    """bf16 autocast where the hardware runs it natively (CUDA with bf16, CPUs with AVX512-BF16/AMX), else fp32:
    3.4x faster than fp32 on a 2-core CPU (benchmarks/bench_pipeline.py), the same val accuracy (docs/results.md)."""
    import torch  # here, not at module level: the CLIs' config checks run before torch is imported

    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    is_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    is_amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    return "bf16-mixed" if is_bf16() or is_amx() else "32-true"


def resume_run_dir(ckpt_path: str | None, default: str) -> str:
    """`hydra.run.dir`: a resume (ckpt_path = a run dir or one of its checkpoints) continues in the run's directory."""
    path = Path(ckpt_path or "")
    if ckpt_path and path.is_dir():
        return str(path)
    return str(path.parent.parent) if ckpt_path and path.parent.name == "checkpoints" else default


for _resolver in (fast_precision, resume_run_dir, tensorboard_save_dir, tensorboard_version):
    OmegaConf.register_new_resolver(f"fer.{_resolver.__name__}", _resolver, replace=True)


def check_accelerator(value: object, key: str) -> None:
    """A GPU asked for on a machine without one: one line naming the key (Lightning's names neither key nor fix)."""
    import torch

    cuda = str(value) in ("gpu", "cuda") and not torch.cuda.is_available()
    if cuda or (str(value) == "mps" and not torch.backends.mps.is_available()):
        device = "CUDA GPU" if cuda else "Apple MPS device"
        raise ConfigError(f"{key}={value}: torch sees no {device} on this machine; use {key}=cpu (or auto)")


def check_config(cfg: DictConfig) -> None:
    """Every value by the schema, then the rules that need the network class or the machine. Raises ConfigError."""
    check(cfg, "train")
    check_accelerator(cfg.trainer.get("accelerator", "auto"), "trainer.accelerator")
    net_class = get_class(cfg.model.net._target_)
    min_size = getattr(net_class, "min_input_size", 1)
    if cfg.augment.image_size < min_size:
        raise ConfigError(f"augment.image_size={cfg.augment.image_size} is smaller than {net_class.__name__} "
                          f"allows; expected >= {min_size}")
    wants = cfg.model.net.get("in_channels", getattr(net_class, "default_in_channels", 1))
    if cfg.augment.channels != wants:
        raise ConfigError(f"augment.channels={cfg.augment.channels} but {net_class.__name__} takes {wants} "
                          f"channel(s); use augment={'imagenet' if wants == 3 else 'gray48'}")
    if (cfg.get("callbacks") or {}).get("finetune") is not None and not getattr(net_class, "has_backbone", False):
        raise ConfigError(f"callbacks.finetune needs a network with a backbone (model=resnet18), "
                          f"not {net_class.__name__}")

