"""ServeConfig: every server setting, read from flags, AUGSVC_* environment variables and a YAML file."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from augsvc.errors import AugsvcError
from augsvc.service.memory_budget import memory_ceiling, parse_memory
from augsvc.wire.tensors import Limits

__all__ = ["ENV_PREFIX", "ConfigError", "ServeConfig", "add_serve_arguments", "env_name", "load_config"]

ENV_PREFIX = "AUGSVC_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_MIB = 1024 * 1024


class ConfigError(AugsvcError, ValueError):
    """A server setting is unknown or has a value outside what it allows."""


def _rule(allowed: str, help_: str, check: Callable[[Any], bool] = lambda _: True) -> dict[str, Any]:
    return {"allowed": allowed, "help": help_, "check": check}


def _count(low: int, high: int | None = None) -> Callable[[Any], bool]:
    return lambda v: v >= low and (high is None or v <= high)


@dataclass(frozen=True)
class ServeConfig:
    """Every setting of ``augsvc serve``; the defaults serve on loopback, without auth or TLS.

    Each field is also the YAML key, ``--flag-name`` and ``AUGSVC_FIELD_NAME`` environment variable
    (see ``load_config``). ``metrics_port`` None (the default) turns the metrics endpoint off; with
    several processes, process ``k`` serves its metrics on ``metrics_port + k`` (0: each picks a
    free port and logs it in its "serving" line).
    """

    host: str = field(default="127.0.0.1", metadata=_rule(
        "a host name or IP address", "address to bind (127.0.0.1 unless told otherwise)", bool))
    port: int = field(default=50051, metadata=_rule(
        "an integer from 0 to 65535", "gRPC port (0 picks a free one)", _count(0, 65535)))
    processes: int = field(default=1, metadata=_rule(
        "an integer >= 1", "server processes sharing the port (SO_REUSEPORT)", _count(1)))
    threads: int = field(default=16, metadata=_rule(
        "an integer >= 1", "data calls per process at once (a stream holds one for its whole "
        "life); one more is refused at once with UNAVAILABLE and a retry hint", _count(1)))
    reserve_threads: int = field(default=4, metadata=_rule(
        "an integer >= 1", "request threads kept free of data calls, so health checks, "
        "reflection and refusals never wait behind streams", _count(1)))
    max_message_bytes: int = field(default=512 * _MIB, metadata=_rule(
        "an integer >= 1024", "largest gRPC message received or sent", _count(1024)))
    max_samples: int = field(default=Limits.max_samples, metadata=_rule(
        "an integer >= 1", "images per request (batch size)", _count(1)))
    max_pixels: int = field(default=Limits.max_pixels, metadata=_rule(
        "an integer >= 1", "pixels per image", _count(1)))
    max_tensor_bytes: int = field(default=Limits.max_tensor_bytes, metadata=_rule(
        "an integer >= 1", "bytes per array or encoded image", _count(1)))
    max_texts: int = field(default=Limits.max_texts, metadata=_rule(
        "an integer >= 1", "texts per request", _count(1)))
    max_text_chars: int = field(default=Limits.max_text_chars, metadata=_rule(
        "an integer >= 1", "characters per text", _count(1)))
    max_text_variants: int = field(default=Limits.max_text_variants, metadata=_rule(
        "an integer >= 1", "augmented texts per request (texts x n)", _count(1)))
    max_spec_bytes: int = field(default=Limits.max_spec_bytes, metadata=_rule(
        "an integer >= 2", "characters of a request's spec_json", _count(2)))
    max_memory: str = field(default="auto", metadata=_rule(
        "auto, off, or a size such as 8GiB, 512MB, 2000000000", "memory ceiling of each "
        "process (server and batch workers): requests that would not fit are refused; auto: "
        "80% of the machine's (or container's) memory shared by --processes",
        lambda v: parse_memory(v) is not None))
    token: str | None = field(default=None, metadata=_rule(
        "a non-empty string", "require 'authorization: Bearer TOKEN' (prefer AUGSVC_TOKEN: "
        "flags show in ps)", bool))
    tls_cert: str | None = field(default=None, metadata=_rule(
        "a PEM certificate file", "serve TLS with this certificate chain (needs tls_key)",
        lambda v: Path(v).is_file()))
    tls_key: str | None = field(default=None, metadata=_rule(
        "a PEM private key file", "private key of tls_cert", lambda v: Path(v).is_file()))
    metrics_port: int | None = field(default=None, metadata=_rule(
        "an integer from 0 to 65535", "serve Prometheus metrics over HTTP on this port "
        "(process k: port + k; 0: a free port each, logged); off by default", _count(0, 65535)))
    log_level: str = field(default="INFO", metadata=_rule(
        f"one of {', '.join(LOG_LEVELS)}", "level of the JSON logs on stderr (INFO: one line per call)",
        lambda v: v in LOG_LEVELS))
    datasets: str | None = field(default=None, metadata=_rule(
        "NAME=PATH[,NAME=PATH...]", "datasets StreamEpoch serves besides the built-ins (image "
        "folders of class folders, .npz files, label<TAB>text files)", lambda v: _dataset_map(v) is not None))
    epoch_workers: int = field(default=0, metadata=_rule(
        "an integer >= 0", "worker processes that build StreamEpoch batches, so one stream uses "
        "that many cores (0: build them on the request thread)", _count(0)))
    grace_period: float = field(default=5.0, metadata=_rule(
        "a number of seconds >= 0", "on SIGTERM, the process has exited within this many seconds; "
        "in-flight calls may run until up to 1 s before it, then are cancelled",
        lambda v: math.isfinite(v) and v >= 0))

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _check(f, getattr(self, f.name), "")
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


def _kind(f: dataclasses.Field[Any]) -> type:
    text = str(f.type)
    return int if text.startswith("int") else float if text.startswith("float") else str


def _check(f: dataclasses.Field[Any], value: Any, source: str) -> None:
    kind = _kind(f)
    optional = "None" in str(f.type)
    ok = (value is None and optional) or (
        isinstance(value, kind) and not isinstance(value, bool) and f.metadata["check"](value))
    if not ok:
        where = f" (from {source})" if source else ""
        raise ConfigError(f"config key '{f.name}'{where}: {value!r} is not allowed; "
                          f"allowed: {f.metadata['allowed']}")


def _coerce(key: str, value: Any, source: str) -> Any:
    """``value`` as the type of ``key``; strings (env, YAML) are parsed, other types must match."""
    f = _FIELDS[key]
    kind = _kind(f)
    if isinstance(value, str) and kind is not str:
        with contextlib.suppress(ValueError):  # if not, _check names the key and the allowed values
            value = kind(value.strip())
    elif kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if key == "log_level" and isinstance(value, str) and value.upper() in LOG_LEVELS:
        value = value.upper()
    _check(f, value, source)
    return value


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
    unknown = sorted(str(k) for k in data if k not in _FIELDS)
    if unknown:
        raise ConfigError(f"{path}: unknown config key {unknown[0]!r}; allowed keys: {', '.join(_FIELDS)}")
    return {k: _coerce(k, v, str(path)) for k, v in data.items()}


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
            values[key] = _coerce(key, raw, f"${env_name(key)}")
    for key, value in (flags or {}).items():
        if value is not None:
            if key not in _FIELDS:
                raise ConfigError(f"unknown setting {key!r}; allowed: {', '.join(_FIELDS)}")
            values[key] = _coerce(key, value, f"--{key.replace('_', '-')}")
    return ServeConfig(**values)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per ServeConfig field (default None: not given), plus ``--config FILE``."""
    parser.add_argument("--config", metavar="FILE", help="YAML file of settings (keys: the field names "
                        "below with underscores); precedence: flags > AUGSVC_* env > file > defaults")
    for key, f in _FIELDS.items():
        flag = "--" + key.replace("_", "-")
        names = [flag, "--workers"] if key == "threads" else [flag]
        kind = _kind(f)
        parser.add_argument(*names, dest=key, type=kind, default=None,
                            metavar=key.upper() if kind is str else kind.__name__.upper(),
                            help=f"{f.metadata['help']} [${env_name(key)}; default {f.default}]")
