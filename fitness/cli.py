"""The command line every service shares: ``python -m <service> serve``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from flask import Flask

from fitness import auth, logs, mtls, serving
from fitness.config import SettingFileMissing, load_settings


def service_parser(
    name: str, defaults: dict[str, Any]
) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """Return a parser with the ``serve`` command and its sub-commands, to add more to."""
    try:
        settings = load_settings(defaults)
    except SettingFileMissing as exc:
        raise SystemExit(f"{name}: refusing to start: {exc}") from None
    parser = argparse.ArgumentParser(prog=f"python -m {name}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve HTTP and gRPC (one replica)")
    serve.add_argument("--host", default=settings["HOST"], help="address for HTTP and gRPC")
    serve.set_defaults(prog_name=name)
    serve.add_argument("--http-port", type=int, default=settings["HTTP_PORT"])
    serve.add_argument("--grpc-port", type=int, default=settings["GRPC_PORT"])
    serve.add_argument("--workers", type=int, default=settings["WORKERS"])
    serve.add_argument("--threads", type=int, default=settings["THREADS"])
    serve.add_argument(
        "--worker-class",
        choices=["gthread", "gevent"],
        default=settings.get("WORKER_CLASS", "gthread"),
        help="gevent for many long-lived connections (WebSockets)",
    )
    serve.add_argument(
        "--worker-connections", type=int, default=settings.get("WORKER_CONNECTIONS", 1000)
    )
    return parser, commands


def run_serve(
    args: argparse.Namespace,
    create_app: Callable[[], Flask],
    preflight: Callable[[], str | None] | None = None,
) -> None:
    """Serve one replica as ``args`` say; ``preflight()`` returns why it must not (or None)."""
    settings = load_settings({})
    # The gunicorn master logs too (worker boots and exits); workers reconfigure in create_app.
    logs.configure_logging(f"{args.prog_name}", settings["LOG_LEVEL"], settings["LOG_FILE"])
    try:
        auth.check_secret(settings)
    except auth.InsecureSecret as exc:
        # Refuse here, once and plainly, rather than as a worker boot failure in gunicorn.
        raise SystemExit(f"{args.prog_name}: refusing to start: {exc}") from None
    try:
        mtls.identity(settings, args.prog_name)  # development: made here if missing
    except mtls.MissingMaterial as exc:
        raise SystemExit(f"{args.prog_name}: refusing to start: {exc}") from None
    if preflight and (reason := preflight()):
        raise SystemExit(f"{args.prog_name}: refusing to start: {reason}")
    serving.serve(
        create_app,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=args.workers,
        threads=args.threads,
        host=args.host,
        worker_class=args.worker_class,
        worker_connections=args.worker_connections,
    )
