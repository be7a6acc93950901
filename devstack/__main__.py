"""``python -m devstack up``: run the whole system locally until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from pathlib import Path

from devstack.docstore import DocstoreUnavailable
from devstack.stack import DOCSTORE_PG, LocalStack, Replica
from fitness.config import load_settings, redacted


def _address(stack: LocalStack, replica: Replica) -> str:
    if replica.service == DOCSTORE_PG:
        return f"unix socket {stack.postgres(replica).socket_dir}"
    return redacted(replica.url) if replica.http_port else "-"


def _print_summary(stack: LocalStack) -> None:
    print("\nFitness Goal Tracker is up. Data and logs:", stack.data_dir)
    print(f"{'process':<22} {'address':<28} {'gRPC':<18} log")
    for replica in stack.replicas:
        log_path = stack.log_path(replica.name)
        grpc_target = replica.grpc_target if replica.grpc_port else "-"
        print(f"{replica.name:<22} {_address(stack, replica):<28} {grpc_target:<18} {log_path}")
    print(f"\nActivity store (FerretDB, MongoDB protocol): {redacted(stack.mongo_url)}")
    redis_secrets = stack.data_dir / "secrets" / "redis"
    print(f"Redis: one ACL user per role, each password in a file under {redis_secrets}")
    gateways = " or ".join(r.url for r in stack.replicas_of("gateway"))
    print(f"\nClients talk to a gateway only: {gateways} (API docs at /docs)")
    print("Reporting warehouse: .venv/bin/python -m etl status (or: -m etl psql)")
    print("\nPress Ctrl-C to stop everything.", flush=True)


def _watch(stack: LocalStack) -> None:
    """Restart a replica that died, like a process supervisor would."""
    while True:
        time.sleep(1)
        for replica in stack.replicas:
            if stack.processes[replica.name].poll() is not None:
                print(f"{replica.name} exited; restarting it", flush=True)
                stack.start_replica(replica)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    parser.add_argument("command", choices=["up", "tools"], help="tools: build FerretDB only")
    command = parser.parse_args().command
    logging.basicConfig(format="%(message)s", level=logging.WARNING)
    stack = LocalStack(Path(load_settings({})["DATA_DIR"]))
    try:
        stack.check_prerequisites()
    except DocstoreUnavailable as exc:
        # One plain line: what is missing and what to do (no traceback, no silent fallback).
        raise SystemExit(f"make {command}: {exc}") from None
    if command == "tools":
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # A shell starts background jobs with SIGINT ignored; Ctrl-C must still stop the stack.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        stack.start()
        _print_summary(stack)
        _watch(stack)
    except KeyboardInterrupt:
        pass
    finally:
        print("\nStopping…", flush=True)
        stack.stop()
        print("Stopped.", flush=True)


if __name__ == "__main__":
    main()
