"""ServeConfig: flags > AUGSVC_* environment > YAML file > defaults, and errors that name the key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from augsvc.cli import main
from augsvc.service.config import ConfigError, ServeConfig, env_name, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "serve.yaml"
    path.write_text(text)
    return path


def test_defaults_bind_loopback_with_no_auth_tls_or_metrics() -> None:
    config = load_config()
    assert config == ServeConfig()
    assert (config.host, config.port, config.processes, config.token, config.tls_cert,
            config.metrics_port) == ("127.0.0.1", 50051, 1, None, None, None)
    assert config.limits.max_samples == 4096 and config.address == "127.0.0.1:50051"


def test_flags_beat_env_beat_yaml_beat_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "port: 1000\nthreads: 2\nlog_level: debug\nmax_samples: 8\ngrace_period: 1\n")
    env = {"AUGSVC_PORT": "2000", "AUGSVC_THREADS": "3", "AUGSVC_TOKEN": "from-env",
           "AUGSVC_MAX_TEXTS": "", "UNRELATED": "x"}
    config = load_config({"port": 3000, "token": None, "host": "0.0.0.0"}, env, path)
    assert config.port == 3000  # flag over env and file
    assert config.host == "0.0.0.0"  # flag over default
    assert config.threads == 3 and config.token == "from-env"  # env over file / default
    assert config.log_level == "DEBUG" and config.max_samples == 8  # file over default
    assert config.grace_period == 1.0 and isinstance(config.grace_period, float)
    assert config.max_texts == ServeConfig().max_texts  # an empty variable counts as unset
    assert config.limits.max_samples == 8
    assert load_config(None, env, path).port == 2000
    assert load_config(None, {}, path).port == 1000
    assert env_name("metrics_port") == "AUGSVC_METRICS_PORT"


def test_unknown_yaml_key_names_it_and_the_allowed_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"prot \(from .*serve.yaml\): unknown setting \(did you mean "
                       r"'port'\?\); known: host, port, "):
        load_config(path=write(tmp_path, "prot: 1\n"))
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(path=write(tmp_path, "- port\n"))
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(path=tmp_path / "missing.yaml")


@pytest.mark.parametrize(("yaml_text", "env", "needle"), [
    ("port: abc\n", {},
     r"port \(from .*serve.yaml\): must be an integer \(got 'abc'\); allowed: integer in \[0, 65535\]"),
    ("", {"AUGSVC_PORT": "70000"}, r"port \(from \$AUGSVC_PORT\): out of range \(got 70000\)"),
    ("log_level: loud\n", {},
     "allowed: one of 'DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'"),
    ("processes: 0\n", {}, r"processes .*allowed: integer in \[1, inf\]"),
    ("threads: true\n", {}, r"threads .*must be an integer \(got True\)"),
    ("grace_period: -1\n", {}, r"grace_period .*allowed: number in \[0, inf\]"),
    ("grace_period: .nan\n", {}, r"grace_period .*must be a finite number"),
    ("max_memory: lots\n", {}, r"max_memory .*is not allowed \(got 'lots'\); allowed: auto, off"),
    ("tls_cert: /nonexistent/cert.pem\ntls_key: /nonexistent/key.pem\n", {},
     "tls_cert .*allowed: a PEM certificate file"),
    ("", {"AUGSVC_METRICS_PORT": "65535", "AUGSVC_PROCESSES": "2"}, "runs past port 65535"),
])
def test_bad_values_name_the_key_the_source_and_the_allowed_values(
        tmp_path: Path, yaml_text: str, env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_config(None, env, write(tmp_path, yaml_text))


def test_tls_files_go_together(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(ConfigError, match="'tls_cert' and 'tls_key' go together"):
        ServeConfig(tls_cert=str(cert))


def test_serve_command_reports_a_bad_config_and_exits_2(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--config", str(write(tmp_path, "colour: blue\n"))]) == 2
    err = capsys.readouterr().err
    assert "augsvc: error: colour (from " in err and "unknown setting" in err
    assert main(["serve", "--port", "1", "--log-level", "loud"]) == 2
    assert "log_level (from --log-level): unknown value (got 'loud')" in capsys.readouterr().err


def test_serve_help_lists_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for f in dataclasses.fields(ServeConfig):
        assert "--" + f.name.replace("_", "-") in out and env_name(f.name) in out
    assert "80% of the machine" in out  # a literal % in a setting's doc survives argparse
