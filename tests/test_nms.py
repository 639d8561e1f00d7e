"""fer_lightning.inference.nms: torchvision's kernel without importing torchvision, same results."""

import subprocess
import sys

import torch
from torchvision.ops import batched_nms as tv_batched_nms
from torchvision.ops import nms as tv_nms

from fer_lightning.inference.nms import batched_nms, nms


def _boxes(n: int = 600) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    xy, wh = torch.rand(n, 2, generator=g) * 300, torch.rand(n, 2, generator=g) * 60 + 5
    return torch.cat([xy, xy + wh], 1), torch.rand(n, generator=g), torch.randint(0, 4, (n,), generator=g)


def test_same_indices_as_torchvision() -> None:
    boxes, scores, groups = _boxes()
    assert torch.equal(nms(boxes, scores, 0.5), tv_nms(boxes, scores, 0.5))
    assert torch.equal(batched_nms(boxes, scores, groups, 0.5), tv_batched_nms(boxes, scores, groups, 0.5))
    assert batched_nms(boxes[:0], scores[:0], groups[:0], 0.5).numel() == 0


def test_does_not_import_torchvision() -> None:
    code = ("import sys, torch; from fer_lightning.inference.nms import nms; "
            "nms(torch.tensor([[0., 0., 9., 9.]]), torch.tensor([1.]), 0.5); print('torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
