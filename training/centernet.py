"""A small one-stage detector in the manner of CenterNet (Zhou et al., 2019, "Objects as Points").

The network maps images ``(B, C, H, W)`` to one tensor ``(B, num_classes + 4, H/4, W/4)``: per
output pixel a heatmap logit per class (an object's centre is a peak), the box size (width,
height, in output pixels) and the sub-pixel offset of the centre. Training splats each box's
centre as a Gaussian on its class's heatmap and uses the penalty-reduced focal loss there, plus
L1 on size (weight 0.1) and offset at the centres; decoding keeps the top-k heatmap peaks that
are a 3x3 maximum (the max-pool "NMS") as scored boxes.

The backbone is ``training.fcn``'s: an encoder of stride-2 blocks and a decoder with skips, here
stopping at stride 4.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from training.fcn import NormLayer, UNet

__all__ = ["STRIDE", "CenterNet", "centernet_loss", "decode", "heatmap_targets"]

STRIDE = 4
SIZE_WEIGHT = 0.1


class CenterNet(UNet):
    """Images ``(B, in_channels, H, W)`` -> ``(B, num_classes + 4, ceil(H/4), ceil(W/4))``.

    The ``UNet`` of ``depth`` (at least 2) stride-2 levels, decoded back to stride 4; heads:
    Conv3x3 -> activation -> 1x1 conv, one each for the heatmap (its bias set so every class
    starts at probability 0.1), the size and the offset.
    """

    def __init__(self, *, in_channels: int, num_classes: int, width: int, depth: int,
                 dropout: float, norm_layer: NormLayer, activation: Callable[[], nn.Module]) -> None:
        if depth < 2:
            raise ValueError(f"depth: centernet needs at least 2 stride-2 levels, got {depth}")
        super().__init__(in_channels=in_channels, width=width, depth=depth, stop=2,
                         norm_layer=norm_layer, activation=activation)
        self.num_classes = num_classes
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        features = self.features

        def head(out: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(features, features, 3, padding=1), activation(),
                                 nn.Conv2d(features, out, 1))

        self.heatmap, self.size, self.offset = head(num_classes), head(2), head(2)
        self.after_init()

    def after_init(self) -> None:
        """Start every class at probability 0.1 (CenterNet's prior): without it the focal loss
        of an all-background heatmap swamps the first steps. Called again after a registry init,
        which zeroes every bias."""
        last = self.heatmap[-1]
        assert isinstance(last, nn.Conv2d) and last.bias is not None
        with torch.no_grad():
            nn.init.constant_(last.bias, -math.log((1 - 0.1) / 0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(super().forward(x))
        return torch.cat([self.heatmap(h), self.size(h), self.offset(h)], 1)


def _radius(height: float, width: float, min_overlap: float = 0.7) -> float:
    """CenterNet's Gaussian radius: the largest centre shift that keeps IoU >= ``min_overlap``."""
    b1, c1 = height + width, width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1**2 - 4 * c1)) / 2
    b2, c2 = 2 * (height + width), (1 - min_overlap) * width * height
    r2 = (b2 + math.sqrt(max(b2**2 - 16 * c2, 0))) / 2
    a3, b3, c3 = 4 * min_overlap, -2 * min_overlap * (height + width), (min_overlap - 1) * width * height
    r3 = (b3 + math.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def heatmap_targets(targets: Sequence[dict[str, torch.Tensor]], num_classes: int, height: int,
                    width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor,
                                                               torch.Tensor, torch.Tensor]:
    """The training targets of a batch at the output size ``(height, width)``.

    Returns:
        heatmaps ``(B, num_classes, height, width)`` (1 at each centre, a Gaussian around it),
        and per object: its flat position ``b * H * W + y * W + x`` (int64), its size and its
        centre offset ``(N, 2)``.
    """
    heat = torch.zeros((len(targets), num_classes, height, width))
    ys, xs = torch.arange(height, dtype=torch.float32)[:, None], torch.arange(width, dtype=torch.float32)
    where, sizes, offsets = [], [], []
    for b, target in enumerate(targets):
        boxes = target["boxes"].detach().cpu().to(torch.float32) / STRIDE
        for box, label in zip(boxes, target["labels"].tolist(), strict=True):
            w, h = float(box[2] - box[0]), float(box[3] - box[1])
            if w <= 0 or h <= 0:
                continue
            cx, cy = float(box[0] + box[2]) / 2, float(box[1] + box[3]) / 2
            ix, iy = min(max(int(cx), 0), width - 1), min(max(int(cy), 0), height - 1)
            sigma = (2 * max(0, int(_radius(math.ceil(h), math.ceil(w)))) + 1) / 6
            gauss = torch.exp(-((xs - ix) ** 2 + (ys - iy) ** 2) / (2 * sigma**2))
            heat[b, label] = torch.maximum(heat[b, label], gauss)
            where.append(b * height * width + iy * width + ix)
            sizes.append((w, h))
            offsets.append((cx - ix, cy - iy))
    return (heat.to(device), torch.tensor(where, dtype=torch.int64, device=device),
            torch.tensor(sizes, dtype=torch.float32, device=device).reshape(-1, 2),
            torch.tensor(offsets, dtype=torch.float32, device=device).reshape(-1, 2))


def centernet_loss(output: torch.Tensor, targets: Sequence[dict[str, torch.Tensor]]) -> torch.Tensor:
    """Focal loss on the heatmaps (alpha 2, beta 4; summed, over the number of objects) plus
    L1 on size (times 0.1) and offset at the objects' centres."""
    output = output.float()
    classes = output.shape[1] - 4
    height, width = output.shape[-2:]
    heat, where, sizes, offsets = heatmap_targets(targets, classes, height, width, output.device)
    logits = output[:, :classes]
    p = torch.sigmoid(logits)
    positive = heat.eq(1).float()
    pos = -F.logsigmoid(logits) * (1 - p) ** 2 * positive
    neg = -F.logsigmoid(-logits) * p**2 * (1 - heat) ** 4 * (1 - positive)
    count = max(len(where), 1)
    loss = (pos.sum() + neg.sum()) / count
    if len(where):
        regress = output[:, classes:].permute(0, 2, 3, 1).reshape(-1, 4)[where]
        loss = loss + (SIZE_WEIGHT * F.l1_loss(regress[:, :2], sizes, reduction="sum")
                       + F.l1_loss(regress[:, 2:], offsets, reduction="sum")) / count
    return loss


@torch.no_grad()
def decode(output: torch.Tensor, k: int = 100) -> list[dict[str, torch.Tensor]]:
    """Per image the ``k`` best heatmap peaks (a 3x3 maximum) as boxes: ``boxes`` ``(k, 4)``
    pascal_voc in input pixels, ``scores`` ``(k,)`` and ``labels`` ``(k,)``."""
    output = output.float()
    batch, channels, height, width = output.shape
    classes = channels - 4
    heat = torch.sigmoid(output[:, :classes])
    heat = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat)
    scores, flat = heat.reshape(batch, -1).topk(min(k, classes * height * width))
    labels, pixel = flat // (height * width), flat % (height * width)
    regress = output[:, classes:].reshape(batch, 4, -1)
    out = []
    for b in range(batch):
        reg = regress[b][:, pixel[b]]  # (4, k)
        cx = (pixel[b] % width).float() + reg[2]
        cy = (pixel[b] // width).float() + reg[3]
        w, h = reg[0].clamp(min=0), reg[1].clamp(min=0)
        boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1) * STRIDE
        out.append({"boxes": boxes, "scores": scores[b], "labels": labels[b]})
    return out
