"""A gRPC client spreads its calls over every address of a name, as on Kubernetes.

There, a service's gRPC address is a headless Service: one name, one address per ready pod
(deploy/k8s). Here the name is in /etc/hosts with two loopback addresses, each with a real gRPC
server of the user service's role behind mutual TLS (``fitness.mtls``).
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fitness import mtls
from tests.support import hosts
from tests.support.stack import free_port

CALLS = 40


class CountingHealth(health_pb2_grpc.HealthServicer):
    """A health service that counts the calls each address gets."""

    def __init__(self, address: str, calls: collections.Counter):
        self.address, self.calls = address, calls

    def Check(self, request, context):
        self.calls[self.address] += 1
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


@pytest.fixture
def identity(tmp_path):
    def of(role: str) -> mtls.Identity:
        return mtls.identity({"DATA_DIR": str(tmp_path), "TLS_DIR": str(tmp_path / "tls")}, role)

    return of


@pytest.fixture
def two_pods(identity) -> Iterator[tuple[str, collections.Counter]]:
    """Yield ``name:port`` of two servers behind one name, and their counted calls."""
    if not hosts.available():
        pytest.skip("adding names to /etc/hosts needs root")
    calls: collections.Counter = collections.Counter()
    port = free_port()
    with hosts.name_with_addresses("user-service-grpc", 2) as (name, addresses):
        servers = []
        try:
            for address in addresses:
                server = grpc.server(futures.ThreadPoolExecutor(2))
                health_pb2_grpc.add_HealthServicer_to_server(CountingHealth(address, calls), server)
                credentials = mtls.server_credentials(identity("user_service"))
                server.add_secure_port(f"{address}:{port}", credentials)
                server.start()
                servers.append(server)
            yield f"{name}:{port}", calls
        finally:
            for server in servers:
                server.stop(grace=0)


def test_a_channel_to_a_name_spreads_its_calls_over_every_address(two_pods, identity):
    target, calls = two_pods
    channel = mtls.channel(target, identity("gateway"), "user_service")
    try:
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(CALLS):
            health.Check(health_pb2.HealthCheckRequest(), timeout=3)
    finally:
        channel.close()
    assert sum(calls.values()) == CALLS
    assert len(calls) == 2 and min(calls.values()) >= CALLS // 4, calls
