"""gRPC helpers: a server with health, correlation ids and error mapping; reusable clients."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from fitness import logs, mongo, mtls
from fitness.errors import DomainError, Unavailable, error_metadata, from_rpc_error

log = logging.getLogger(__name__)

# Errors after which the same call may go to another replica: the request did not take effect
# or, for our idempotent calls, taking effect twice is harmless.
RETRYABLE_CODES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


class _ServerInterceptor(grpc.ServerInterceptor):
    """Refuse callers the method does not allow (``mtls.CALLERS``), carry the caller's
    correlation id, log each call and map domain errors to status codes."""

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        if handler.unary_stream is not None:  # Health/Watch: checked, not logged per message
            return grpc.unary_stream_rpc_method_handler(
                _checked(handler.unary_stream, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_unary is None:
            return handler
        behaviour = _checked(handler.unary_unary, method)

        def wrapped(request, context):
            metadata = dict(context.invocation_metadata())
            correlation_id = logs.clean_correlation_id(metadata.get(logs.CORRELATION_METADATA_KEY))
            token = logs.set_correlation_id(correlation_id)
            try:
                return _run_logged(behaviour, method, request, context)
            finally:
                logs.reset_correlation_id(token)

        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _checked(behaviour, method: str):
    """Return ``behaviour`` run only for a caller whose role may call ``method``."""

    def checked(request, context):
        caller = mtls.caller_role(context)
        if caller not in mtls.CALLERS.get(method, ()):
            who = caller or "a caller with no certificate"
            log.warning(
                "refused gRPC %s from %s",
                method,
                who,
                extra={"rpc.method": method, "event.outcome": "failure", "client.user.name": who},
            )
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{who} may not call {method}")
        return behaviour(request, context)

    return checked


def _run_logged(behaviour, method: str, request, context):
    started = time.perf_counter()
    code = grpc.StatusCode.OK
    try:
        return behaviour(request, context)
    except DomainError as err:
        code = err.grpc_status
        context.set_trailing_metadata(error_metadata(err))
        context.abort(err.grpc_status, err.message)
    except Exception as exc:
        if context.code() not in (None, grpc.StatusCode.OK):
            code = context.code()
            raise
        if (outage := mongo.as_domain_error(exc)) is not None:
            code = outage.grpc_status
            log.warning("store outage in %s: %s", method, exc)
            context.set_trailing_metadata(error_metadata(outage))
            context.abort(outage.grpc_status, outage.message)
        code = grpc.StatusCode.INTERNAL
        log.exception("unhandled error in %s", method)
        context.abort(grpc.StatusCode.INTERNAL, "internal error")
    finally:
        log.info(
            "gRPC %s %s",
            method,
            code.name,
            extra={
                "event.kind": "event",
                "event.category": "network",
                "event.duration": int((time.perf_counter() - started) * 1e9),
                "rpc.method": method,
                "rpc.grpc.status_code": code.name,
            },
        )


def create_server(
    port: int,
    register: Sequence[Callable[[grpc.Server], None]],
    me: mtls.Identity,
    max_workers: int = 16,
    host: str = "127.0.0.1",
) -> tuple[grpc.Server, int, health.HealthServicer]:
    """Return an unstarted server on ``port`` (0 picks one) with the standard health service.

    It speaks TLS only, and only to callers with a certificate from the CA (``me.ca``).
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
        interceptors=[_ServerInterceptor()],
        options=[("grpc.so_reuseport", 1)],
    )
    for add_servicer in register:
        add_servicer(server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    bound = server.add_secure_port(f"{host}:{port}", mtls.server_credentials(me))
    if bound == 0:
        raise RuntimeError(f"could not bind gRPC port {port}")
    return server, bound, health_servicer


def set_serving(health_servicer: health.HealthServicer, serving: bool) -> None:
    """Report the whole server as SERVING or NOT_SERVING to health checks."""
    status = health_pb2.HealthCheckResponse.SERVING
    if not serving:
        status = health_pb2.HealthCheckResponse.NOT_SERVING
    health_servicer.set("", status)


class ReplicasUnavailable(Unavailable):
    """No replica completed a call. ``maybe_applied``: one timed out, so it may have acted.

    UNAVAILABLE means the call was not processed (gRPC status code semantics); only a
    deadline leaves the outcome unknown.
    """

    def __init__(self, message: str, maybe_applied: bool):
        super().__init__(message)
        self.maybe_applied = maybe_applied


class ServiceClient:
    """Calls one service's replicas, round-robin, over channels made once and reused.

    Channels are created on first use, never at import or before a fork (grpc's
    ``doc/fork_support.md``: channels made before a fork hang in the child).
    """

    def __init__(
        self,
        targets: Sequence[str],
        stub_class: type,
        timeout: float,
        me: mtls.Identity,
        server_role: str,
    ):
        if not targets:
            raise ValueError("a service client needs at least one target")
        self._me, self._server_role = me, server_role
        self._targets = list(targets)
        self._stub_class = stub_class
        self._timeout = timeout
        self._stubs: list[Any] | None = None
        self._channels: list[grpc.Channel] = []
        self._lock = threading.Lock()
        self._next = itertools.count()

    def _all_stubs(self) -> list[Any]:
        with self._lock:
            if self._stubs is None:
                self._channels = [
                    mtls.channel(t, self._me, self._server_role) for t in self._targets
                ]
                self._stubs = [self._stub_class(channel) for channel in self._channels]
            return self._stubs

    def call(self, method: str, request, timeout: float | None = None):
        """Call ``method`` on one replica, moving to the next on UNAVAILABLE or a deadline.

        Only idempotent methods may be called this way: a deadline can fire after the first
        replica applied the call. Domain errors come back as the domain exceptions they were.
        """
        stubs = self._all_stubs()
        start = next(self._next)
        metadata = [(logs.CORRELATION_METADATA_KEY, logs.get_correlation_id() or "")]
        last_error: grpc.RpcError | None = None
        maybe_applied = False
        for attempt in range(len(stubs)):
            stub = stubs[(start + attempt) % len(stubs)]
            try:
                return getattr(stub, method)(
                    request, timeout=timeout or self._timeout, metadata=metadata
                )
            except grpc.RpcError as err:
                if err.code() not in RETRYABLE_CODES:
                    raise from_rpc_error(err) from None
                last_error = err
                maybe_applied = maybe_applied or err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                log.warning("gRPC %s to a replica failed: %s", method, err.code().name)
        raise ReplicasUnavailable(
            f"{self._stub_class.__name__.removesuffix('Stub')} is unavailable: "
            f"{last_error.code().name if last_error else 'no replica'}",
            maybe_applied,
        )

    def close(self) -> None:
        """Close every channel."""
        with self._lock:
            for channel in self._channels:
                channel.close()
            self._channels, self._stubs = [], None
