"""Run configs: defaults, YAML, overrides, and errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import ConfigError, TrainConfig, load_config, to_dict


def test_defaults_are_a_cnn_on_digits() -> None:
    config = load_config()
    assert config == TrainConfig()
    assert (config.model.name, config.data.dataset, config.data.source) == ("cnn", "digits", "local")


def test_yaml_file_with_registry_options_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("seed: 3\nepochs: 2\nmodel: {name: mlp, width: 64, norm: layer}\n"
                    "optimizer: {name: adam, lr: 0.01, betas: [0.8, 0.9]}\n"
                    "schedule: {name: step, step_size: 5}\n")
    config = load_config(path, {"optimizer.lr": 0.5, "data.batch_size": 16})
    assert config.seed == 3 and config.epochs == 2
    assert config.model.options == {"width": 64, "norm": "layer"}
    assert config.optimizer.lr == 0.5 and config.optimizer.options == {"betas": [0.8, 0.9]}
    assert config.schedule.options == {"step_size": 5}
    assert config.data.batch_size == 16


def test_to_dict_round_trips() -> None:
    config = load_config({"model": {"name": "mlp", "depth": 4}, "data": {"train_size": 100},
                          "regularization": {"penalty": "l2", "strength": 1e-4}})
    assert load_config(to_dict(config)) == config


def test_int_is_accepted_where_a_float_is_expected() -> None:
    assert load_config({"optimizer": {"lr": 1}}).optimizer.lr == 1.0


@pytest.mark.parametrize(("raw", "message"), [
    ({"epoch": 3}, "epoch: unknown setting (did you mean 'epochs'?); known: seed, epochs,"),
    ({"data": {"batchsize": 3}}, "data.batchsize: unknown setting (did you mean 'batch_size'?)"),
    ({"epochs": "ten"}, "epochs: must be an integer (got 'ten'); allowed: integer in [1, inf]"),
    ({"epochs": 0}, "epochs: out of range (got 0); allowed: integer in [1, inf]"),
    ({"optimizer": {"lr": -1.0}}, "optimizer.lr: out of range (got -1.0); allowed: number in (0, inf]"),
    ({"optimizer": {"lr": 0}}, "optimizer.lr: out of range (got 0)"),
    ({"data": {"source": "cloud"}},
     "data.source: unknown value (got 'cloud'); allowed: one of 'local', 'remote', 'memory'"),
    ({"device": "cuda:0"}, "device: unknown value (did you mean 'cuda'?) (got 'cuda:0')"),
    ({"data": {"holdout_fraction": 1.0}},
     "data.holdout_fraction: out of range (got 1.0); allowed: number in [0, 1)"),
    ({"regularization": {"penalty": "l3"}}, "regularization.penalty: unknown value"),
    ({"model": 5}, "model: expected a mapping, got 5"),
    ({"channels_last": 1}, "channels_last: must be true or false (got 1)"),
    ({"data": {"addresses": [1]}}, "data.addresses: must be a list of strings (got [1])"),
])
def test_errors_name_the_field(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert message in str(info.value)


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(bad)
