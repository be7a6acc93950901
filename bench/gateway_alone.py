"""The gateway's own CPU per proxied request, with nothing else of ours on the machine.

``bench.gateway_overhead`` measures the gateway in front of real services, which share the two
cores with it and with the clients: there the gateway's CPU per request moves by a third from
run to run. This bench isolates the gateway: both services' replicas are one nginx worker that
answers every path with a fixed statistics body (and ``/status/ready`` with 200), so the only
Python process under load is the gateway (one gevent worker, as deployed; INFO logging, so one
access record per request). The client is ``bench.gateway_overhead``'s asyncio loop over raw
keep-alive sockets.

Two runs: a closed loop of ``--connections`` clients (saturation), then an open loop at
``--rate`` requests/s. Each prints requests/s, p50/p99 and the gateway's CPU per request (user +
system of its process group; issue 16's target is at most 0.5 ms). Compare code side by side
in one sitting (``git worktree`` + ``PYTHONPATH``):

    .venv/bin/python -m bench.gateway_alone
    cd /tmp/old && PYTHONPATH=/tmp/old /work/main/.venv/bin/python -m bench.gateway_alone
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

import requests

from bench.gateway_overhead import (
    NGINX_USER_LINE,
    Request,
    Result,
    check_mix,
    closed_loop,
    find_nginx,
    open_loop,
    run_nginx,
    start_process,
    stop_processes,
    wait_until,
)
from devstack.stack import free_ports
from fitness.auth import issue_token

SECRET = "bench-gateway-alone-" + "x" * 32
USER_ID = "bench-user"
BODY = '{"total_workouts": 12, "total_minutes": 345.5, "total_calories": 2345.2}'
NGINX_CONF = """\
{user_line}
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        keepalive_requests 1000000;
        location / {{ default_type application/json; return 200 '{body}'; }}
    }}
}}
"""


def start_replica(binary: str, port: int, work_dir: Path):
    """Start nginx answering every path with ``BODY``: the stand-in for every replica."""
    conf = NGINX_CONF.format(user_line=NGINX_USER_LINE, dir=work_dir, port=port, body=BODY)
    return run_nginx(binary, conf, port, work_dir)


def start_gateway(port: int, replica_port: int, work_dir: Path):
    """Start one gateway (its defaults: one gevent worker) in front of the stand-in replica."""
    replica = f"http://127.0.0.1:{replica_port}"
    os.environ.update(
        FITNESS_JWT_SECRET=SECRET,
        FITNESS_DATA_DIR=str(work_dir / "gateway"),
        FITNESS_USER_HTTP_REPLICAS=replica,
        FITNESS_ACTIVITY_HTTP_REPLICAS=replica,
        FITNESS_LOG_LEVEL="INFO",
    )
    command = [sys.executable, "-m", "gateway", "serve", "--http-port", str(port)]
    process = start_process("gateway", command, work_dir)
    url = f"http://127.0.0.1:{port}/status/ready"
    wait_until(lambda: requests.get(url, timeout=1).ok, process, "gateway")
    return process


def print_result(label: str, result: Result) -> None:
    count = len(result.latencies)
    cpu_ms = result.cpu["gateway"] / count * 1000 if count else float("nan")
    print(
        f"{label:<28} {result.rate:8.1f} req/s  p50 {result.ms(0.5):6.2f} ms  "
        f"p99 {result.ms(0.99):6.2f} ms  errors {result.errors}  "
        f"gateway CPU {cpu_ms:.3f} ms/request",
        flush=True,
    )


async def measure(args, mix: list[Request], groups: dict[str, int]) -> None:
    await check_mix(mix)
    saturation = await closed_loop(mix, args.connections, args.seconds, args.warmup, groups)
    print_result(f"closed loop, {args.connections} connections", saturation)
    fixed = await open_loop(mix, args.rate, args.connections, args.seconds, args.warmup, groups)
    print_result(f"open loop, {args.rate:g} req/s", fixed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="measuring time per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured start of a run")
    parser.add_argument("--connections", type=int, default=8, help="concurrent clients (8)")
    parser.add_argument("--rate", type=float, default=400.0, help="open loop req/s (400)")
    args = parser.parse_args()
    nginx = find_nginx()
    processes: dict = {}
    with tempfile.TemporaryDirectory(prefix="fitness-gateway-alone-") as tmp:
        work_dir = Path(tmp)
        gateway_port, replica_port = free_ports(2)
        try:
            processes["nginx"] = start_replica(nginx, replica_port, work_dir)
            processes["gateway"] = start_gateway(gateway_port, replica_port, work_dir)
            token = issue_token(USER_ID, SECRET, 3600)
            head = f"GET /users/{USER_ID}/statistics HTTP/1.1\r\nHost: 127.0.0.1:{gateway_port}"
            raw = f"{head}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
            mix = [Request(("127.0.0.1", gateway_port), raw)]
            print(f"gateway (one gevent worker, INFO logging) before a static nginx; {args}")
            asyncio.run(measure(args, mix, {"gateway": processes["gateway"].pid}))
        finally:
            stop_processes(processes)


if __name__ == "__main__":
    main()
