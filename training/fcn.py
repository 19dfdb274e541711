"""A small fully convolutional network for semantic segmentation: a class score per pixel.

An encoder of stride-2 conv blocks, and a decoder that upsamples back (bilinear) level by level,
each time concatenating the encoder's features of that size (U-Net's skips, which carry the
detail the downsampling lost), then a 1x1 convolution to the classes. Any input size works: each
upsampling goes to the size of the features it joins, so the output is the input's size.

As in ``training.resnet``, the layers come in as factories (``norm_layer(channels)``,
``activation()``); ``training.models`` registers it as ``"fcn"`` with the project's choices.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FCN", "UNet"]

NormLayer = Callable[[int], nn.Module | None]  # channels -> a norm layer, or None for no norm


def _block(in_channels: int, out_channels: int, stride: int, norm_layer: NormLayer,
           activation: Callable[[], nn.Module]) -> nn.Sequential:
    """Conv3x3(stride) -> norm -> activation; the convolution has a bias only without a norm."""
    norm = norm_layer(out_channels)
    conv = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=norm is None)
    return nn.Sequential(conv, *(() if norm is None else (norm,)), activation())


class UNet(nn.Module):
    """The encoder and decoder that ``FCN`` and ``training.centernet.CenterNet`` stand on.

    ``stem``: a stride-1 block with ``width`` channels; ``down[k]``: a stride-2 block to
    ``width * 2**(k+1)`` channels (``depth`` of them, so the coarsest map is ``H / 2**depth``);
    ``up``: from the coarsest map, upsample to the next finer encoder map, concatenate it, a
    block back to its channels, down to the map of stride ``2**stop``, whose features (with
    ``features`` channels) are what ``forward`` returns.
    """

    def __init__(self, *, in_channels: int, width: int, depth: int, stop: int,
                 norm_layer: NormLayer, activation: Callable[[], nn.Module]) -> None:
        super().__init__()
        channels = [width * 2**k for k in range(depth + 1)]
        self.stem = _block(in_channels, width, 1, norm_layer, activation)
        self.down = nn.ModuleList(_block(channels[k], channels[k + 1], 2, norm_layer, activation)
                                  for k in range(depth))
        self.up = nn.ModuleList(_block(channels[k + 1] + channels[k], channels[k], 1, norm_layer,
                                       activation) for k in reversed(range(stop, depth)))
        self.features = channels[stop]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [self.stem(x)]
        for down in self.down:
            features.append(down(features[-1]))
        h = features.pop()
        for up in self.up:
            skip = features.pop()
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = up(torch.cat([h, skip], 1))
        return h


class FCN(UNet):
    """Images ``(B, in_channels, H, W)`` -> logits ``(B, num_classes, H, W)``: the ``UNet``
    back to full resolution, then dropout (when above 0) and ``head``, a 1x1 convolution.
    """

    def __init__(self, *, in_channels: int, num_classes: int, width: int, depth: int,
                 dropout: float, norm_layer: NormLayer, activation: Callable[[], nn.Module]) -> None:
        super().__init__(in_channels=in_channels, width=width, depth=depth, stop=0,
                         norm_layer=norm_layer, activation=activation)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(super().forward(x)))  # type: ignore[no-any-return]
