"""PNG plots of a run: loss/accuracy curves, the train-validation gap, the LR range test, a gallery."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["plot_curves", "plot_gallery", "plot_lr_find"]


def plot_curves(history: Sequence[Mapping[str, float]], path: str | Path, title: str = "",
                best_epoch: int | None = None) -> Path:
    """Three panels: loss (train, val), accuracy (train, val), and the accuracy gap train - val.

    ``best_epoch`` (1-based, the epoch of ``best.pt``) is marked by a dashed vertical line, so
    the plot shows which model the best checkpoint holds.
    """
    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, key in zip(axes[:2], ("loss", "accuracy"), strict=True):
        ax.plot(epochs, [row[f"train_{key}"] for row in history], "o-", label="train")
        ax.plot(epochs, [row[f"val_{key}"] for row in history], "s--", label="validation")
        if best_epoch is not None:
            ax.axvline(best_epoch, color="tab:gray", linestyle="--", linewidth=1,
                       label=f"best (epoch {best_epoch})")
        ax.set(xlabel="epoch", ylabel=key, title=key)
        ax.grid(alpha=0.3)
        ax.legend()
    gap = [row["train_accuracy"] - row["val_accuracy"] for row in history]
    axes[2].bar(epochs, gap, color=["tab:red" if g > 0 else "tab:green" for g in gap])
    axes[2].axhline(0, color="black", linewidth=0.8)
    axes[2].set(xlabel="epoch", ylabel="train - val accuracy", title="generalisation gap")
    axes[2].grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_lr_find(lrs: Sequence[float], losses: Sequence[float], suggestion: float,
                 path: str | Path) -> Path:
    """Loss against learning rate (log axis) with the suggested value marked."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(lrs, losses, label="smoothed loss")
    ax.axvline(suggestion, color="tab:red", linestyle="--", label=f"suggested lr = {suggestion:.2e}")
    ax.set(xscale="log", xlabel="learning rate", ylabel="training loss", title="LR range test")
    finite = [v for v in losses if np.isfinite(v)]
    if finite:
        ax.set_ylim(min(finite) - 0.05 * abs(min(finite)), min(max(finite), 4 * finite[0]))
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return _save(fig, path)


def plot_gallery(images: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str],
                 path: str | Path, columns: int = 8) -> Path:
    """A grid of uint8 (B, C, H, W) images with their class names: what the model was fed.
    With class maps ``(B, H, W)`` as labels (segmentation), each map is drawn over its image
    (class 0 clear) and the title lists the classes it holds."""
    count = len(images)
    rows = max(1, -(-count // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.4, rows * 1.6), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= count:
            continue
        image = images[k].permute(1, 2, 0).cpu().numpy()
        ax.imshow(image[..., 0] if image.shape[2] == 1 else image, cmap="gray", vmin=0, vmax=255)
        if labels.ndim == 3:  # a class map: drawn over the image, its classes in the title
            mask = labels[k].cpu().numpy()
            ax.imshow(np.ma.masked_equal(mask, 0), cmap="tab10", alpha=0.5, vmin=0, vmax=9,
                      interpolation="nearest")
            ax.set_title(",".join(class_names[c] for c in np.unique(mask)), fontsize=7)
        else:
            ax.set_title(class_names[int(labels[k])], fontsize=8)
    return _save(fig, path)


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
