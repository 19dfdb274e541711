"""The model registry: shapes, norm and dropout choices, seeding, padding, overfitting, bad options."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from torch import nn

from training.init import activation_variance
from training.models import MODELS, NORMS, TextCNN, create_model, list_models
from training.resnet import LARGE_STEM_FROM, BasicBlock

IMAGE: dict[str, Any] = {"in_channels": 3, "image_size": 16, "num_classes": 5}
TEXT: dict[str, Any] = {"vocab_size": 40, "num_classes": 5}


def images(batch: int = 6, seed: int = 0, **dims: int) -> torch.Tensor:
    d = {**IMAGE, **dims}
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, d["in_channels"], d["image_size"], d["image_size"], generator=g)


def tokens(batch: int = 6, length: int = 9, seed: int = 0, vocab: int = 40) -> torch.Tensor:
    """Random ids 1..vocab-1, row r right-padded with 0 after ``length - r`` tokens (at least 1)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (batch, length), generator=g)
    for r in range(batch):
        ids[r, max(1, length - r):] = 0
    return ids


# name -> (small options, a batch of inputs); one row per registered model.
ROWS: dict[str, tuple[dict[str, Any], Callable[[], torch.Tensor]]] = {
    "mlp": ({**IMAGE, "width": 16}, images),
    "cnn": ({**IMAGE, "width": 8}, images),
    "resnet": ({**IMAGE, "width": 4, "depth": 3}, images),
    "text_cnn": ({**TEXT, "embed_dim": 8, "width": 8}, tokens),
    "fcn": ({"in_channels": 3, "num_classes": 5, "width": 4, "depth": 2}, images),  # any size
    "centernet": ({"in_channels": 3, "num_classes": 5, "width": 4, "depth": 2}, images),
}

# Norm layer type a model must contain for each choice (nothing from the others).
NORM_TYPES: dict[str, dict[str, type[nn.Module]]] = {
    "mlp": {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm},
    "cnn": {"batch": nn.BatchNorm2d, "layer": nn.GroupNorm},
    "resnet": {"batch": nn.BatchNorm2d, "layer": nn.GroupNorm},
    "text_cnn": {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm},
    "fcn": {"batch": nn.BatchNorm2d, "layer": nn.GroupNorm},
    "centernet": {"batch": nn.BatchNorm2d, "layer": nn.GroupNorm},
}
ALL_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)


def build(name: str, **overrides: Any) -> nn.Module:
    options, _ = ROWS[name]
    return create_model(name, **{**options, **overrides})


def test_every_model_has_a_test_row() -> None:
    assert set(list_models()) == set(ROWS) == set(NORM_TYPES), "add the model to ROWS and NORM_TYPES"


@pytest.mark.parametrize("name", list_models())
def test_info_describes_the_model(name: str) -> None:
    info = MODELS[name]
    assert info.name == name and info.input in ("image", "text") and info.description
    assert info.task in ("classification", "segmentation", "detection")
    dims = set(IMAGE if info.input == "image" else TEXT)
    assert set(info.required) == (dims - {"image_size"} if info.task != "classification" else dims)
    model = create_model(name, **{k: ROWS[name][0][k] for k in info.required})  # defaults suffice
    assert isinstance(model, nn.Module)


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("norm", NORMS)
def test_output_shape(name: str, norm: str) -> None:
    model = build(name, norm=norm, dropout=0.2).eval()
    out = model(ROWS[name][1]())
    # a class per pixel; per class a heatmap plus box size and offset at stride 4; or a class
    shape = {"segmentation": (6, 5, 16, 16), "detection": (6, 5 + 4, 4, 4)}.get(MODELS[name].task,
                                                                                 (6, 5))
    assert out.shape == shape and out.dtype == torch.float32 and torch.isfinite(out).all()


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("norm", NORMS)
def test_norm_choice_puts_in_the_right_layer(name: str, norm: str) -> None:
    model = build(name, norm=norm)
    found = {type(m) for m in model.modules() if isinstance(m, ALL_NORMS)}
    if norm == "none":
        assert found == set()
    else:
        assert found == {NORM_TYPES[name][norm]}
    for m in model.modules():
        if isinstance(m, nn.GroupNorm):
            assert m.num_groups == 1  # layer norm over (C, H, W)


@pytest.mark.parametrize("name", list_models())
def test_dropout_acts_in_train_mode_only(name: str) -> None:
    x = ROWS[name][1]()
    model = build(name, dropout=0.5)
    assert any(isinstance(m, nn.Dropout) and m.p == 0.5 for m in model.modules())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        first, second = model(x), model(x)
    assert not torch.allclose(first, second)
    model.eval()
    assert torch.equal(model(x), model(x))
    plain = build(name, dropout=0.0)  # no dropout layer: train mode is deterministic too
    assert not any(isinstance(m, nn.Dropout) for m in plain.modules())
    assert torch.equal(plain(x), plain(x))


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("init", [None, "kaiming"])
def test_creation_is_seeded_and_leaves_the_global_generator_alone(name: str, init: str | None) -> None:
    options = ROWS[name][0]
    state = torch.random.get_rng_state()
    a = create_model(name, **options, init=init, seed=3).state_dict()
    b = create_model(name, **options, init=init, seed=3).state_dict()
    c = create_model(name, **options, init=init, seed=4).state_dict()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("name", ["cnn", "resnet"])
def test_channels_last_gives_the_same_logits(name: str) -> None:
    for in_channels, size in ((1, 32), (3, 16)):
        model = create_model(name, in_channels=in_channels, image_size=size, num_classes=10,
                             width=8, norm="batch").eval()
        x = images(4, in_channels=in_channels, image_size=size)
        want = model(x)
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        got = model(x.contiguous(memory_format=torch.channels_last))
        assert got.shape == (4, 10)
        assert torch.allclose(got, want, atol=1e-5)


def test_cnn_pools_only_while_the_map_is_at_least_2x2() -> None:
    model = create_model("cnn", in_channels=1, image_size=4, num_classes=3, width=4, depth=4)
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 2  # 4 -> 2 -> 1
    assert model(images(2, in_channels=1, image_size=4)).shape == (2, 3)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny matrices: more threads only contend for the cores (seconds become a minute under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_tiny_overfit(name: str) -> None:
    """32 random images with random labels: a model that can learn reaches 100% train accuracy."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 3, 8, 8, generator=g)
    y = torch.randint(0, 4, (32,), generator=g)
    model = create_model(name, in_channels=3, image_size=8, num_classes=4, width=32, norm="batch",
                         init="kaiming", seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean().item() == 1.0


@pytest.mark.parametrize("mode", ["bag", "cnn"])
@pytest.mark.parametrize("norm", NORMS)
def test_text_padding_does_not_change_the_output(mode: str, norm: str) -> None:
    model = build("text_cnn", mode=mode, norm=norm).eval()
    ids = tokens()
    with torch.no_grad():
        want = model(ids)
        longer = model(torch.cat([ids, torch.zeros(6, 7, dtype=torch.long)], 1))
        changed = ids.clone()
        changed[:, 0] = changed[:, 0] % 39 + 1  # a different real token
        other = model(changed)
    assert torch.allclose(longer, want, atol=1e-6)
    assert not torch.allclose(other, want, atol=1e-4)  # the check above is not vacuous


@pytest.mark.parametrize("mode", ["bag", "cnn"])
def test_text_short_and_all_padding_rows(mode: str) -> None:
    model = build("text_cnn", mode=mode, norm="batch", kernel_sizes=[2, 7])
    ids = torch.tensor([[3, 0], [0, 0], [5, 9]])  # shorter than the largest kernel; a padding row
    out = model(ids)
    assert out.shape == (3, 5) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    plain = build("text_cnn", mode=mode, norm="none").eval()
    assert isinstance(plain, TextCNN)
    with torch.no_grad():  # an all-padding row: zero pooled features, or a zero mean embedding
        want = plain.head.bias if mode == "cnn" else plain.head(plain.act(plain.hidden(torch.zeros(1, 8))))
        assert torch.allclose(plain(ids[1:2]), want)


def test_kaiming_keeps_relu_variance_and_small_normal_collapses() -> None:
    """The init diagnostic, through create_model: 10 hidden ReLU layers of an mlp, width 512."""
    # Not seed 0: init_weights draws from torch.Generator().manual_seed(0) too, and weights equal to
    # a scaled copy of the inputs correlate with them (the first layer's variance comes out 1.5x).
    x = torch.randn(1024, 1, 16, 16, generator=torch.Generator().manual_seed(12345))  # unit variance
    variances = {}
    for init in ("kaiming", "small_normal"):
        model = create_model("mlp", in_channels=1, image_size=16, num_classes=10, width=512, depth=10,
                             norm="none", init=init, seed=0)
        assert isinstance(model, nn.Sequential)
        per_layer = [v for _, v in activation_variance(model, x)]
        assert len(per_layer) == 11  # ten hidden layers and the head
        variances[init] = per_layer[:10]
    kaiming = variances["kaiming"]
    assert max(kaiming) / min(kaiming) < 2.0
    assert kaiming[0] == pytest.approx(2.0, rel=0.1)  # n * (2/n) * Var(x)
    small = variances["small_normal"]
    assert small[0] == pytest.approx(256 * 1e-4, rel=0.1)  # n * 0.01^2 * Var(x)
    for before, after in itertools.pairwise(small):
        assert after / before == pytest.approx(512 * 1e-4 / 2, rel=0.2)  # n Var(w) / 2 per ReLU layer
    assert small[-1] < 1e-12 * kaiming[-1]


@pytest.mark.parametrize(("name", "options", "field"), [
    ("mlp", {"norm": "group"}, "norm"),
    ("mlp", {"dropout": 1.0}, "dropout"),
    ("mlp", {"dropout": -0.1}, "dropout"),
    ("mlp", {"width": 0}, "width"),
    ("mlp", {"depth": 2.5}, "depth"),
    ("cnn", {"activation": "gelu"}, "activation"),
    ("cnn", {"in_channels": True}, "in_channels"),
    ("resnet", {"depth": 5}, "depth"),
    ("resnet", {"depth": 0}, "depth"),
    ("resnet", {"blocks": 0}, "blocks"),
    ("resnet", {"blocks": 1.5}, "blocks"),
    ("resnet", {"norm": "group"}, "norm"),
    ("text_cnn", {"mode": "rnn"}, "mode"),
    ("text_cnn", {"kernel_sizes": []}, "kernel_sizes"),
    ("text_cnn", {"kernel_sizes": [3, 0]}, "kernel_sizes"),
    ("text_cnn", {"vocab_size": 1}, "vocab_size"),
])
def test_bad_option_names_the_field_and_the_allowed_values(name: str, options: dict[str, Any],
                                                           field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: .* for {name}; allowed: "):
        build(name, **options)


def test_unknown_missing_and_misspelt() -> None:
    with pytest.raises(ValueError, match=r"mlp has no option\(s\) \['heads'\]; known: .*'width'"):
        build("mlp", heads=2)
    with pytest.raises(ValueError, match=r"cnn has no option\(s\) \['blocks'\]"):
        build("cnn", blocks=2)
    with pytest.raises(ValueError, match="text_cnn needs vocab_size"):
        create_model("text_cnn", num_classes=2)
    with pytest.raises(ValueError, match="did you mean 'cnn'"):
        create_model("cnnn", **IMAGE)
    with pytest.raises(ValueError, match="did you mean 'kaiming'"):
        build("mlp", init="kaimng")


# ---- resnet ------------------------------------------------------------------------------------

def test_resnet_depth_bound_is_its_own() -> None:
    """resnet's depth is at most 4 (channels width .. 8 width); cnn's and mlp's are unbounded."""
    with pytest.raises(ValueError, match=r"^depth: .* for resnet; allowed: integer in \[1, 4\]"):
        build("resnet", depth=5)
    assert len(build("cnn", depth=5)) > 0


@pytest.mark.parametrize(("in_channels", "size", "pools", "stem_stride", "final_map"), [
    (1, 32, 0, 1, 4),  # digits: 3x3 stride-1 stem, 32 -> 16 -> 8 -> 4 over the stages
    (3, 224, 1, 2, 7),  # photos: 7x7 stride-2 stem and max pool, 224 -> 56 -> 28 -> 14 -> 7
    (3, LARGE_STEM_FROM - 1, 0, 1, 8),
    (3, LARGE_STEM_FROM, 1, 2, 2),
])
def test_resnet_default_shapes_and_stem(in_channels: int, size: int, pools: int, stem_stride: int,
                                        final_map: int) -> None:
    model = create_model("resnet", in_channels=in_channels, image_size=size, num_classes=10)
    assert isinstance(model, nn.Sequential)
    assert list(dict(model.named_children())) == ["stem", "stage0", "stage1", "stage2", "stage3",
                                                  "gap", "flatten", "head"]
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == pools
    stem_conv = model.stem[0]
    assert isinstance(stem_conv, nn.Conv2d) and stem_conv.stride == (stem_stride, stem_stride)
    seen: list[tuple[int, ...]] = []
    handle = model.gap.register_forward_hook(lambda m, args, out: seen.append(tuple(args[0].shape)))
    with torch.no_grad():
        out = model(images(2, in_channels=in_channels, image_size=size))
    handle.remove()
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    assert seen == [(2, 128, final_map, final_map)]  # 8 x width channels into the average pool


def test_resnet_default_is_small() -> None:
    """~0.31M parameters (ResNet-18 has 11.7M): 1 block per stage, channels 16, 32, 64, 128."""
    def count(**options: Any) -> int:
        model = create_model("resnet", in_channels=3, image_size=224, num_classes=10, **options)
        return sum(p.numel() for p in model.parameters())

    default = count()
    assert 250_000 < default < 350_000
    assert count(norm="batch") < 350_000
    assert default < count(blocks=2) < 1_000_000  # two blocks per stage as in ResNet-18: ~0.70M
    assert count(depth=3) < default / 3  # the last stage holds most of the weights


def blocks_of(model: nn.Module) -> list[tuple[str, BasicBlock]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, BasicBlock)]


@pytest.mark.parametrize("norm", NORMS)
def test_resnet_block_output_is_branch_plus_shortcut(norm: str) -> None:
    model = create_model("resnet", in_channels=3, image_size=32, num_classes=4, width=4, blocks=2,
                         norm=norm, init="kaiming").eval()
    found = blocks_of(model)
    assert [name for name, _ in found] == [f"stage{k}.{b}" for k in range(4) for b in range(2)]
    seen: dict[str, torch.Tensor] = {}
    handles = [m.register_forward_hook(
        lambda module, args, out, name=name: seen.__setitem__(name, out.detach().clone()))
        for name, m in model.named_modules() if name.startswith("stage")]
    with torch.no_grad():
        model(images(3, in_channels=3, image_size=32))
    for handle in handles:
        handle.remove()
    for name, block in found:
        k, b = (int(part) for part in name.removeprefix("stage").split("."))
        branch, shortcut = seen[f"{name}.branch"], seen[f"{name}.shortcut"]
        assert torch.allclose(seen[name], torch.relu(branch + shortcut), atol=1e-6)
        assert not torch.allclose(seen[name], torch.relu(branch), atol=1e-3)  # the sum is not vacuous
        if k > 0 and b == 0:  # downsampling: a 1x1 stride-2 projection
            conv = block.shortcut[0]
            assert isinstance(conv, nn.Conv2d)
            assert conv.kernel_size == (1, 1) and conv.stride == (2, 2)
            assert (conv.in_channels, conv.out_channels) == (4 * 2 ** (k - 1), 4 * 2**k)
        else:
            assert isinstance(block.shortcut, nn.Identity)


def test_resnet_identity_block_passes_its_input_through() -> None:
    """With the branch's last convolution zeroed a block is activation(x): the skip is real."""
    model = create_model("resnet", in_channels=3, image_size=32, num_classes=4, width=4)
    block = model.stage0[0]
    assert isinstance(block, BasicBlock)
    last = block.branch[-1]
    assert isinstance(last, nn.Conv2d)  # norm "none": the branch ends in its (biased) conv
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert not torch.allclose(block(x), torch.relu(x), atol=1e-3)
        last.weight.zero_()
        last.bias.zero_()
        assert torch.equal(block(x), torch.relu(x))


def test_resnet_is_deterministic_given_the_seed() -> None:
    x = images(2, in_channels=3, image_size=224)
    outs = []
    for seed in (7, 7, 8):
        model = create_model("resnet", in_channels=3, image_size=224, num_classes=10, norm="batch",
                             seed=seed, init="kaiming").eval()
        with torch.no_grad():
            outs.append(model(x))
    assert torch.equal(outs[0], outs[1])
    assert not torch.allclose(outs[0], outs[2], atol=1e-3)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("norm", NORMS)
def test_resnet_sgd_steps_reduce_the_loss(norm: str) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 1, 32, 32, generator=g)
    y = torch.randint(0, 10, (8,), generator=g)
    model = create_model("resnet", in_channels=1, image_size=32, num_classes=10, width=8, norm=norm,
                         init="kaiming", seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    losses = []
    for _ in range(10):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
