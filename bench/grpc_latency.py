"""Time one unary gRPC call (GetUser on a user replica) over a long-lived channel.

Starts one user replica (free ports, temporary directory), registers a user, then sends
``--calls`` sequential GetUser calls on one channel and prints p50/p99, so the cost of mutual
TLS per call can be set beside plaintext: with ``--plaintext``, run in a checkout from before
``fitness/mtls.py`` with ``PYTHONPATH`` at this one, the same script measures the servers as
they were (the checkout's code comes first on the path, this bench package from here).

    .venv/bin/python -m bench.grpc_latency
    cd /tmp/old  # then, with $OLDPWD the repository root:
    PYTHONPATH=$OLDPWD $OLDPWD/.venv/bin/python -m bench.grpc_latency --plaintext
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import grpc

from bench.harness.stats import p50_p99
from devstack.stack import LocalStack, Replica, free_port
from fitness.v1 import user_pb2, user_pb2_grpc


def open_channel(
    stack: LocalStack, replica: Replica, role: str, plaintext: bool
) -> tuple[grpc.Channel, str]:
    """Return a channel as ``role`` opens one, and what kind it is."""
    if plaintext:  # servers from before mutual TLS
        return grpc.insecure_channel(replica.grpc_target), "plaintext"
    from fitness import mtls

    me = mtls.identity({"DATA_DIR": str(stack.data_dir)}, role)
    return mtls.channel(replica.grpc_target, me, replica.service), "mutual TLS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--plaintext", action="store_true", help="servers without mutual TLS")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="grpc-latency-") as tmp:
        replica = Replica("user_service", "user_service-1", free_port(), free_port())
        stack = LocalStack(Path(tmp), [replica], extra_env={"FITNESS_LOG_LEVEL": "WARNING"})
        stack.start()
        try:
            # RegisterUser is the gateway's to call; GetUser the activity service's.
            gateway, _ = open_channel(stack, replica, "gateway", args.plaintext)
            name = "l" + uuid.uuid4().hex[:12]
            request = user_pb2.UserRequest(
                username=name, email=f"{name}@example.com", password="x" * 12
            )
            registered = user_pb2_grpc.UserServiceStub(gateway).RegisterUser(request, timeout=30)
            call = user_pb2.GetUserRequest(user_id=registered.user_id)
            channel, kind = open_channel(stack, replica, "activity_service", args.plaintext)
            stub = user_pb2_grpc.UserServiceStub(channel)
            for _ in range(100):  # warm up: the handshake and first calls
                stub.GetUser(call, timeout=5)
            took = []
            for _ in range(args.calls):
                began = time.perf_counter()
                stub.GetUser(call, timeout=5)
                took.append((time.perf_counter() - began) * 1000)
            p50, p99 = p50_p99(took)
            print(f"GetUser over {kind}, {args.calls} calls: p50 {p50:.3f} ms, p99 {p99:.3f} ms")
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
