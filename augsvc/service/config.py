"""ServeConfig: every server setting, read from flags, AUGSVC_* environment variables and a YAML file."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from augsvc.errors import ConfigError, did_you_mean
from augsvc.service.memory_budget import memory_ceiling, parse_memory
from augsvc.settings import check_fields, check_value, read_text, setting
from augsvc.wire.tensors import MAX_MESSAGE_BYTES, Limits

__all__ = ["ENV_PREFIX", "ConfigError", "ServeConfig", "add_serve_arguments", "env_name", "load_config"]

ENV_PREFIX = "AUGSVC_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class ServeConfig:
    """Every setting of ``augsvc serve``; the defaults serve on loopback, without auth or TLS.

    Each field is also the YAML key, ``--flag-name`` and ``AUGSVC_FIELD_NAME`` environment variable
    (see ``load_config``). ``metrics_port`` None (the default) turns the metrics endpoint off; with
    several processes, process ``k`` serves its metrics on ``metrics_port + k`` (0: each picks a
    free port and logs it in its "serving" line).
    """

    host: str = setting("127.0.0.1", kind="string",
                        doc="address to bind (127.0.0.1 unless told otherwise)")
    port: int = setting(50051, kind="int", low=0, high=65535, doc="gRPC port (0 picks a free one)")
    processes: int = setting(1, kind="int", low=1,
                             doc="server processes sharing the port (SO_REUSEPORT)")
    threads: int = setting(16, kind="int", low=1, doc=(
        "data calls per process at once (a stream holds one for its whole life); one more is "
        "refused at once with UNAVAILABLE and a retry hint"))
    reserve_threads: int = setting(4, kind="int", low=1, doc=(
        "request threads kept free of data calls, so health checks, reflection and refusals "
        "never wait behind streams"))
    max_message_bytes: int = setting(MAX_MESSAGE_BYTES, kind="int", low=1024,
                                     doc="largest gRPC message received or sent")
    max_samples: int = setting(Limits.max_samples, kind="int", low=1,
                               doc="images per request (batch size)")
    max_pixels: int = setting(Limits.max_pixels, kind="int", low=1, doc="pixels per image")
    max_tensor_bytes: int = setting(Limits.max_tensor_bytes, kind="int", low=1,
                                    doc="bytes per array or encoded image")
    max_texts: int = setting(Limits.max_texts, kind="int", low=1, doc="texts per request")
    max_text_chars: int = setting(Limits.max_text_chars, kind="int", low=1,
                                  doc="characters per text")
    max_text_variants: int = setting(Limits.max_text_variants, kind="int", low=1,
                                     doc="augmented texts per request (texts x n)")
    max_spec_bytes: int = setting(Limits.max_spec_bytes, kind="int", low=2,
                                  doc="characters of a request's spec_json")
    max_memory: str = setting(
        "auto", kind="string", check=lambda v: parse_memory(v) is not None,
        allowed="auto, off, or a size such as 8GiB, 512MB, 2000000000", doc=(
            "memory ceiling of each process (server and batch workers): requests that would not "
            "fit are refused; auto: 80% of the machine's (or container's) memory shared by "
            "--processes"))
    token: str | None = setting(None, kind="string", nullable=True, doc=(
        "require 'authorization: Bearer TOKEN' (prefer AUGSVC_TOKEN: flags show in ps)"))
    tls_cert: str | None = setting(
        None, kind="string", nullable=True, check=lambda v: Path(v).is_file(),
        allowed="a PEM certificate file",
        doc="serve TLS with this certificate chain (needs tls_key)")
    tls_key: str | None = setting(
        None, kind="string", nullable=True, check=lambda v: Path(v).is_file(),
        allowed="a PEM private key file", doc="private key of tls_cert")
    metrics_port: int | None = setting(None, kind="int", low=0, high=65535, nullable=True, doc=(
        "serve Prometheus metrics over HTTP on this port (process k: port + k; 0: a free port "
        "each, logged); off by default"))
    log_level: str = setting("INFO", kind="choice", choices=LOG_LEVELS, doc=(
        "level of the JSON logs on stderr (INFO: one line per call)"))
    datasets: str | None = setting(
        None, kind="string", nullable=True, check=lambda v: _dataset_map(v) is not None,
        allowed="NAME=PATH[,NAME=PATH...]", doc=(
            "datasets StreamEpoch serves besides the built-ins (image folders of class folders, "
            ".npz files, label<TAB>text files, COCO .json, images/+masks/ folders, text tables: "
            ".csv, .jsonl, .parquet)"))
    epoch_workers: int = setting(0, kind="int", low=0, doc=(
        "worker processes that build StreamEpoch batches, so one stream uses that many cores "
        "(0: build them on the request thread)"))
    max_connection_age: float | None = setting(None, kind="float", low=1, nullable=True, doc=(
        "seconds after which a client's connection is asked to go away and reconnect, resolving "
        "the server's name again: replicas added since (a scaled-up Deployment behind a headless "
        "Service) get calls; off by default"))
    max_connection_age_grace: float = setting(30.0, kind="float", low=0, doc=(
        "seconds a connection asked to go away may finish its calls; a stream still running is "
        "then cut, and stream_epoch resumes it from its next batch"))
    grace_period: float = setting(5.0, kind="float", low=0, doc=(
        "on SIGTERM, the process has exited within this many seconds; in-flight calls may run "
        "until up to 1 s before it, then are cancelled"))

    def __post_init__(self) -> None:
        check_fields(self)  # also when built directly, not by load_config
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("config keys 'tls_cert' and 'tls_key' go together: give both or neither")
        if self.metrics_port and self.metrics_port + self.processes - 1 > 65535:
            raise ConfigError(f"config key 'metrics_port': {self.metrics_port} + {self.processes} "
                              "processes runs past port 65535")

    @property
    def limits(self) -> Limits:
        """The per-request limits the servicer enforces."""
        return Limits(max_samples=self.max_samples, max_pixels=self.max_pixels,
                      max_tensor_bytes=self.max_tensor_bytes, max_texts=self.max_texts,
                      max_text_chars=self.max_text_chars, max_text_variants=self.max_text_variants,
                      max_reply_bytes=self.max_message_bytes, max_spec_bytes=self.max_spec_bytes)

    @property
    def memory_ceiling(self) -> int | None:
        """Bytes each process may use (``max_memory`` resolved), or None for no ceiling."""
        return memory_ceiling(self.max_memory, self.processes)

    @property
    def dataset_map(self) -> dict[str, str]:
        """``datasets`` as name -> path."""
        return _dataset_map(self.datasets) or {}

    @property
    def address(self) -> str:
        """``host:port``, with IPv6 hosts in brackets."""
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{host}:{self.port}"


_FIELDS = {f.name: f for f in dataclasses.fields(ServeConfig)}


def _dataset_map(text: str | None) -> dict[str, str] | None:
    """"a=/data/a,b=/data/b.npz" -> {"a": "/data/a", "b": "/data/b.npz"}; None when malformed."""
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        name, sep, path = item.strip().partition("=")
        if not item.strip():
            continue
        if not sep or not name.strip() or not path.strip():
            return None
        out[name.strip()] = path.strip()
    return out


def env_name(key: str) -> str:
    """The environment variable of a config key: ``port`` -> ``AUGSVC_PORT``."""
    return ENV_PREFIX + key.upper()


def _read(key: str, value: Any, source: str) -> Any:
    """``value`` for setting ``key``: text (environment, flags) is parsed, everything is checked."""
    f = _FIELDS[key]
    if key == "log_level" and isinstance(value, str) and value.strip().upper() in LOG_LEVELS:
        value = value.strip().upper()  # levels are case-blind, as in logging
    where = f"{key} (from {source})"
    return read_text(f, value, where) if isinstance(value, str) else check_value(f, value, where)


def _read_yaml(path: str | Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings, not {type(data).__name__}")
    for key in data:
        if key not in _FIELDS:
            raise ConfigError(f"{key} (from {path}): unknown setting{did_you_mean(str(key), _FIELDS)}; "
                              f"known: {', '.join(_FIELDS)}")
    return {k: _read(k, v, str(path)) for k, v in data.items()}


def load_config(flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None,
                path: str | Path | None = None) -> ServeConfig:
    """The server settings: flags over environment over the YAML file over the defaults.

    Args:
        flags: settings given on the command line; keys are field names, None means not given.
        env: environment variables; ``AUGSVC_<FIELD>`` is read, an empty value counts as unset.
        path: a YAML file mapping field names to values.

    Returns:
        The merged, validated ``ServeConfig``.

    Raises:
        ConfigError: an unknown YAML key, or a value outside what its key allows (the message
            names the key, where the value came from and the allowed values).
    """
    values: dict[str, Any] = _read_yaml(path) if path is not None else {}
    for key in _FIELDS:
        raw = (env or {}).get(env_name(key), "")
        if raw != "":
            values[key] = _read(key, raw, f"${env_name(key)}")
    for key, value in (flags or {}).items():
        if value is not None:
            if key not in _FIELDS:
                raise ConfigError(f"{key}: unknown setting{did_you_mean(key, _FIELDS)}; known: "
                                  f"{', '.join(_FIELDS)}")
            values[key] = _read(key, value, f"--{key.replace('_', '-')}")
    return ServeConfig(**values)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per ServeConfig field (default None: not given), plus ``--config FILE``."""
    parser.add_argument("--config", metavar="FILE", help="YAML file of settings (keys: the field names "
                        "below with underscores); precedence: flags > AUGSVC_* env > file > defaults")
    for key, f in _FIELDS.items():
        flag = "--" + key.replace("_", "-")
        names = [flag, "--workers"] if key == "threads" else [flag]
        kind = {"int": int, "float": float}.get(f.metadata["param"].kind, str)
        parser.add_argument(*names, dest=key, type=kind, default=None,
                            metavar=key.upper() if kind is str else kind.__name__.upper(),
                            # argparse formats help with %: a literal one ("80%") is doubled
                            help=f"{f.metadata['param'].doc} [${env_name(key)}; default "
                                 f"{f.default}]".replace("%", "%%"))
