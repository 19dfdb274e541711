"""Build and run the gRPC server: Augmenter, the standard health service and reflection."""

from __future__ import annotations

from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from augsvc.service.codec import Limits
from augsvc.service.servicer import AugmenterServicer
from augsvc.v1 import augment_pb2 as pb
from augsvc.v1 import augment_pb2_grpc as pb_grpc

__all__ = ["SERVICE_NAME", "build_server"]

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Augmenter"].full_name
_MAX_MESSAGE = 512 * 1024 * 1024


def build_server(address: str = "127.0.0.1:0", *, workers: int = 4,
                 limits: Limits | None = None) -> tuple[grpc.Server, int]:
    """A started-ready (not yet started) server bound to ``address``, and the bound port.

    Port 0 picks a free port. Health reports SERVING for "" and the Augmenter service.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers),
        options=[("grpc.max_receive_message_length", _MAX_MESSAGE),
                 ("grpc.max_send_message_length", _MAX_MESSAGE)])
    pb_grpc.add_AugmenterServicer_to_server(AugmenterServicer(limits), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME), server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind {address}")
    return server, port
