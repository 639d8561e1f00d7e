"""Muon (`muon-optimizer`: each conv filter bank's momentum replaced by its nearest orthogonal matrix; airbench's
CIFAR-10 94 % in fewer epochs than Nesterov SGD) on conv filters, AdamW on the rest, as one optimizer for Lightning:
the package's `SingleDeviceMuonWithAuxAdam` takes no closure, rejects a group's `name`, fails on frozen and
channels-last parameters."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


class MissingExtraError(ImportError, ValueError):
    """An optional dependency is not installed; a ValueError too, so the command line reports it in one line."""


try:
    from muon import adam_update, muon_update
except ImportError:
    raise MissingExtraError("optimizer=fast_muon needs the optional muon-optimizer package: "
                            "pip install fer_lightning[muon]") from None


class MuonAdamW(torch.optim.Optimizer):
    """Muon (lr, momentum, weight_decay) on 4-D parameters (conv filters), AdamW (adam_lr, betas, eps,
    adam_weight_decay) on the rest; each param group (FERClassifier's, `name` kept) is split in two. A group's own
    `lr` sets its AdamW part's lr and scales its Muon part's by the same factor (backbone LR)."""

    def __init__(self, params: Iterable[Any], lr: float = 0.02, momentum: float = 0.95, weight_decay: float = 0.0,
                 adam_lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 adam_weight_decay: float = 0.05) -> None:
        groups = list(params)
        if groups and not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        split: list[dict[str, Any]] = []
        for group in groups:
            name = group.get("name", "net")
            scale = group["lr"] / adam_lr if "lr" in group else 1.0  # a group's own LR: the same factor for both
            rest = {k: v for k, v in group.items() if k not in ("params", "lr", "weight_decay")}
            split.append({**rest, "params": [p for p in group["params"] if p.ndim == 4], "name": f"{name}_muon",
                          "use_muon": True, "lr": lr * scale, "momentum": momentum, "weight_decay": weight_decay})
            split.append({**rest, "params": [p for p in group["params"] if p.ndim != 4], "name": name,
                          "use_muon": False, "lr": adam_lr * scale, "betas": betas, "eps": eps,
                          "weight_decay": group.get("weight_decay", adam_weight_decay)})
        super().__init__([group for group in split if group["params"]], {})

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        with torch.enable_grad():
            loss = None if closure is None else closure()
        for group in self.param_groups:
            lr, decay = group["lr"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if group["use_muon"]:
                    if not state:  # contiguous: muon_update views a filter bank as [out, in*k*k]
                        state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.contiguous_format)
                    update = muon_update(p.grad.contiguous(), state["momentum_buffer"], beta=group["momentum"])
                    update = update.view(p.shape).to(p.dtype)
                else:
                    if not state:
                        state.update(exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p), step=0)
                    state["step"] += 1
                    update = adam_update(p.grad, state["exp_avg"], state["exp_avg_sq"], state["step"],
                                         group["betas"], group["eps"])
                p.mul_(1 - lr * decay)
                p.add_(update, alpha=-lr)
        return loss
