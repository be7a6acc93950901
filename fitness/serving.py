"""Run one service replica: Flask over gunicorn, with its gRPC server inside each worker.

The gRPC server is started in gunicorn's ``post_worker_init`` hook, i.e. after the fork, because
gRPC servers and channels created before a fork hang (grpc ``doc/fork_support.md``). Several
workers share the gRPC port through SO_REUSEPORT, as they share the HTTP socket.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from gunicorn import glogging
from gunicorn.app.base import BaseApplication

from fitness import mtls, rpc

log = logging.getLogger(__name__)

READINESS_INTERVAL_SECONDS = 5.0
GRPC_GRACE_SECONDS = 5.0


@dataclass
class WorkerPlan:
    """What each worker starts after the fork: start-up steps, gRPC servicers, background loops.

    ``background`` callables take a ``threading.Event`` and return when it is set.
    """

    grpc_register: list[Callable[[Any], None]]
    ready_check: Callable[[], None]
    startup: list[Callable[[], None]] = field(default_factory=list)
    background: list[Callable[[threading.Event], None]] = field(default_factory=list)


def plan_worker(app: Flask, plan: WorkerPlan) -> None:
    """Record what ``serve`` starts in each worker of ``app``."""
    app.extensions["worker_plan"] = plan


class _JsonGunicornLogger(glogging.Logger):
    """Hand gunicorn's messages to the root logger, which writes ECS JSON."""

    def setup(self, cfg):
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            logger.handlers = []
            logger.propagate = True


class _GrpcInWorker:
    """What one worker runs beside HTTP: its gRPC server, health updates, background loops."""

    def __init__(self, app: Flask, port: int, host: str):
        self.plan: WorkerPlan = app.extensions["worker_plan"]
        self.server = self.health = None
        self.port = port
        if self.plan.grpc_register:
            me = mtls.identity(app.config, app.name)
            self.server, self.port, self.health = rpc.create_server(
                port, self.plan.grpc_register, me, host=host
            )
        self.stopped = threading.Event()

    def start(self) -> None:
        for step in self.plan.startup:
            step()
        loops = list(self.plan.background)
        if self.server is not None:
            self.server.start()
            self._check_ready()
            loops.append(self._watch_readiness)
            log.info("gRPC server listening on port %s", self.port)
        for loop in loops:
            name = getattr(loop, "__name__", "background")
            threading.Thread(target=loop, args=(self.stopped,), name=name, daemon=True).start()

    def _check_ready(self) -> None:
        try:
            self.plan.ready_check()
            rpc.set_serving(self.health, True)
        except Exception as exc:  # the store being down makes us NOT_SERVING, not crash
            log.warning("not ready: %s", exc)
            rpc.set_serving(self.health, False)

    def _watch_readiness(self, stopped: threading.Event) -> None:
        while not stopped.wait(READINESS_INTERVAL_SECONDS):
            self._check_ready()

    def stop(self) -> None:
        self.stopped.set()
        if self.server is not None:
            rpc.set_serving(self.health, False)
            self.server.stop(GRPC_GRACE_SECONDS).wait()


class _ServiceApplication(BaseApplication):
    def __init__(
        self,
        app_factory: Callable[[], Flask],
        grpc_address: tuple[str, int],
        options: dict[str, Any],
    ):
        self._app_factory = app_factory
        self._grpc_host, self._grpc_port = grpc_address
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)
        self.cfg.set("logger_class", _JsonGunicornLogger)
        self.cfg.set("post_worker_init", self._post_worker_init)
        self.cfg.set("worker_exit", self._worker_exit)

    def load(self) -> Flask:
        return self._app_factory()

    def _post_worker_init(self, worker) -> None:
        if self.cfg.worker_class_str == "gevent":
            # gRPC's C core must cooperate with gevent's hub, or its calls block every greenlet.
            from grpc.experimental import gevent as grpc_gevent

            grpc_gevent.init_gevent()
        worker.grpc_server = _GrpcInWorker(worker.wsgi, self._grpc_port, self._grpc_host)
        worker.grpc_server.start()

    @staticmethod
    def _worker_exit(_arbiter, worker) -> None:
        grpc_server = getattr(worker, "grpc_server", None)
        if grpc_server is not None:
            grpc_server.stop()


def serve(
    app_factory: Callable[[], Flask],
    http_port: int,
    grpc_port: int,
    workers: int = 1,
    threads: int = 16,
    host: str = "127.0.0.1",
    worker_class: str = "gthread",
    worker_connections: int = 1000,
) -> None:
    """Serve ``app_factory``'s app over HTTP on ``http_port`` and its gRPC API on ``grpc_port``.

    ``gthread`` gives each request a thread; ``gevent`` a greenlet, which lets one worker hold
    thousands of open WebSockets (under gthread, flask-sock holds two threads per socket).
    """
    options = {
        "bind": f"{host}:{http_port}",
        "workers": workers,
        "worker_class": worker_class,
        "worker_connections": worker_connections,
        "threads": threads,
        "timeout": 60,
        "graceful_timeout": 10,
        "keepalive": 75,  # longer than the gateway keeps idle upstream connections
        "control_socket_disable": True,
        "accesslog": None,
    }
    if worker_class == "gevent":
        _lighten_greenlets()
    _ServiceApplication(app_factory, (host, grpc_port), options).run()


def _lighten_greenlets() -> None:
    """Let greenlets skip recording who spawned them, unless the environment asks for it.

    gevent keeps each greenlet's spawning stack and tree for debugging by default, and every
    full garbage collection walks them: with two greenlets per WebSocket that was 24 frame
    objects per socket (a gateway worker with 2,500 sockets held ~6 % fewer objects without
    them). ``GEVENT_TRACK_GREENLET_TREE=1`` brings it back.
    """
    os.environ.setdefault("GEVENT_TRACK_GREENLET_TREE", "0")
