"""The client side of ``live_fanout``: processes that each hold many sockets (uvloop).

The coordinator drives them one phase at a time over a pipe (connect, join, broadcast, stop), so
that it can read the gateways' memory and CPU between and during the phases. On 2 cores the
clients share the CPUs with the gateways they measure, so their cost per message shows in the
figures: aiohttp on uvloop spent about half the CPU per received message of ``websockets`` on
asyncio here (14 vs 27 us with one message per socket per burst), and picows (frames parsed in
Cython, one callback per frame) less again. ``--client`` chooses; both speak to the gateway the
same way (token header, JSON text messages, pongs answered by the library).
"""

from __future__ import annotations

import asyncio
import gc
import json
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import aiohttp
import picows
import uvloop

PHASE_TIMEOUT_SECONDS = 900.0  # a client process that has not answered by then is hung
OPEN_TIMEOUT_SECONDS = 60.0
JOIN_TIMEOUT_SECONDS = 120.0
LAG_TICK_SECONDS = 0.005
SEND_FAILURES = (aiohttp.ClientError, ConnectionError)


class ClientWorker:
    """One client process: its sockets, and what they measured."""

    def __init__(self, kind: str, deflate: bool):
        self.open_socket = {"aiohttp": self._open_aiohttp, "picows": self._open_picows}[kind]
        self.deflate = deflate
        self.http: aiohttp.ClientSession | None = None
        self.sockets: list[Socket | None] = []
        self.welcomed: dict[int, asyncio.Future] = {}
        self.joined: dict[int, asyncio.Future] = {}
        self.latencies: list[float] = []
        self.burst_max: dict[str, float] = {}  # message -> its slowest delivery here
        self.errors: Counter = Counter()
        self.phase = "connect"  # errors are counted by the phase they happened in

    async def connect(self, plans: list[tuple[str, str]], concurrency: int) -> dict:
        """Open one socket per (url, token), at most ``concurrency`` at once; return times."""
        gate = asyncio.Semaphore(concurrency)
        timeout = aiohttp.ClientTimeout(total=None, connect=OPEN_TIMEOUT_SECONDS)
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout)

        async def one(n: int, url: str, token: str):
            async with gate:
                started = time.monotonic()
                welcomed = self.welcomed[n] = asyncio.get_running_loop().create_future()
                socket = await self.open_socket(n, url, token)  # may be welcomed meanwhile
                await asyncio.wait_for(welcomed, OPEN_TIMEOUT_SECONDS)
                return socket, time.monotonic() - started

        plans = list(enumerate(plans))
        opened = await asyncio.gather(*(one(n, *p) for n, p in plans), return_exceptions=True)
        failed = Counter(f"connect: {o!r}"[:60] for o in opened if isinstance(o, BaseException))
        self.sockets = [None if isinstance(o, BaseException) else o[0] for o in opened]
        return {"times": [o[1] for o in opened if isinstance(o, tuple)], "failed": failed}

    async def _open_aiohttp(self, n: int, url: str, token: str) -> Socket:
        ws = await self.http.ws_connect(
            url,
            headers={"Authorization": f"Bearer {token}"},
            compress=15 if self.deflate else 0,
            timeout=aiohttp.ClientWSTimeout(ws_close=2),
        )  # the server pings every 20 s; aiohttp answers on its own (autoping)
        reader = asyncio.create_task(self._read_aiohttp(n, ws))
        return Socket(send=ws.send_str, stop=reader.cancel)

    async def _read_aiohttp(self, n: int, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:  # ends when the socket closes
            if message.type == aiohttp.WSMsgType.TEXT:
                self.on_text(n, message.data, time.monotonic())
            else:
                self.errors[f"{self.phase}: {message.type.name} {message.data}"[:80]] += 1
        self.on_closed(n, ws.close_code)

    async def _open_picows(self, n: int, url: str, token: str) -> Socket:
        if self.deflate:
            raise ValueError("picows does not offer permessage-deflate; use --client aiohttp")
        worker = self

        class Listener(picows.WSListener):
            def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
                received = time.monotonic()
                if frame.msg_type == picows.WSMsgType.TEXT and frame.fin:
                    worker.on_text(n, frame.get_payload_as_utf8_text(), received)
                elif frame.msg_type == picows.WSMsgType.CLOSE:
                    worker.on_closed(n, frame.get_close_code())
                    transport.disconnect()
                elif frame.msg_type != picows.WSMsgType.PONG:  # pings are answered (auto pong)
                    worker.errors[f"{worker.phase}: frame {frame.msg_type!r}"[:80]] += 1

        transport, _ = await picows.ws_connect(
            Listener, url, extra_headers={"Authorization": f"Bearer {token}"}
        )
        return Socket(
            send=lambda text: transport.send(picows.WSMsgType.TEXT, text.encode()),
            stop=transport.disconnect,
        )

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
                await self.sockets[n].send_text(
                    json.dumps({"type": "join_session", "session_id": session_id})
                )
                try:  # on_text sets None once joined, else what went wrong (counted there)
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
        self.latencies, self.burst_max, self.phase = [], {}, "broadcast"
        send_lags: list[float] = []
        loop_lags: list[float] = []
        pauses = _freeze_heap()
        ticker = asyncio.create_task(_tick(loop_lags))
        # "<send time> <client pid>/<socket>": the time to measure, the rest to tell bursts apart
        message = json.dumps({"type": "chat_message", "message": "%.6f %s"})
        for at, n in sends:
            if self.sockets[n] is None:
                continue
            await asyncio.sleep(at - time.monotonic())
            sent = time.monotonic()
            send_lags.append(sent - at)
            try:
                await self.sockets[n].send_text(message % (sent, f"{os.getpid()}/{n}"))
            except SEND_FAILURES:
                self.errors[f"{self.phase}: send on a closed socket"] += 1
        await asyncio.sleep(until - time.monotonic())
        ticker.cancel()
        gc.callbacks.remove(pauses.record)
        return {
            "gc_pauses": pauses.seconds,
            "latencies": self.latencies,
            "burst_max": self.burst_max,
            "send_lags": send_lags,
            "loop_lags": loop_lags,
            "errors": dict(self.errors),
        }

    async def close(self) -> None:
        """Drop every socket at once (the gateways are restarted before the next scenario)."""
        for socket in self.sockets:
            if socket is not None:
                socket.stop()
        if self.http is not None:
            await self.http.close()

    def on_text(self, n: int, text: str, received: float) -> None:
        """Record one message from the gateway (either client kind calls this)."""
        event = json.loads(text)
        kind = event["type"]
        if kind == "chat_message":
            burst = event["message"]
            latency = received - float(burst.split()[0])
            self.latencies.append(latency)
            self.burst_max[burst] = max(latency, self.burst_max.get(burst, 0.0))
        elif kind == "welcome":
            _settle(self.welcomed.pop(n, None), None)
        elif kind == "joined":
            _settle(self.joined.pop(n, None), None)
        elif kind == "error":
            self.errors[f"{self.phase}: {event['code']}"] += 1
            _settle(self.joined.pop(n, None), f"join answered {event['code']}")

    def on_closed(self, n: int, code: int | None) -> None:
        self.errors[f"{self.phase}: socket closed, code {code}"] += 1
        _settle(self.joined.pop(n, None), "closed while joining")
        waiting = self.welcomed.pop(n, None)
        if waiting is not None and not waiting.done():
            waiting.set_exception(ConnectionError(f"closed before the welcome, code {code}"))


class Socket:
    """What a phase needs of one client socket, whichever library holds it."""

    __slots__ = ("_send", "stop")

    def __init__(self, send: Callable[[str], Any], stop: Callable[[], Any]):
        self._send = send
        self.stop = stop

    async def send_text(self, text: str) -> None:
        sent = self._send(text)
        if asyncio.iscoroutine(sent):
            await sent


def _settle(waiting: asyncio.Future | None, problem: str | None) -> None:
    if waiting is not None and not waiting.done():
        waiting.set_result(problem)


class GcPauses:
    """The time each garbage collection took (``gc.callbacks``)."""

    def __init__(self):
        self.seconds: list[float] = []
        self._started = 0.0

    def record(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds.append(time.perf_counter() - self._started)


def _freeze_heap() -> GcPauses:
    """Keep the sockets' objects out of later collections, and time those collections.

    A client process holds thousands of sockets' objects; a full collection walks them all and
    stalls every socket of the process for ~100 ms, which showed as the fan-out's p99 (p99 207-240
    ms with collections, 108 with them off, same gateways). The users this process stands for
    each have a small heap of their own, so the stall is the bench's, not the system's: the
    objects made so far move to the permanent generation (``gc.freeze``), and the collections that
    still happen are timed and printed.
    """
    gc.collect()
    gc.freeze()
    pauses = GcPauses()
    gc.callbacks.append(pauses.record)
    return pauses


async def _tick(lags: list[float]) -> None:
    """Record how late the event loop wakes a sleeper: how busy this client process is."""
    while True:
        due = time.monotonic() + LAG_TICK_SECONDS
        await asyncio.sleep(LAG_TICK_SECONDS)
        lags.append(time.monotonic() - due)


def client_process(pipe, kind: str, deflate: bool) -> None:
    """Serve the coordinator's commands over ``pipe`` until told to stop."""
    os.setpgid(0, 0)  # a process group of its own, so that its CPU time can be told apart
    uvloop.run(_serve_commands(pipe, ClientWorker(kind, deflate)))


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

    def __init__(self, count: int, kind: str, deflate: bool):
        context = multiprocessing.get_context("fork")  # the coordinator runs no threads
        self.pipes, self.processes = [], []
        for _ in range(count):
            parent, child = context.Pipe()
            process = context.Process(target=client_process, args=(child, kind, deflate))
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
