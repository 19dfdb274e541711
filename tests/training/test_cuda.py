"""CUDA paths of the trainer: AMP (bf16/fp16), channels_last, fused optimizers, pinned memory.

These run only where torch sees a GPU: the one skip the project allows.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from training.config import load_config
from training.optim import create_optimizer
from training.trainer import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _config(tmp_path: Path, **top: object) -> object:
    return load_config({"seed": 0, "epochs": 2, "device": "cuda", "tensorboard": False,
                        "out_dir": str(tmp_path), **top,
                        "model": {"name": "cnn", "width": 16, "depth": 3, "norm": "batch"},
                        "data": {"dataset": "digits", "augment": "digits", "batch_size": 64},
                        "optimizer": {"name": "adamw", "lr": 0.005}})


@pytest.mark.parametrize("amp", ["none", "bf16", "fp16"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_cuda_training_learns(tmp_path: Path, amp: str, channels_last: bool) -> None:
    trainer = Trainer(_config(tmp_path, amp=amp, channels_last=channels_last),  # type: ignore[arg-type]
                      progress=False, report=False)
    assert trainer.device.type == "cuda" and next(trainer.model.parameters()).is_cuda
    assert trainer.optimizer.defaults.get("fused") is True  # torch's fused AdamW kernel
    assert trainer.scaler.is_enabled() == (amp == "fp16")
    history = trainer.fit().history
    assert history[-1]["val_accuracy"] > 0.8
    assert all(torch.isfinite(torch.tensor(r["train_loss"])) for r in history)


def test_auto_device_picks_the_gpu(tmp_path: Path) -> None:
    trainer = Trainer(_config(tmp_path, device="auto"), progress=False, report=False)  # type: ignore[arg-type]
    assert trainer.device.type == "cuda"


def test_fused_and_single_tensor_adam_agree_on_gpu() -> None:
    torch.manual_seed(0)
    params = [torch.randn(64, 32, device="cuda", requires_grad=True) for _ in range(3)]
    copies = [p.detach().clone().requires_grad_(True) for p in params]
    fused = create_optimizer("adam", params, lr=1e-2)
    plain = create_optimizer("adam", copies, lr=1e-2, fused=False, foreach=False)
    assert fused.defaults["fused"] is True
    for _ in range(20):
        for group in (params, copies):
            for p in group:
                p.grad = torch.sin(p.detach() * 3)
        fused.step()
        plain.step()
    for a, b in zip(params, copies, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
