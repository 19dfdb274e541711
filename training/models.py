"""Models by name: an MLP, a small CNN and a small ResNet for images, a bag-of-embeddings / CNN text
classifier, and a small fully convolutional network for segmentation (a class per pixel).

``create_model("cnn", in_channels=1, image_size=32, num_classes=10, norm="batch")`` validates every
option (naming the bad field and what is allowed), builds the model from ``seed`` without touching
torch's global generator, and optionally initialises it with ``training.init.init_weights``.
``mlp`` and ``cnn`` are flat ``nn.Sequential`` models, so ``training.init.activation_variance``
walks them layer by layer.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from augsvc.errors import ConfigError, SpecError, unknown_name
from augsvc.params import Param
from training.centernet import CenterNet
from training.fcn import FCN
from training.init import init_weights
from training.resnet import resnet

__all__ = ["ACTIVATIONS", "MODELS", "NORMS", "TEXT_MODES", "ModelInfo", "TextCNN", "create_model",
           "list_models"]

NORMS = ("none", "batch", "layer")
TEXT_MODES = ("bag", "cnn")
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "softplus": nn.Softplus,
}


@dataclass(frozen=True)
class ModelInfo:
    """One registry entry.

    Attributes:
        name: registry name.
        input: ``"image"`` (float ``(B, C, H, W)``) or ``"text"`` (int64 ids ``(B, L)``, 0 = padding).
        task: ``"classification"`` (logits ``(B, num_classes)``), ``"segmentation"`` (logits
            ``(B, num_classes, H, W)``, a class per pixel) or ``"detection"`` (CenterNet maps
            ``(B, num_classes + 4, H/4, W/4)``, see ``training.centernet``).
        description: one line on the architecture.
        factory: builds the model from the complete, validated options.
        required: options without a default (the data's dimensions).
        defaults: every other option and its default.
    """

    name: str
    input: str
    description: str
    factory: Callable[..., nn.Module]
    required: tuple[str, ...]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    task: str = "classification"


# ---- building blocks ---------------------------------------------------------------------------

def _norm1d(norm: str, features: int) -> nn.Module | None:
    """Batch or layer norm over ``features`` of a (B, features) tensor; None for "none"."""
    if norm == "batch":
        return nn.BatchNorm1d(features)
    if norm == "layer":
        return nn.LayerNorm(features)
    return None


def _norm2d(norm: str, channels: int) -> nn.Module | None:
    """Batch norm, or ``GroupNorm(1, C)`` for "layer", over (B, C, H, W); None for "none"."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "layer":
        return nn.GroupNorm(1, channels)
    return None


def _mlp(*, in_channels: int, image_size: int, num_classes: int, width: int, depth: int, norm: str,
         dropout: float, activation: str) -> nn.Sequential:
    """Flatten -> ``depth`` x [Linear -> norm -> activation -> Dropout] -> Linear."""
    layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
    features = in_channels * image_size * image_size
    for k in range(depth):
        layers[f"fc{k}"] = nn.Linear(features, width)
        if (layer := _norm1d(norm, width)) is not None:
            layers[f"norm{k}"] = layer
        layers[f"act{k}"] = ACTIVATIONS[activation]()
        if dropout > 0:
            layers[f"drop{k}"] = nn.Dropout(dropout)
        features = width
    layers["head"] = nn.Linear(features, num_classes)
    return nn.Sequential(layers)


def _cnn(*, in_channels: int, image_size: int, num_classes: int, width: int, depth: int, norm: str,
         dropout: float, activation: str) -> nn.Sequential:
    """``depth`` x [Conv3x3 -> norm -> activation -> MaxPool2d] -> global average pool -> Linear.

    Channels start at ``width`` and double per block; a block pools only while the feature map is
    at least 2x2, so any ``image_size`` works. ``norm="layer"`` is ``GroupNorm(1, C)``: statistics
    over (C, H, W) of each sample as in layer norm, with a per-channel (not per-element) affine.
    All layers accept channels_last inputs.
    """
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    channels, size = in_channels, image_size
    for k in range(depth):
        out = width * 2**k
        layers[f"conv{k}"] = nn.Conv2d(channels, out, 3, padding=1)
        if (layer := _norm2d(norm, out)) is not None:
            layers[f"norm{k}"] = layer
        layers[f"act{k}"] = ACTIVATIONS[activation]()
        if size >= 2:
            layers[f"pool{k}"] = nn.MaxPool2d(2)
            size //= 2
        channels = out
    layers["gap"] = nn.AdaptiveAvgPool2d(1)
    layers["flatten"] = nn.Flatten()  # (B, C, 1, 1) -> (B, C), a view in either memory format
    if dropout > 0:
        layers["drop"] = nn.Dropout(dropout)
    layers["head"] = nn.Linear(channels, num_classes)
    return nn.Sequential(layers)


def _resnet(*, norm: str, activation: str, **options: Any) -> nn.Sequential:
    """``training.resnet.resnet`` with the norm (as in ``cnn``) and activation chosen by name."""
    return resnet(norm_layer=lambda channels: _norm2d(norm, channels),
                  activation=ACTIVATIONS[activation], **options)


def _centernet(*, norm: str, activation: str, **options: Any) -> nn.Module:
    """``training.centernet.CenterNet`` with the norm (as in ``cnn``) and activation by name."""
    return CenterNet(norm_layer=lambda channels: _norm2d(norm, channels),
                     activation=ACTIVATIONS[activation], **options)


def _fcn(*, norm: str, activation: str, **options: Any) -> nn.Module:
    """``training.fcn.FCN`` with the norm (as in ``cnn``) and activation chosen by name."""
    return FCN(norm_layer=lambda channels: _norm2d(norm, channels),
               activation=ACTIVATIONS[activation], **options)


class TextCNN(nn.Module):
    """Text classifier over token ids ``(B, L)`` (0 = padding) -> logits ``(B, num_classes)``.

    ``mode="bag"``: masked mean of the embeddings -> Linear -> norm -> activation -> Dropout ->
    Linear. ``mode="cnn"`` (Kim, 2014): per kernel size ``k`` a Conv1d -> activation -> max over
    the windows that hold at least one real token -> concat -> norm -> Dropout -> Linear.

    Padding never reaches the output: padded embeddings are zeroed, and the convolutions pad
    ``k - 1`` zeros on both sides, so sequences shorter than ``k`` work and appending padding only
    adds windows that are all padding (which the max ignores). In cnn mode the norm acts on the
    pooled features, so batch statistics never see padding windows. Rows that are all padding
    give zero features (no NaN, and zero gradient into the embeddings and convolutions).

    Args:
        vocab_size: number of token ids, padding (0) included.
        num_classes: number of logits.
        embed_dim: embedding size.
        width: hidden units (bag) or channels per kernel size (cnn).
        kernel_sizes: the Conv1d kernel sizes (cnn mode).
        dropout: dropout probability before the head.
        activation: a name from ``ACTIVATIONS``.
        norm: one of ``NORMS``.
        mode: one of ``TEXT_MODES``.
    """

    def __init__(self, *, vocab_size: int, num_classes: int, embed_dim: int, width: int,
                 kernel_sizes: Sequence[int], dropout: float, activation: str, norm: str,
                 mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.kernel_sizes = tuple(kernel_sizes)
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.convs = nn.ModuleList()
        if mode == "bag":
            features = width
            self.hidden: nn.Module = nn.Linear(embed_dim, width)
        else:
            features = width * len(self.kernel_sizes)
            self.convs.extend(nn.Conv1d(embed_dim, width, k, padding=k - 1) for k in self.kernel_sizes)
            self.hidden = nn.Identity()
        self.act = ACTIVATIONS[activation]()
        self.norm = _norm1d(norm, features) or nn.Identity()
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(features, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` for token ids ``(B, L)``."""
        mask = tokens != 0  # (B, L)
        emb = self.embed(tokens) * mask.unsqueeze(-1).to(self.embed.weight.dtype)  # (B, L, E)
        if self.mode == "bag":
            count = mask.sum(1, keepdim=True).clamp(min=1).to(emb.dtype)  # (B, 1); 0 rows -> 0 mean
            features = self.act(self.norm(self.hidden(emb.sum(1) / count)))
        else:
            x, pooled = emb.transpose(1, 2), []  # (B, E, L)
            for k, conv in zip(self.kernel_sizes, self.convs, strict=True):
                h = self.act(conv(x))  # (B, width, L + k - 1): window t covers tokens t-k+1 .. t
                valid = F.pad(mask.to(h.dtype), (k - 1, k - 1)).unfold(1, k, 1).amax(-1) > 0
                best = h.masked_fill(~valid.unsqueeze(1), float("-inf")).amax(-1)  # (B, width)
                pooled.append(torch.where(valid.any(1, keepdim=True), best, torch.zeros_like(best)))
            features = self.norm(torch.cat(pooled, 1))
        return self.head(self.drop(features))


# ---- registry ----------------------------------------------------------------------------------

_COMMON_DEFAULTS = {"norm": "none", "dropout": 0.0, "activation": "relu"}

MODELS: dict[str, ModelInfo] = {info.name: info for info in (
    ModelInfo("mlp", "image", "flatten -> depth x [Linear, norm, activation, dropout] -> Linear",
              _mlp, ("in_channels", "image_size", "num_classes"),
              {"width": 128, "depth": 2, **_COMMON_DEFAULTS}),
    ModelInfo("cnn", "image", "depth x [Conv3x3, norm, activation, MaxPool] -> global avg pool "
              "-> dropout -> Linear; channels width, 2 width, ...", _cnn,
              ("in_channels", "image_size", "num_classes"),
              {"width": 32, "depth": 3, **_COMMON_DEFAULTS}),
    ModelInfo("resnet", "image", "stem (Conv7x7/2 + MaxPool from 64 px, else Conv3x3) -> depth "
              "stages x blocks basic residual blocks (stride 2 and a 1x1 projection after the first "
              "stage) -> global avg pool -> dropout -> Linear; channels width, 2 width, ...", _resnet,
              ("in_channels", "image_size", "num_classes"),
              {"width": 16, "depth": 4, "blocks": 1, **_COMMON_DEFAULTS}),
    ModelInfo("text_cnn", "text", "embeddings -> masked mean + MLP (bag) or Conv1d + masked "
              "max-pool per kernel size (cnn) -> Linear", TextCNN, ("vocab_size", "num_classes"),
              {"embed_dim": 64, "width": 64, "kernel_sizes": (3, 4, 5), "mode": "cnn",
               **_COMMON_DEFAULTS}),
    ModelInfo("fcn", "image", "segmentation: Conv3x3 stem -> depth x stride-2 [Conv3x3, norm, "
              "activation] -> per level: bilinear upsample + the encoder's map, Conv3x3 -> "
              "dropout -> 1x1 Conv to a class per pixel; channels width, 2 width, ...", _fcn,
              ("in_channels", "num_classes"), {"width": 16, "depth": 3, **_COMMON_DEFAULTS},
              task="segmentation"),
    ModelInfo("centernet", "image", "detection (CenterNet): fcn's encoder (depth stride-2 levels) "
              "and decoder back to stride 4 -> heads: a heatmap per class, box size, centre "
              "offset; loss: focal on Gaussian centres + L1", _centernet,
              ("in_channels", "num_classes"), {"width": 16, "depth": 4, **_COMMON_DEFAULTS},
              task="detection"),
)}


# Every option of every model, checked by the schema that checks pipeline parameters; a
# "model.option" key replaces the plain one for that model.
_OPTIONS: dict[str, Param] = {
    **{name: Param(name, "int", low=1) for name in (
        "in_channels", "image_size", "num_classes", "width", "depth", "embed_dim")},
    "vocab_size": Param("vocab_size", "int", low=2, doc="id 0 is padding"),
    "norm": Param("norm", "choice", choices=tuple(NORMS)),
    "activation": Param("activation", "choice", choices=tuple(ACTIVATIONS)),
    "dropout": Param("dropout", "float", low=0, high=1, high_open=True),
    "kernel_sizes": Param("kernel_sizes", "ints", low=1),
    "mode": Param("mode", "choice", choices=tuple(TEXT_MODES)),
    "blocks": Param("blocks", "int", low=1, high=16, doc="basic blocks per stage"),
    "resnet.depth": Param("depth", "int", low=1, high=4, doc="stages, width * 2**k channels each"),
    "fcn.depth": Param("depth", "int", low=1, high=6, doc="stride-2 levels, width * 2**k channels"),
    "centernet.depth": Param("depth", "int", low=2, high=6, doc="stride-2 levels (output: stride 4)"),
}


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(MODELS)


def _options(info: ModelInfo, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The defaults overridden by ``kwargs``, every value checked."""
    known = (*info.required, *info.defaults)
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise ValueError(f"{info.name} has no option(s) {unknown}; known: {sorted(known)}")
    missing = [name for name in info.required if name not in kwargs]
    if missing:
        raise ValueError(f"{info.name} needs {', '.join(missing)}")
    options = {**info.defaults, **kwargs}
    for name, value in options.items():
        param = _OPTIONS.get(f"{info.name}.{name}") or _OPTIONS[name]

        def fail(message: str, shown: Any, param: Param = param) -> SpecError:
            raise ConfigError(f"{param.name}: {message} (got {shown!r}) for {info.name}; "
                              f"allowed: {param.allowed()}")

        param.validate(value, fail)
    return options


def create_model(name: str, *, init: str | None = None, seed: int = 0, **kwargs: Any) -> nn.Module:
    """Build the model ``name`` from ``seed``, deterministically and without global side effects.

    Args:
        name: a name from :func:`list_models`.
        init: an initialisation from ``training.init.list_inits()`` for every Linear/Conv weight
            (biases zeroed); None keeps torch's default initialisation.
        seed: seeds torch's default initialisation (and ``init``'s generator); torch's global
            generator is restored afterwards.
        **kwargs: the model's options (see ``MODELS[name].required`` and ``.defaults``).

    Returns:
        The model, in training mode, on the CPU.

    Raises:
        ValueError: unknown model (with a suggestion) or init, an unknown or missing option, or a
            value out of range (naming the option and what is allowed).
    """
    info = MODELS.get(name)
    if info is None:
        raise ConfigError(unknown_name("model", name, MODELS))
    options = _options(info, kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = info.factory(**options)
    if init is not None:
        init_weights(model, init, seed=seed)
        after = getattr(model, "after_init", None)
        if callable(after):  # a model's own starting values an init must not undo
            after()
    return model
