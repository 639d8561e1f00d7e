"""Config plumbing shared by the entry points: the config directory and OmegaConf resolvers."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import OmegaConf

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")


def fast_precision() -> str:
    """bf16 autocast where the hardware runs it natively (CUDA with bf16, CPUs with AVX512-BF16/AMX), else fp32.

    Measured on this project's 2-core CPU: channels_last + bf16 autocast 3.4x faster than fp32 NCHW
    (benchmarks/bench_pipeline.py); the same val accuracy at equal budget (docs/results.md).
    """
    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    is_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    is_amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    return "bf16-mixed" if is_bf16() or is_amx() else "32-true"


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("fer.fast_precision"):
        OmegaConf.register_new_resolver("fer.fast_precision", fast_precision)


register_resolvers()
