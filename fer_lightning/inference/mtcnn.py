"""MTCNN face detection (Zhang et al. 2016: a cascade of three small CNNs), vendored so the package's default
detector works on a plain install.

The networks and the cascade follow facenet-pytorch 2.6 (MIT licence, Copyright (c) 2019 Timothy Esler; the
notice is in fer_lightning/weights/MTCNN_LICENSE.md), whose P/R/O-Net weights (ported from the original
Caffe models via davidsandberg/facenet) ship here as `weights/mtcnn.pt`. Why not depend on facenet-pytorch: its
metadata pins torch<2.3 although its code runs on current torch. Changes, none altering a box: images are
grayscale, so each network's first convolution has its three input channels summed into one (the RGB copy of a
gray image gives the same sums, at a third of the first layer's work); the networks run channels-last (CPU
max-pooling is far faster so); a batch holds same-sized images only (turned copies of one frame), so no padding;
the pyramid levels and the crops are area averages read off each image's integral table (`_area_means`: the same
numbers as `interpolate(mode="area")`, without a call per crop); R- and O-Net convolve their crops a chunk at a
time (`_Stage.chunk`). One addition, off unless asked (`mirror=True`, the package's detector asks): each final
box's score is averaged with O-Net's score on its mirror image.
tests/test_predict.py checks the boxes against facenet-pytorch where it is installed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from fer_lightning.inference.nms import batched_nms

WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "mtcnn.pt"
_PIXEL_SCALE = 0.0078125  # (x - 127.5) / 128, the networks' input scaling
_CHUNK = 64  # crops per convolution call in R- and O-Net (see _Stage)


class _Flatten(nn.Module):
    """NCHW -> N x (W*H*C), in the Caffe models' order (width before height), which the dense layers expect."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


def _conv_block(index: int, cin: int, cout: int, kernel: int, pool: tuple[int, int] | None
                ) -> list[tuple[str, nn.Module]]:
    layers: list[tuple[str, nn.Module]] = [(f"conv{index}", nn.Conv2d(cin, cout, kernel)),
                                           (f"prelu{index}", nn.PReLU(cout))]
    if pool:
        layers.append((f"pool{index}", nn.MaxPool2d(*pool, ceil_mode=True)))
    return layers


class _Stage(nn.Module):
    """One network of the cascade: a body, then a face score (softmax over face / not face) and a box offset.

    `chunk`: the convolutions (all layers before the flatten) take that many crops at a time, the dense layers all
    of them at once. A frame sends 50-500 crops to R-Net, whose first activations (54 KB a crop) then outgrow the
    CPU caches: in chunks of 64 the R-Net call took half the time (250 crops, 1 thread), each crop's numbers unchanged.
    """

    def __init__(self, body: list[tuple[str, nn.Module]], score: nn.Module, offset: nn.Module, chunk: int = 0
                 ) -> None:
        super().__init__()
        self.body, self.score, self.offset, self.chunk = nn.Sequential(OrderedDict(body)), score, offset, chunk
        names = [name for name, _ in body]
        flatten = names.index("flatten") if chunk else len(names)
        # a tuple, not submodules: the weights stay under `body.` (the slices share its layers)
        self.parts = (self.body[:flatten], self.body[flatten:])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        convolutions, dense = self.parts
        x = dense(torch.cat([convolutions(part) for part in x.split(self.chunk)]) if self.chunk else convolutions(x))
        return self.offset(x), self.score(x).softmax(dim=1)


def pnet() -> _Stage:
    """12x12 proposal network, fully convolutional: a score and an offset per 2-pixel stride."""
    body = _conv_block(1, 1, 10, 3, (2, 2)) + _conv_block(2, 10, 16, 3, None) + _conv_block(3, 16, 32, 3, None)
    return _Stage(body, nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1))


def rnet() -> _Stage:
    """24x24 refinement network: rejects most proposals and corrects the rest."""
    body = (_conv_block(1, 1, 28, 3, (3, 2)) + _conv_block(2, 28, 48, 3, (3, 2)) + _conv_block(3, 48, 64, 2, None)
            + [("flatten", _Flatten()), ("dense4", nn.Linear(576, 128)), ("prelu4", nn.PReLU(128))])
    return _Stage(body, nn.Linear(128, 2), nn.Linear(128, 4), chunk=_CHUNK)


def onet() -> _Stage:
    """48x48 output network: the final score and box (its five landmarks are not used here)."""
    body = (_conv_block(1, 1, 32, 3, (3, 2)) + _conv_block(2, 32, 64, 3, (3, 2)) + _conv_block(3, 64, 64, 3, (2, 2))
            + _conv_block(4, 64, 128, 2, None)
            + [("flatten", _Flatten()), ("dense5", nn.Linear(1152, 256)), ("prelu5", nn.PReLU(256))])
    return _Stage(body, nn.Linear(256, 2), nn.Linear(256, 4), chunk=_CHUNK)


# facenet-pytorch's names of each network's score and offset heads; its O-Net landmark head (dense6_3) is dropped
_HEADS = {"conv4_1": "score", "conv4_2": "offset", "dense5_1": "score", "dense5_2": "offset",
          "dense6_1": "score", "dense6_2": "offset", "dense6_3": None}


def _load(net: nn.Module, name: str, state: dict[str, torch.Tensor]) -> nn.Module:
    """facenet-pytorch's flat keys (conv1.weight, conv4_1.bias) into this module's (body.conv1.weight,
    score.bias); the first convolution's RGB kernels summed into one gray kernel."""
    own = {}
    for key, value in state.items():
        if not key.startswith(f"{name}."):
            continue
        layer, _, param = key[len(name) + 1:].partition(".")
        if layer == "conv1" and param == "weight":
            value = value.sum(dim=1, keepdim=True)
        if layer not in _HEADS:
            own[f"body.{layer}.{param}"] = value
        elif _HEADS[layer]:
            own[f"{_HEADS[layer]}.{param}"] = value
    net.load_state_dict(own)
    return net.eval().requires_grad_(False)


class MTCNN:
    """The three-stage cascade on one grayscale image; `detect` returns corner boxes [N, 4] and scores [N]."""

    def __init__(self, min_face_size: int = 20, thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
                 factor: float = 0.709, device: str = "cpu", weights: str | Path = WEIGHTS, mirror: bool = False,
                 min_score: float = 0.0) -> None:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        self.pnet, self.rnet, self.onet = (_load(net, name, state).to(device, memory_format=torch.channels_last)
                                           for net, name in ((pnet(), "pnet"), (rnet(), "rnet"), (onet(), "onet")))
        self.min_face_size, self.thresholds, self.factor, self.device = min_face_size, thresholds, factor, device
        self.mirror, self.min_score = mirror, min_score

    @torch.no_grad()
    def detect(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.detect_batch([gray])[0]

    @torch.no_grad()
    def detect_batch(self, grays: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """`detect` on same-sized images at once (e.g. turned copies of one frame): one network call per pyramid
        level and per stage for all of them, instead of one per image; each image's boxes are its own."""
        tables = np.stack([_integral(gray) for gray in grays])
        boxes, owner = self._propose(tables)
        if len(boxes):
            boxes, owner = self._refine(tables, boxes, owner, self.rnet, 24, self.thresholds[1])
        if len(boxes):
            boxes, owner = self._refine(tables, boxes, owner, self.onet, 48, self.thresholds[2], final=True)
        if self.mirror and len(boxes):
            boxes, owner = self._mirrored(tables, boxes, owner)
        boxes, owner = boxes.cpu().numpy(), owner.cpu().numpy()
        return [(boxes[owner == k, :4], boxes[owner == k, 4]) for k in range(len(grays))]

    def _scales(self, height: int, width: int) -> list[float]:
        """The image pyramid: the 12-px P-Net window at each scale covers faces from min_face_size upwards."""
        scale, shortest, scales = 12.0 / self.min_face_size, min(height, width) * 12.0 / self.min_face_size, []
        while shortest >= 12:
            scales.append(scale)
            scale, shortest = scale * self.factor, shortest * self.factor
        return scales

    def _propose(self, tables: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage 1: P-Net over the pyramid; rows (x0, y0, x1, y1, score), squared, and each row's image index."""
        height, width = tables.shape[1] - 1, tables.shape[2] - 1
        found, owners = [], []
        for scale in self._scales(height, width):
            resized = _area_resized(tables, (int(height * scale + 1), int(width * scale + 1)))
            offsets, probs = self.pnet(_normalised(resized.to(self.device)))
            score = probs[:, 1]
            ks, ys, xs = torch.nonzero(score >= self.thresholds[0], as_tuple=True)
            cells = torch.stack([xs, ys], dim=1).to(torch.float32)
            corners = torch.cat([((2 * cells + 1) / scale).floor(), ((2 * cells + 12) / scale).floor()], dim=1)
            rows = torch.cat([corners, score[ks, ys, xs, None], offsets[ks, :, ys, xs]], dim=1)
            keep = batched_nms(rows[:, :4], rows[:, 4], ks, 0.5)
            found.append(rows[keep])
            owners.append(ks[keep])
        rows = torch.cat(found) if found else torch.zeros((0, 9), device=self.device)
        owner = torch.cat(owners) if owners else torch.zeros(0, dtype=torch.long, device=self.device)
        keep = batched_nms(rows[:, :4], rows[:, 4], owner, 0.7)
        rows, owner = rows[keep], owner[keep]
        side = rows[:, 2:4] - rows[:, 0:2]
        corners = torch.cat([rows[:, 0:2] + rows[:, 5:7] * side, rows[:, 2:4] + rows[:, 7:9] * side], dim=1)
        return _square(torch.cat([corners, rows[:, 4:5]], dim=1)), owner

    def _mirrored(self, tables: np.ndarray, boxes: torch.Tensor, owner: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each final box's score averaged with O-Net's score on the mirror image of its crop (an addition to the
        cascade): a face stays a face when mirrored, and most textures O-Net mistakes for one do not. A box scoring
        under 2 * min_score - 1 cannot reach min_score whatever its mirror scores: dropped without the second pass."""
        reachable = boxes[:, 4] >= 2 * self.min_score - 1
        boxes, owner = boxes[reachable], owner[reachable]
        if not len(boxes):
            return boxes, owner
        boxes, owner, crops = _crops(tables, boxes, owner, 48)
        _, probs = self.onet(_normalised(crops.flip(-1).to(self.device)))
        return torch.cat([boxes[:, :4], (boxes[:, 4:5] + probs[:, 1:2]) / 2], dim=1), owner

    def _refine(self, tables: np.ndarray, boxes: torch.Tensor, owner: torch.Tensor, net: nn.Module, size: int,
                threshold: float, final: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Stages 2 and 3: each box's crop through R-Net (24 px) or O-Net (48 px); keep, regress, NMS per image."""
        boxes, owner, crops = _crops(tables, boxes, owner, size)
        offsets, probs = net(_normalised(crops.to(self.device)))
        keep = probs[:, 1] > threshold
        boxes, owner = torch.cat([boxes[keep, :4], probs[keep, 1:2]], dim=1), owner[keep]
        offsets = offsets[keep]
        if not final:
            pick = batched_nms(boxes[:, :4], boxes[:, 4], owner, 0.7)
            return _square(_regress(boxes[pick], offsets[pick])), owner[pick]
        boxes = _regress(boxes, offsets)
        kept = []
        for k in owner.unique():  # min-area NMS within each image, never across images
            rows = torch.nonzero(owner == k)[:, 0]
            kept.append(rows[_nms_min(boxes[rows], 0.7)])
        pick = torch.cat(kept) if kept else torch.zeros(0, dtype=torch.long)
        return boxes[pick], owner[pick]


def _normalised(pixels: torch.Tensor) -> torch.Tensor:
    """The networks' input scaling, channels-last: on CPU, max-pooling an NCHW tensor took 6-16x as long as a
    channels-last one (torch 2.14, 2 cores) and was most of a frame's time."""
    return ((pixels - 127.5) * _PIXEL_SCALE).contiguous(memory_format=torch.channels_last)


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Each box as the square of its longer side around the same centre."""
    size = boxes[:, 2:4] - boxes[:, 0:2]
    side = size.max(dim=1, keepdim=True).values
    start = boxes[:, 0:2] + size * 0.5 - side * 0.5
    return torch.cat([start, start + side, boxes[:, 4:]], dim=1)


def _regress(boxes: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    side = boxes[:, 2:4] - boxes[:, 0:2] + 1
    return torch.cat([boxes[:, 0:2] + offsets[:, 0:2] * side, boxes[:, 2:4] + offsets[:, 2:4] * side, boxes[:, 4:]],
                     dim=1)


def _crops(tables: np.ndarray, boxes: torch.Tensor, owner: torch.Tensor, size: int
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The region under each box in its own image (clipped to the image; 1-based corners as in the Caffe code),
    resized to size x size by area averaging; boxes wholly outside the image are dropped."""
    height, width = tables.shape[1] - 1, tables.shape[2] - 1
    corners = boxes[:, :4].trunc().int().cpu().numpy()
    x0, y0 = np.maximum(corners[:, 0], 1), np.maximum(corners[:, 1], 1)
    x1, y1 = np.minimum(corners[:, 2], width), np.minimum(corners[:, 3], height)
    inside = np.flatnonzero((y1 > y0 - 1) & (x1 > x0 - 1))
    x0, y0, x1, y1 = x0[inside], y0[inside], x1[inside], y1[inside]
    crops = _area_means(tables, owner.cpu().numpy()[inside], y0 - 1, x0 - 1, y1 - y0 + 1, x1 - x0 + 1, size)
    inside = torch.as_tensor(inside, dtype=torch.long, device=boxes.device)
    return boxes[inside], owner[inside], crops


def _integral(gray: np.ndarray) -> np.ndarray:
    """The image's integral table [H + 1, W + 1] (entry y, x: the sum of the pixels above and left of y, x): int32
    for uint8 pixels while no sum can pass 2**31 (exact, and the quickest to read: float64 tables made
    `_area_resized` 3x as slow), float64 otherwise (exact for integers up to 2**53)."""
    gray = np.ascontiguousarray(gray)
    if gray.dtype == np.uint8 and gray.size <= np.iinfo(np.int32).max // 255:
        return cv2.integral(gray, sdepth=cv2.CV_32S)
    return cv2.integral(gray.astype(np.float64), sdepth=cv2.CV_64F)


def _bins(start: np.ndarray | int, length: np.ndarray | int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """`adaptive_avg_pool2d`'s bins for `count` outputs over [start, start + length): output i averages the rows
    (or columns) start + floor(i * length / count) .. start + ceil((i + 1) * length / count) - 1."""
    step = np.arange(count)
    start, length = np.asarray(start)[..., None], np.asarray(length)[..., None]
    return start + step * length // count, start + ((step + 1) * length + count - 1) // count


def _means(sums: np.ndarray, rows: tuple[np.ndarray, np.ndarray], columns: tuple[np.ndarray, np.ndarray]
           ) -> torch.Tensor:
    """Bin sums [N, h, w] into means [N, 1, h, w], rounded as `adaptive_avg_pool2d` does: float32 sum / rows /
    columns. Its float32 running sum of integer pixels is exact while under 2**24 (bins up to 256x256 pixels; a
    640x480 frame's are at most 37x37), so these equal its output bit for bit; larger bins differ by its rounding."""
    heights, widths = (rows[1] - rows[0]).astype(np.float32), (columns[1] - columns[0]).astype(np.float32)
    return torch.from_numpy(sums.astype(np.float32) / heights[..., :, None] / widths[..., None, :])[:, None]


def _area_resized(tables: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """Each image of `tables` resized to `size` by area averaging (= `interpolate(mode="area")`: 8 pyramid
    levels of two 640x480 images took 1.4 ms against its 10 ms, 1 thread)."""
    rows, columns = _bins(0, tables.shape[1] - 1, size[0]), _bins(0, tables.shape[2] - 1, size[1])
    strips = tables[:, rows[1]] - tables[:, rows[0]]  # [N, h, W + 1]: the sums over each bin's rows
    return _means(strips[:, :, columns[1]] - strips[:, :, columns[0]], rows, columns)


def _area_means(tables: np.ndarray, owner: np.ndarray, top: np.ndarray, left: np.ndarray, height: np.ndarray,
                width: np.ndarray, size: int) -> torch.Tensor:
    """Region k (rows top[k] .. top[k] + height[k] - 1, columns left[k] .. of image owner[k]) resized to size x
    size by area averaging (= `interpolate(mode="area")` on it), each bin's sum read off the integral tables with
    four look-ups: one pass for all the regions instead of a call per region (250 crops: 6 ms against 15-21 ms,
    1 thread)."""
    rows, columns = _bins(top, height, size), _bins(left, width, size)
    first = owner[:, None] * tables[0].size
    upper, lower = (first + rows[0] * tables.shape[2])[:, :, None], (first + rows[1] * tables.shape[2])[:, :, None]
    x0, x1 = columns[0][:, None], columns[1][:, None]
    flat = tables.reshape(-1)
    return _means(flat[lower + x1] - flat[upper + x1] - flat[lower + x0] + flat[upper + x0], rows, columns)


def _nms_min(boxes: torch.Tensor, threshold: float) -> torch.Tensor:
    """Greedy NMS where overlap = intersection / the smaller box's area (+1-pixel areas, as in the Caffe code):
    drops a box lying mostly inside a higher-scored one, which IoU-NMS keeps."""
    x0, y0, x1, y1, score = boxes.unbind(dim=1)
    area = (x1 - x0 + 1) * (y1 - y0 + 1)
    order, keep = score.argsort(), []
    while len(order):
        best, rest = order[-1], order[:-1]
        keep.append(best)
        iw = (torch.minimum(x1[best], x1[rest]) - torch.maximum(x0[best], x0[rest]) + 1).clamp(min=0)
        ih = (torch.minimum(y1[best], y1[rest]) - torch.maximum(y0[best], y0[rest]) + 1).clamp(min=0)
        order = rest[iw * ih / torch.minimum(area[best], area[rest]) <= threshold]
    return torch.stack(keep) if keep else torch.zeros(0, dtype=torch.long)
