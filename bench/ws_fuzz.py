"""Fuzz the live-session WebSocket (/ws) while a healthy session chats (the long run).

Starts a private stack (one replica of each service, the state Redis, two gateways), opens a
healthy session (creator and a member on gateway 1, a member on gateway 2) that chats 10
messages/s, and meanwhile, on gateway 1, as another user:

1. every malformed-frame case of ``tests/support/fuzz_ws.py`` ``--frame-rounds`` times;
2. ``--messages`` random messages from hypothesis strategies, each followed by a ping;
3. floods: ``--floods`` bursts of 2,000 chat messages, a burst of ``--pings`` ping frames,
   and ``--connections`` sockets opened and dropped without a close frame;
4. one message of 2,000 nested JSON arrays (answered with malformed_json).

Then checks the healthy members saw every message once, in order, that both gateways answer
``/status`` with the same worker pids as before, and counts error-level gateway log events.
Saves the rows as the ``websocket`` suite.

    .venv/bin/python -m bench.ws_fuzz                     # ~5 min
    .venv/bin/python -m bench.ws_fuzz --messages 200 --frame-rounds 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import requests

from bench.harness.results import Row, Suite, command_line, save
from bench.harness.seeding import new_account
from tests.support import fuzz_ws, fuzz_ws_messages, fuzz_ws_session


def frames(url: str, rounds: int) -> fuzz_ws.Tally:
    tally = fuzz_ws.Tally()
    for _ in range(rounds):
        for case in fuzz_ws.FRAME_CASES:
            answer = fuzz_ws.send_frame_case(url, case)
            tally.sent += 1
            if not fuzz_ws.judge_frame(case, answer):
                tally.failed_other += 1
                tally.problems.append(f"{case.name}: {answer.describe()}")
            elif case.expect == "reply":
                tally.succeeded += 1
            else:
                tally.failed_clear += 1
    return tally


def deep_nesting(url: str) -> fuzz_ws.Tally:
    ws = fuzz_ws.connect(url)
    ws.send("[" * 2000 + "]" * 2000)
    answer = fuzz_ws.read_answer(ws, 10, lambda event: True)
    ws.close()
    if [e.get("code") for e in answer.events] == ["malformed_json"]:
        return fuzz_ws.Tally(sent=1, failed_clear=1)
    return fuzz_ws.Tally(sent=1, failed_other=1, problems=[f"deep nesting: {answer.describe()}"])


def row(tried: str, amount: str, tally: fuzz_ws.Tally, notes: str = "") -> Row:
    return Row(
        "websocket",
        tried,
        amount,
        tally.sent,
        tally.succeeded,
        tally.failed_clear,
        tally.failed_other,
        0,
        notes,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frame-rounds", type=int, default=10)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--floods", type=int, default=5)
    parser.add_argument("--pings", type=int, default=20000)
    parser.add_argument("--connections", type=int, default=500)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="ws-fuzz-") as tmp,
        fuzz_ws.live_fuzz_stack(Path(tmp)) as stack,
    ):
        token = new_account(stack.replicas_of("gateway")[0].url).token
        url = fuzz_ws.ws_url(stack, 0, token)
        healthy = fuzz_ws_session.HealthySession(stack)
        workers = fuzz_ws.gateway_workers(stack)
        healthy.start()
        frame_tally = frames(url, args.frame_rounds)
        message_tally = fuzz_ws_messages.fuzz_messages(url, args.messages)
        flood = fuzz_ws.Tally()
        for _ in range(args.floods):
            flood.add(fuzz_ws.flood_messages(url, 2000))
        pings = fuzz_ws.flood_pings(url, args.pings)
        connections = fuzz_ws.flood_connections(url, args.connections)
        nested = deep_nesting(url)
        problems = healthy.stop()
        up = [
            requests.get(f"{g.url}/status", timeout=10).status_code
            for g in stack.replicas_of("gateway")
        ]
        same_workers = fuzz_ws.gateway_workers(stack) == workers
        errors = fuzz_ws.gateway_errors(stack)
    expected = healthy.sent * len(healthy.members)
    received = healthy.received()
    health = (
        f"gateways /status {up}, same worker pids: {same_workers}, error log events: {len(errors)}"
    )
    print(health)
    for tally in (frame_tally, message_tally, flood, pings, connections, nested):
        for problem in tally.problems[:20]:
            print(f"PROBLEM: {problem}")
    for problem in problems:
        print(f"HEALTHY SESSION PROBLEM: {problem}")
    for error in errors[:10]:
        print(f"GATEWAY ERROR: {error}")
    kinds = len(fuzz_ws.FRAME_CASES)
    rows = [
        row(
            "malformed frames (invalid UTF-8, binary, stray continuation, reserved opcodes and "
            "bits, unmasked, oversized, bad close frames, random bytes)",
            f"{kinds} kinds x {args.frame_rounds}",
            frame_tally,
            "clear = error event or close 1002/1007/1008/1009 (or a reset after a refused "
            "oversized frame)",
        ),
        row(
            "random messages from hypothesis strategies (wrong types, missing/extra fields, "
            "huge strings, NaN, nesting)",
            f"{args.messages} messages",
            message_tally,
        ),
        row(
            "message floods without reading",
            f"{args.floods} x 2,000 chat messages",
            flood,
            "clear = rate_limited error events",
        ),
        row("ping-frame flood", f"{args.pings} pings in one burst", pings),
        row("connection flood", f"{args.connections} sockets dropped without a close", connections),
        row("2,000 nested JSON arrays", "1 message", nested, "clear = malformed_json event"),
        Row(
            "websocket",
            "healthy session on both gateways during all of the above",
            f"{healthy.sent} chat messages x {len(healthy.members)} members",
            expected,
            received,
            0,
            0,
            expected - received if problems else 0,
            health,
        ),
    ]
    save(Suite("websocket", command_line("bench.ws_fuzz", sys.argv[1:]), rows))


if __name__ == "__main__":
    main()
