"""A small ResNet (He et al., 2016) of basic blocks, for images from 32x32 digits to 224-px photos.

The layers come in as factories (``norm_layer(channels)``, ``activation()``), so this module
needs nothing from the registry; ``training.models`` registers it as ``"resnet"`` with the
project's norm and activation choices.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn

__all__ = ["LARGE_STEM_FROM", "BasicBlock", "resnet"]

LARGE_STEM_FROM = 64  # image_size from which the stem downsamples 4x (7x7 conv stride 2, max pool)

NormLayer = Callable[[int], nn.Module | None]  # channels -> a norm layer, or None for no norm


def _conv_norm(in_channels: int, out_channels: int, kernel: int, stride: int,
               norm_layer: NormLayer) -> list[nn.Module]:
    """[Conv, norm]: the convolution has a bias only without a norm (a norm's shift replaces it)."""
    norm = norm_layer(out_channels)
    conv = nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2,
                     bias=norm is None)
    return [conv] if norm is None else [conv, norm]


class BasicBlock(nn.Module):
    """``activation(branch(x) + shortcut(x))`` with branch = Conv3x3(stride) -> norm -> activation
    -> Conv3x3 -> norm, and shortcut = the identity, or Conv1x1(stride) -> norm where the stride or
    the channels change (the projection shortcut)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, norm_layer: NormLayer,
                 activation: Callable[[], nn.Module]) -> None:
        super().__init__()
        self.branch = nn.Sequential(*_conv_norm(in_channels, out_channels, 3, stride, norm_layer),
                                    activation(),
                                    *_conv_norm(out_channels, out_channels, 3, 1, norm_layer))
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(*_conv_norm(in_channels, out_channels, 1, stride, norm_layer))
        self.act = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in, H, W)`` -> ``(B, out, ceil(H / stride), ceil(W / stride))``."""
        return self.act(self.branch(x) + self.shortcut(x))


def resnet(*, in_channels: int, image_size: int, num_classes: int, width: int, depth: int,
           blocks: int, dropout: float, norm_layer: NormLayer,
           activation: Callable[[], nn.Module]) -> nn.Sequential:
    """stem -> ``depth`` stages of ``blocks`` basic blocks -> global average pool -> Dropout -> Linear.

    The stem is Conv7x7 stride 2 -> norm -> activation -> MaxPool3x3 stride 2 for images of at
    least ``LARGE_STEM_FROM`` pixels (224 -> 56, as in ResNet-18), else Conv3x3 stride 1 -> norm ->
    activation (32 stays 32). Stage ``k`` has ``width * 2**k`` channels; every stage after the
    first starts with a stride-2 block (its shortcut a 1x1 projection). A map that reached 1x1
    stays 1x1, so any ``image_size`` works. Children: ``stem``, ``stage0`` ..., ``gap``,
    ``flatten``, ``drop`` (only if ``dropout > 0``), ``head``; all accept channels_last inputs.
    """
    stem: list[nn.Module]
    if image_size >= LARGE_STEM_FROM:
        stem = [*_conv_norm(in_channels, width, 7, 2, norm_layer), activation(),
                nn.MaxPool2d(3, stride=2, padding=1)]
    else:
        stem = [*_conv_norm(in_channels, width, 3, 1, norm_layer), activation()]
    layers: OrderedDict[str, nn.Module] = OrderedDict(stem=nn.Sequential(*stem))
    channels = width
    for k in range(depth):
        out = width * 2**k
        layers[f"stage{k}"] = nn.Sequential(*(
            BasicBlock(channels if b == 0 else out, out, 2 if k > 0 and b == 0 else 1, norm_layer,
                       activation) for b in range(blocks)))
        channels = out
    layers["gap"] = nn.AdaptiveAvgPool2d(1)
    layers["flatten"] = nn.Flatten()
    if dropout > 0:
        layers["drop"] = nn.Dropout(dropout)
    layers["head"] = nn.Linear(channels, num_classes)
    return nn.Sequential(layers)
