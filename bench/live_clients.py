"""The client side of ``live_fanout``: processes that each hold many sockets (aiohttp, uvloop).

The coordinator drives them one phase at a time over a pipe (connect, join, broadcast, stop), so
that it can read the gateways' memory and CPU between and during the phases. aiohttp on uvloop
spent about half the CPU per received message of ``websockets`` on asyncio here (14 vs 27 us
with one message per socket per burst), and on 2 cores the clients share the CPUs with the
gateways they measure.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import time
from collections import Counter

import aiohttp
import uvloop

PHASE_TIMEOUT_SECONDS = 900.0  # a client process that has not answered by then is hung
OPEN_TIMEOUT_SECONDS = 60.0
JOIN_TIMEOUT_SECONDS = 120.0
LAG_TICK_SECONDS = 0.005
SEND_FAILURES = (aiohttp.ClientError, ConnectionError)


class ClientWorker:
    """One client process: its sockets, their reader tasks and what they measured."""

    def __init__(self, deflate: bool):
        self.deflate = deflate
        self.http: aiohttp.ClientSession | None = None
        self.sockets: list[aiohttp.ClientWebSocketResponse | None] = []
        self.readers: list[asyncio.Task] = []
        self.joined: dict[int, asyncio.Future] = {}
        self.latencies: list[float] = []
        self.errors: Counter = Counter()
        self.phase = "connect"  # errors are counted by the phase they happened in

    async def connect(self, plans: list[tuple[str, str]], concurrency: int) -> dict:
        """Open one socket per (url, token), at most ``concurrency`` at once; return times."""
        gate = asyncio.Semaphore(concurrency)
        timeout = aiohttp.ClientTimeout(total=None, connect=OPEN_TIMEOUT_SECONDS)
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout)

        async def one(url: str, token: str):
            async with gate:
                started = time.monotonic()
                ws = await self.http.ws_connect(
                    url,
                    headers={"Authorization": f"Bearer {token}"},
                    compress=15 if self.deflate else 0,
                    timeout=aiohttp.ClientWSTimeout(ws_close=2),
                )  # the server pings every 20 s; aiohttp answers on its own (autoping)
                welcome = await asyncio.wait_for(ws.receive_json(), OPEN_TIMEOUT_SECONDS)
                if welcome["type"] != "welcome":
                    raise RuntimeError(f"the first message was not a welcome: {welcome}")
                return ws, time.monotonic() - started

        opened = await asyncio.gather(*(one(u, t) for u, t in plans), return_exceptions=True)
        failed = Counter(f"connect: {o!r}"[:60] for o in opened if isinstance(o, BaseException))
        self.sockets = [None if isinstance(o, BaseException) else o[0] for o in opened]
        self.readers = [
            asyncio.create_task(self._read(n, ws)) for n, ws in enumerate(self.sockets) if ws
        ]
        return {"times": [o[1] for o in opened if isinstance(o, tuple)], "failed": failed}

    async def join(self, session_ids: list[str], concurrency: int) -> dict:
        """Join socket n to session_ids[n]; return the times until each got ``joined``."""
        self.phase = "join"
        gate = asyncio.Semaphore(concurrency)
        times: list[float] = []
        failed: Counter = Counter()

        async def one(n: int, session_id: str) -> None:
            async with gate:
                self.joined[n] = asyncio.get_running_loop().create_future()
                started = time.monotonic()
                await self.sockets[n].send_json({"type": "join_session", "session_id": session_id})
                try:  # the reader sets None once joined, else what went wrong (counted there)
                    problem = await asyncio.wait_for(self.joined[n], JOIN_TIMEOUT_SECONDS)
                except TimeoutError:
                    failed["join: no answer in time"] += 1
                    return
                if problem is None:
                    times.append(time.monotonic() - started)

        await asyncio.gather(*(one(n, s) for n, s in enumerate(session_ids) if self.sockets[n]))
        return {"times": times, "failed": failed}

    async def broadcast(self, sends: list[tuple[float, int]], until: float) -> dict:
        """Send a timestamped chat message at each (time, socket); collect until ``until``."""
        self.latencies, self.phase = [], "broadcast"
        send_lags: list[float] = []
        loop_lags: list[float] = []
        ticker = asyncio.create_task(_tick(loop_lags))
        message = json.dumps({"type": "chat_message", "message": "%.6f"})
        for at, n in sends:
            if self.sockets[n] is None:
                continue
            await asyncio.sleep(at - time.monotonic())
            sent = time.monotonic()
            send_lags.append(sent - at)
            try:
                await self.sockets[n].send_str(message % sent)
            except SEND_FAILURES:
                self.errors[f"{self.phase}: send on a closed socket"] += 1
        await asyncio.sleep(until - time.monotonic())
        ticker.cancel()
        return {
            "latencies": self.latencies,
            "send_lags": send_lags,
            "loop_lags": loop_lags,
            "errors": dict(self.errors),
        }

    async def close(self) -> None:
        """Drop every socket at once (the gateways are restarted before the next scenario)."""
        for reader in self.readers:
            reader.cancel()
        if self.http is not None:
            await self.http.close()

    async def _read(self, n: int, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:  # ends when the socket closes
            received = time.monotonic()
            if message.type != aiohttp.WSMsgType.TEXT:
                self.errors[f"{self.phase}: {message.type.name} {message.data}"[:80]] += 1
                continue
            event = json.loads(message.data)
            kind = event["type"]
            if kind == "chat_message":
                self.latencies.append(received - float(event["message"]))
            elif kind == "joined":
                self._joined(n, None)
            elif kind == "error":
                self.errors[f"{self.phase}: {event['code']}"] += 1
                self._joined(n, f"join answered {event['code']}")
        self.errors[f"{self.phase}: socket closed, code {ws.close_code}"] += 1
        self._joined(n, "closed while joining")

    def _joined(self, n: int, problem: str | None) -> None:
        waiting = self.joined.pop(n, None)
        if waiting is not None and not waiting.done():
            waiting.set_result(problem)


async def _tick(lags: list[float]) -> None:
    """Record how late the event loop wakes a sleeper: how busy this client process is."""
    while True:
        due = time.monotonic() + LAG_TICK_SECONDS
        await asyncio.sleep(LAG_TICK_SECONDS)
        lags.append(time.monotonic() - due)


def client_process(pipe, deflate: bool) -> None:
    """Serve the coordinator's commands over ``pipe`` until told to stop."""
    os.setpgid(0, 0)  # a process group of its own, so that its CPU time can be told apart
    uvloop.run(_serve_commands(pipe, ClientWorker(deflate)))


async def _serve_commands(pipe, worker: ClientWorker) -> None:
    loop = asyncio.get_running_loop()
    while True:
        command, args = await loop.run_in_executor(None, pipe.recv)
        if command == "stop":
            await worker.close()
            return
        try:
            pipe.send(await getattr(worker, command)(*args))
        except Exception as exc:  # handed to the coordinator, which raises it there
            pipe.send(RuntimeError(f"client {os.getpid()} {command}: {exc!r}"))


class Clients:
    """The client processes, driven one phase at a time."""

    def __init__(self, count: int, deflate: bool):
        context = multiprocessing.get_context("fork")  # the coordinator runs no threads
        self.pipes, self.processes = [], []
        for _ in range(count):
            parent, child = context.Pipe()
            process = context.Process(target=client_process, args=(child, deflate))
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)

    def send(self, command: str, args_per_client: list[tuple]) -> None:
        for pipe, args in zip(self.pipes, args_per_client, strict=True):
            pipe.send((command, args))

    def collect(self) -> list:
        results = []
        for pipe in self.pipes:
            if not pipe.poll(PHASE_TIMEOUT_SECONDS):
                raise TimeoutError("a client process did not answer")
            result = pipe.recv()
            if isinstance(result, Exception):
                raise result
            results.append(result)
        return results

    def call(self, command: str, args_per_client: list[tuple]) -> list:
        self.send(command, args_per_client)
        return self.collect()

    def stop(self) -> None:
        for pipe, process in zip(self.pipes, self.processes, strict=True):
            if process.is_alive():
                pipe.send(("stop", ()))
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
