"""ImageNet ResNet18 with a new FER head, split into `backbone` and `head` for two-stage fine-tuning."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def _load_backbone_weights(backbone: nn.Module, weights: str) -> None:
    """`imagenet`: torchvision's IMAGENET1K_V1 loading code, unchanged; anything else: a local state-dict file."""
    if weights == "imagenet":
        from torchvision.models import ResNet18_Weights

        spec = ResNet18_Weights.IMAGENET1K_V1
        try:
            state = spec.get_state_dict(progress=False, check_hash=True)
        except Exception as exc:  # offline: URLError / OSError from torch.hub
            target = Path(torch.hub.get_dir()) / "checkpoints" / Path(spec.url).name
            raise RuntimeError(f"model.net.weights=imagenet: could not load {spec.url} ({type(exc).__name__}: {exc}); "
                               f"without internet put that file at {target}, or pass "
                               "model.net.weights=/path/to/resnet18.pth") from None
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"model.net.weights={weights}: no such file (expected a ResNet18 state dict)")
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = backbone.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"model.net.weights={weights}: not a ResNet18 state dict "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")


class ResNet18Classifier(nn.Module):
    """torchvision ResNet18 (fc removed) as `backbone` + `head` = optional Dropout + Linear(512, num_classes);
    weights: "imagenet" (torchvision's IMAGENET1K_V1), None (random init) or a path to a local state dict."""

    min_input_size = 32
    default_in_channels = 3
    has_backbone = True  # `backbone` and `head`: separate LRs, two-stage fine-tuning

    def __init__(self, num_classes: int = 7, weights: str | None = None, dropout: float = 0.0) -> None:
        from torchvision.models import resnet18  # here: importing torchvision costs ~2 s, the CNN never needs it

        super().__init__()
        self.backbone = resnet18(weights=None)
        self.backbone.fc = nn.Identity()
        if weights is not None:
            _load_backbone_weights(self.backbone, str(weights))
        head: list[nn.Module] = [nn.Dropout(dropout)] if dropout > 0 else []
        self.head = nn.Sequential(*head, nn.Linear(512, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))
