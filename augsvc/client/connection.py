"""The client's gRPC channel: round_robin over replicas, retries, keepalive, TLS, the token."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from pathlib import Path

import grpc

from augsvc.client.auth import BearerTokenClientInterceptor
from augsvc.wire.tensors import MAX_MESSAGE_BYTES
from augsvc.wire.v1 import augment_pb2 as pb

__all__ = ["MIN_KEEPALIVE", "open_channel"]

# Twice the 1 s ping interval augsvc servers accept (build_server): a ping delayed on the way
# arrives less than a keepalive after the one before, and must still not count as abuse.
MIN_KEEPALIVE = 2.0


def open_channel(targets: Sequence[str], *, token: str | None,
                 tls: str | os.PathLike[str] | bytes | bool | None, retries: int,
                 keepalive: float | None) -> grpc.Channel:
    """One channel to every address in ``targets`` (arguments as :class:`AugmentClient` takes them)."""
    target = targets[0] if len(targets) == 1 else _ipv4_target(targets)
    options = [("grpc.lb_policy_name", "round_robin"),
               # each client its own connections: SO_REUSEPORT spreads connections, so clients
               # sharing one would all land on one server process
               ("grpc.use_local_subchannel_pool", 1),
               ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
               ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
               ("grpc.enable_retries", int(retries > 0))]
    if retries:
        options.append(("grpc.service_config", _retry_config(retries)))
    if keepalive is not None:
        options += _keepalive_options(keepalive)
    channel = grpc.insecure_channel(target, options=options) if tls is None or tls is False \
        else grpc.secure_channel(target, _channel_credentials(tls), options=options)
    return channel if token is None \
        else grpc.intercept_channel(channel, BearerTokenClientInterceptor(token))


def _retry_config(retries: int) -> str:
    """A gRPC service config retrying every unary Augmenter RPC on UNAVAILABLE, with backoff."""
    service = pb.DESCRIPTOR.services_by_name["Augmenter"]
    unary = [{"service": service.full_name, "method": m.name} for m in service.methods
             if not m.client_streaming and not m.server_streaming]
    return json.dumps({"methodConfig": [{"name": unary, "retryPolicy": {
        "maxAttempts": retries + 1, "initialBackoff": "0.1s", "maxBackoff": "2s",
        "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]})


def _keepalive_options(keepalive: float) -> list[tuple[str, int]]:
    """Channel options that ping every ``keepalive`` seconds and drop a connection that does not
    answer within as long again (gRPC's doc/keepalive.md)."""
    ms = round(keepalive * 1000)
    return [("grpc.keepalive_time_ms", ms),
            ("grpc.keepalive_timeout_ms", ms),
            # Any ping in flight, not only keepalive's: gRPC sends one ping at a time, so an
            # unanswered flow-control (BDP) ping to a frozen server holds the keepalive ping
            # back, and it times out only after this (default 1 min; GRPC_ARG_PING_TIMEOUT_MS
            # in chttp2's internal.h). Measured: 60 s to notice a SIGSTOPped server without it.
            ("grpc.http2.ping_timeout_ms", ms),
            # idle connections too: a replica that vanished between epochs leaves round_robin
            # before the next stream is sent to it, not a stall timeout after
            ("grpc.keepalive_permit_without_calls", 1),
            # no cap on pings between the client's own data frames: in a StreamEpoch the
            # client sends nothing after its request, and gRPC's default (2) would stop the
            # pings for exactly the long streams they are there to watch
            ("grpc.http2.max_pings_without_data", 0)]


def _channel_credentials(tls: str | os.PathLike[str] | bytes | bool) -> grpc.ChannelCredentials:
    if tls is True:
        return grpc.ssl_channel_credentials()  # the system's root certificates
    return grpc.ssl_channel_credentials(root_certificates=tls if isinstance(tls, bytes)
                                        else Path(tls).read_bytes())  # type: ignore[arg-type]


def _ipv4_target(addresses: Sequence[str]) -> str:
    """Several "host:port" as one gRPC target, ``ipv4:ip:port,...``: host names are resolved here,
    once (gRPC takes a list only as addresses; one DNS name with several records needs no list).

    Raises:
        ValueError: an address without a port, or a host name that does not resolve.
    """
    resolved: list[str] = []
    for address in addresses:
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"address {address!r} is not host:port")
        try:
            infos = socket.getaddrinfo(host, int(port), socket.AF_INET, socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ValueError(f"cannot resolve {host!r} in {address!r}: {exc.strerror}") from None
        for info in infos:
            ip = f"{info[4][0]}:{port}"
            if ip not in resolved:
                resolved.append(ip)
    return "ipv4:" + ",".join(resolved)
