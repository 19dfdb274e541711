"""data.augment_device: the source decodes, the training spec runs on a torch device, and the
trainer trains on exactly the batches of the CPU path (same seed, same augment indices)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from augsvc.service.server import build_server
from training.config import ConfigError, TrainConfig, load_config
from training.device_augment import DeviceAugmentSource
from training.local import LocalSource
from training.sources import create_source
from training.trainer import Trainer

TIMING = ("seconds", "samples_per_second", "input_wait")
# transforms TorchBatchPipeline reproduces bit for bit (shift_scale_rotate's guarantee is a
# tolerance, so it stays out of an exactness test); 32x32 digits in, 28x28 out
SPEC = {"transforms": [
    {"name": "random_resized_crop", "height": 28, "width": 28, "scale": [0.6, 1.0]},
    {"name": "horizontal_flip", "p": 0.5},
    {"name": "brightness_contrast", "p": 0.5},
    {"name": "gamma", "p": 0.5},
    {"name": "median_blur", "p": 0.5, "blur_limit": [3, 5]},
]}
GPU = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _config(tmp_path: Path, **data: Any) -> TrainConfig:
    return load_config({
        "seed": 3, "epochs": 2, "device": "cpu", "out_dir": str(tmp_path), "tensorboard": False,
        "model": {"name": "mlp", "width": 32, "depth": 1, "norm": "batch", "dropout": 0.1},
        "data": {"dataset": "digits", "augment": SPEC, "batch_size": 64, "train_size": 256,
                 "holdout_fraction": 0.1, "eval_augment": [{"name": "center_crop", "height": 28,
                                                            "width": 28}], **data},
        "optimizer": {"name": "adamw", "lr": 0.01}})


def _train(config: TrainConfig) -> tuple[Trainer, list[torch.Tensor], list[dict[str, float]]]:
    """A fitted trainer, every input its model was trained on (after the trainer's scaling), and
    its metrics without the timings."""
    trainer = Trainer(config, progress=False, report=False)
    seen: list[torch.Tensor] = []
    trainer.model.register_forward_pre_hook(
        lambda module, args: seen.append(args[0].detach().cpu().clone()) if module.training else None)
    history = trainer.fit().history
    trainer.source.close()
    return trainer, seen, [{k: v for k, v in row.items() if k not in TIMING} for row in history]


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=GPU)])
def test_the_trainer_trains_on_the_cpu_path_batches(tmp_path: Path, device: str) -> None:
    _, want, want_metrics = _train(_config(tmp_path / "cpu"))
    trainer, got, got_metrics = _train(_config(tmp_path / device, augment_device=device))
    assert isinstance(trainer.source, DeviceAugmentSource)
    assert trainer.source.device.type == device
    assert len(got) == len(want) == 2 * 4  # two epochs of 4 batches: new augment indices each
    for a, b in zip(got, want, strict=True):
        assert a.shape == (64, 1, 28, 28) and torch.equal(a, b)
    assert got_metrics == want_metrics  # bit for bit: the same run
    assert math.isfinite(got_metrics[-1]["val_loss"])


def test_the_source_only_decodes_and_the_device_runs_the_whole_spec(tmp_path: Path) -> None:
    source = create_source(_config(tmp_path, augment_device="auto").data, seed=3)
    assert isinstance(source, DeviceAugmentSource)
    assert source.info.image_size == 28  # the model's input size is the CPU path's
    local = LocalSource(_config(tmp_path).data, seed=3)
    for epoch in (0, 1):
        x, _, indices = next(source.inner.decoded_batches(epoch))
        assert x.dtype == torch.uint8 and x.shape == (64, 1, 32, 32)  # as stored: 32x32 digits
        assert indices == local.plan(epoch).augment_indices(next(local.plan(epoch).batches()))
        (got, got_y), (want, want_y) = next(source.train_batches(epoch)), next(local.train_batches(epoch))
        assert torch.equal(got.cpu(), want) and torch.equal(got_y, want_y)
    images, _ = source.gallery(1, count=8)
    assert images.device.type == "cpu" and images.shape == (8, 1, 28, 28)


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    server, port = build_server("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(0)


def test_the_remote_source_streams_decoded_batches_for_the_device(tmp_path: Path,
                                                                   address: str) -> None:
    remote = create_source(_config(tmp_path, source="remote", addresses=[address],
                                   augment_device="cpu").data, seed=3)
    local = LocalSource(_config(tmp_path).data, seed=3)
    try:
        assert isinstance(remote, DeviceAugmentSource) and remote.info == local.info
        for epoch in (0, 1):  # the second is the stream opened ahead, also without a spec
            got, want = list(remote.train_batches(epoch)), list(local.train_batches(epoch))
            assert len(got) == len(want) == 4
            for (xa, ya), (xb, yb) in zip(got, want, strict=True):
                assert torch.equal(xa, xb) and torch.equal(ya, yb)
        assert remote.inner.verified_samples == 2 * 256  # type: ignore[attr-defined]
    finally:
        remote.close()


def test_transforms_the_batch_backend_lacks_are_named(tmp_path: Path) -> None:
    # the digits preset: shift_scale_rotate and brightness_contrast run on a device, coarse_dropout not
    with pytest.raises(ConfigError, match=r"data\.augment_device: .*coarse_dropout") as caught:
        Trainer(_config(tmp_path, augment="digits", augment_device="cpu"), report=False)
    assert "shift_scale_rotate," not in str(caught.value).split("allowed")[0]
    grouped = {"transforms": [{"one_of": [{"name": "gamma"}, {"name": "gaussian_blur"}]}]}
    with pytest.raises(ConfigError, match=r"one_of \(group\).*gaussian_blur"):
        create_source(_config(tmp_path, augment=grouped, augment_device="cpu").data, seed=0)
    with pytest.raises(ConfigError, match="normalize, which makes float32"):
        create_source(_config(tmp_path, augment=[{"name": "normalize", "mean": 0.5, "std": 0.5}],
                              augment_device="cpu").data, seed=0)


@pytest.mark.parametrize(("value", "message"), [
    ("gpu", r"data\.augment_device: .*'gpu'.*allowed: one of 'cpu', 'cuda', 'auto', or null"),
    (True, r"data\.augment_device"),
])
def test_the_setting_validates_its_value(tmp_path: Path, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _config(tmp_path, augment_device=value)


def test_the_setting_defaults_to_the_source_and_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    assert _config(tmp_path).data.augment_device is None
    assert isinstance(create_source(_config(tmp_path).data, seed=0), LocalSource)
    # no augment: nothing to move, the source as it is
    plain = create_source(_config(tmp_path, augment=None, augment_device="cpu").data, seed=0)
    assert isinstance(plain, LocalSource)
    with pytest.raises(ConfigError, match=r"data\.augment_device: 'cpu' with data\.source memory"):
        _config(tmp_path, source="memory", augment_device="cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"data\.augment_device: 'cuda' asked for"):
            create_source(_config(tmp_path, augment_device="cuda").data, seed=0)
