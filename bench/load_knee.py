"""Find the knee: a mixed load profile at fixed arrival rates, stepped up until it breaks.

Starts a private stack (2 replicas of each service, the state Redis, cache Redis nodes and 2
gateways; embedded stores in a temporary directory, free ports), seeds accounts, then for each
rate in ``--rates`` runs locust (as a library, in this process) with as many users of each kind
as the rate needs: every user issues one operation per ``--pacing`` seconds on a fixed grid
(open loop, see ``bench.load.locustfile``), so users x requests per operation / pacing is
the offered rate whatever the latency. Each step: ``--warmup`` seconds, then ``--seconds``
measured (requests *started* in that window count, even if they finish after it).

Per step it prints offered vs achieved rate, per endpoint requests, p50, p99 and errors, and
the CPU of every process (100 % = one core). A step passes when p99 over all requests is under
``--p99-ms``, errors are under ``--max-error-rate`` and the achieved rate is within 5 % of the
planned one; the knee is the highest passing rate, reported with the next (failing) step. At the
end every acknowledged write (registrations, ended workouts, goal sagas answered 201/202; or
``--verify-sample`` of each kind) is read back from the services; ``lost`` must be 0.

    .venv/bin/python -m bench.load_knee                      # the default run, ~9 minutes
    .venv/bin/python -m bench.load_knee --rates 10,20 --seconds 8 --warmup 4   # quick check
"""

from __future__ import annotations

# ruff: noqa: I001  (locust first: its gevent monkey-patching must precede other imports)
import locust  # noqa: F401

import argparse
import logging
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import gevent
from locust.env import Environment

from bench.harness.results import Row, Suite, command_line, save
from bench.harness.seeding import jwt_secret, new_accounts
from bench.harness.stats import percentile_ms
from bench.load.locustfile import RECORD
from bench.load.plan import (
    DEFAULT_MIX,
    PROFILE,
    SHARED_ACCOUNTS,
    CpuMeter,
    composition,
    make_stack,
    parse_mix,
    planned_rate,
    users_for,
    verify,
)

SPAWN_SECONDS = 3.0


@dataclass
class Step:
    """What one step offered, what came back, and where the CPU went."""

    rate: float
    planned: float
    users: dict[str, int]
    offered: float = 0.0
    achieved: float = 0.0
    sent: int = 0
    ok: int = 0
    clear: int = 0
    other: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    endpoints: list[tuple] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    generator_saturated: bool = False
    passed: bool = False

    @property
    def error_rate(self) -> float:
        return (self.clear + self.other) / self.sent if self.sent else 0.0


def run_step(index: int, rate: float, args, mix: dict[str, float], meter: CpuMeter) -> Step:
    users = users_for(rate, mix, args.pacing)
    step = Step(rate, planned_rate(users, args.pacing), users)
    classes = [
        type(PROFILE[kind][0].__name__, (PROFILE[kind][0],), {"fixed_count": n, "abstract": False})
        for kind, n in users.items()
    ]
    env = Environment(user_classes=classes, stop_timeout=args.drain)
    runner = env.create_local_runner()
    total = sum(users.values())
    RECORD.new_step(index, time.time() + SPAWN_SECONDS, args.pacing)
    runner.start(total, spawn_rate=total / SPAWN_SECONDS * 1.2)
    gevent.sleep(SPAWN_SECONDS + args.warmup)
    window = time.time()
    meter.start()
    gevent.sleep(args.seconds)
    step.cpu = meter.percentages()
    window = (window, time.time())
    runner.stop()  # lets each user finish its operation (up to --drain seconds)
    step.generator_saturated = runner.cpu_warning_emitted
    runner.quit()
    measure(step, index, window)
    return step


def measure(step: Step, index: int, window: tuple[float, float]) -> None:
    start, end = window
    seconds = end - start
    offered = [k for s, k, t in RECORD.operations if s == index and start <= t < end]
    step.offered = sum(PROFILE[kind][1] for kind in offered) / seconds
    samples = [x for x in RECORD.samples if x[0] == index and start <= x[2] < end]
    by_name: dict[str, list] = {}
    for _, name, _, elapsed, result in samples:
        by_name.setdefault(name, []).append((elapsed, result))
    step.endpoints = [_figures(name, rows) for name, rows in sorted(by_name.items())]
    everything = [row for rows in by_name.values() for row in rows]
    _, step.sent, step.ok, step.clear, step.other, step.p50_ms, step.p99_ms = _figures(
        "", everything
    )
    step.achieved = step.ok / seconds


def _figures(name: str, rows: list[tuple[float, str]]) -> tuple:
    latencies = sorted(elapsed for elapsed, _ in rows)
    count = {result: 0 for result in ("ok", "clear", "other")}
    for _, result in rows:
        count[result] += 1
    p50 = percentile_ms(latencies, 0.5) if latencies else 0.0
    p99 = percentile_ms(latencies, 0.99) if latencies else 0.0
    return name, len(rows), count["ok"], count["clear"], count["other"], p50, p99


def judge(steps: list[Step], p99_bound: float, max_error_rate: float) -> str:
    """Mark passing steps; return the knee verdict: the highest passing rate and the next
    (failing) step above it, with where the CPU went there."""
    for step in steps:
        step.passed = (
            step.sent > 0
            and step.p99_ms <= p99_bound
            and step.error_rate < max_error_rate
            and step.achieved >= 0.95 * step.planned
        )
    bound = f"bound: p99 ≤ {p99_bound:.0f} ms, errors < {max_error_rate:.1%}, achieved ≥ 95 %"
    passing = [step for step in steps if step.passed]
    if not passing:
        return f"no step met the bound ({bound})"
    knee = max(passing, key=lambda step: step.rate)
    above = [s for s in steps if s.rate > knee.rate and not s.passed]
    noisy = [f"{s.rate:g}" for s in steps if s.rate < knee.rate and not s.passed]
    verdict = f"knee at {knee.rate:g} req/s"
    if above:
        broken = min(above, key=lambda step: step.rate)
        verdict += (
            f"; {broken.rate:g} req/s breaks it ({why(broken, p99_bound, max_error_rate)}; "
            f"CPU there: {busiest(broken.cpu)}, others on the machine "
            f"{broken.cpu.get('others on the machine', 0):.0f}%)"
        )
    else:
        verdict = f"knee above {knee.rate:g} req/s (every step met the bound)"
    if noisy:
        verdict += f"; lower step(s) {', '.join(noisy)} req/s failed too (a noisy machine?)"
    return f"{verdict}; {bound}"


def why(step: Step, p99_bound: float, max_error_rate: float) -> str:
    reasons = []
    if step.p99_ms > p99_bound:
        reasons.append(f"p99 {step.p99_ms:.0f} ms")
    if step.error_rate >= max_error_rate:
        reasons.append(f"errors {step.error_rate:.2%}")
    if step.achieved < 0.95 * step.planned:
        reasons.append(f"achieved {step.achieved:.0f} of {step.planned:.0f} req/s")
    return ", ".join(reasons) or "failed"


def busiest(cpu: dict[str, float], count: int = 3) -> str:
    ours = {k: v for k, v in cpu.items() if not k.startswith(("machine", "others"))}
    top = sorted(ours.items(), key=lambda kv: -kv[1])[:count]
    return ", ".join(f"{name} {value:.0f}%" for name, value in top)


def print_step(index: int, step: Step) -> None:
    print(
        f"\n== step {index + 1}: {step.rate:g} req/s target (planned {step.planned:.1f}, "
        f"offered {step.offered:.1f}, achieved {step.achieved:.1f} req/s) — users {step.users}"
    )
    print(
        f"{'endpoint':34} {'requests':>8} {'ok':>7} {'clear':>6} {'other':>6} {'err %':>6} "
        f"{'p50 ms':>8} {'p99 ms':>8}"
    )
    for name, sent, ok, clear, other, p50, p99 in [*step.endpoints, _total_row(step)]:
        errors = 100 * (clear + other) / sent if sent else 0.0
        print(f"{name:34} {sent:8} {ok:7} {clear:6} {other:6} {errors:6.2f} {p50:8.1f} {p99:8.1f}")
    for (index_, name), reasons in sorted(RECORD.errors.items()):
        if index_ == index:
            top = ", ".join(f"{why} x{n}" for why, n in reasons.most_common(3))
            print(f"  failures of {name} (whole step): {top}")
    cpu = sorted(step.cpu.items(), key=lambda kv: -kv[1])
    print("CPU (% of one core): " + ", ".join(f"{k} {v:.0f}" for k, v in cpu))
    if step.generator_saturated:
        print("WARNING: the load generator itself went over 90 % CPU: figures understate capacity")


def _total_row(step: Step) -> tuple:
    return ("ALL", step.sent, step.ok, step.clear, step.other, step.p50_ms, step.p99_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="20,40,60,80,100,150", help="req/s per step")
    parser.add_argument("--seconds", type=float, default=35.0, help="measured seconds per step")
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds before measuring")
    parser.add_argument(
        "--pacing", type=float, default=10.0, help="seconds between a user's operations"
    )
    parser.add_argument("--drain", type=float, default=15.0, help="seconds users get to finish")
    parser.add_argument("--mix", default="", help="e.g. workout=0.3,statistics=0.3,live=0.4")
    parser.add_argument("--p99-ms", type=float, default=500.0)
    parser.add_argument("--max-error-rate", type=float, default=0.001)
    parser.add_argument("--accounts", type=int, default=120, help="lent to workouts")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--gateways", type=int, default=2)
    parser.add_argument("--cache-nodes", type=int, default=2)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--verify-sample", type=int, default=0, help="per kind; 0 = all")
    parser.add_argument("--no-save", action="store_true", help="print only")
    parser.add_argument("--keep", default="", help="run the stack in this directory, kept")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # Locust warns about a spawn rate over 100/s: harmless here, users only sleep until their slot.
    logging.getLogger("locust.runners").setLevel(logging.ERROR)
    rates = [float(r) for r in args.rates.split(",")]
    mix = parse_mix(args.mix) if args.mix else DEFAULT_MIX
    with tempfile.TemporaryDirectory(prefix="load-knee-") as tmp:
        tmp = args.keep or tmp
        stack = make_stack(
            Path(tmp), args.replicas, args.gateways, args.cache_nodes, args.log_level
        )
        try:
            steps, lost, counts = run(stack, rates, mix, args)
        finally:
            stack.stop()
    report(steps, lost, counts, mix, args)


def run(stack, rates: list[float], mix: dict[str, float], args):
    began = time.monotonic()
    stack.start()
    secret = jwt_secret(stack)
    RECORD.gateways = [r.url for r in stack.replicas_of("gateway")]
    accounts = new_accounts(RECORD.gateways[0], args.accounts + SHARED_ACCOUNTS, secret)
    RECORD.lend(accounts, args.accounts)
    print(f"stack up and {len(RECORD.accounts)} accounts seeded in {time.monotonic() - began:.0f}s")
    meter = CpuMeter(stack)
    steps = []
    for index, rate in enumerate(rates):
        steps.append(run_step(index, rate, args, mix, meter))
        print_step(index, steps[-1])
    began = time.monotonic()
    lost, counts = verify(RECORD.writes, stack, secret, args.verify_sample)
    print(f"\nread back {counts} in {time.monotonic() - began:.0f}s")
    return steps, lost, counts


def report(steps: list[Step], lost: dict[int, int], counts: dict, mix, args) -> None:
    verdict = judge(steps, args.p99_ms, args.max_error_rate)
    print(f"\n{verdict}")
    for index, step in enumerate(steps):
        print(
            f"{step.rate:6g} req/s: offered {step.offered:6.1f}, achieved {step.achieved:6.1f}, "
            f"p50 {step.p50_ms:6.1f} ms, p99 {step.p99_ms:7.1f} ms, errors "
            f"{step.error_rate:6.2%}, lost {lost.get(index, 0)} — "
            f"{'pass' if step.passed else 'FAIL'}; busiest: {busiest(step.cpu)}"
        )
    if args.no_save:
        return
    checked = f"{counts['checked']} of {counts['acknowledged']} acknowledged writes read back"
    if counts.get("compensated"):
        checked += f" ({counts['compensated']} goals answered 202 were compensated later)"
    rows = [
        Row(
            area="load",
            tried=f"mixed profile at {step.rate:g} req/s",
            amount=f"{args.seconds:g} s after {args.warmup:g} s warm-up: {composition(mix)}",
            sent=step.sent,
            succeeded=step.ok,
            failed_clear=step.clear,
            failed_other=step.other,
            lost=lost.get(index, 0),
            notes=_notes(step, args) + (f". {verdict}; {checked}" if last else ""),
        )
        for index, step in enumerate(steps)
        for last in [index == len(steps) - 1]
    ]
    save(Suite("load", command_line("bench.load_knee", sys.argv[1:]), rows))


def _notes(step: Step, args) -> str:
    outcome = "pass" if step.passed else "FAIL: " + why(step, args.p99_ms, args.max_error_rate)
    return (
        f"offered {step.offered:.0f}/s, achieved {step.achieved:.0f}/s; p50 {step.p50_ms:.0f} ms, "
        f"p99 {step.p99_ms:.0f} ms; {outcome}; CPU {busiest(step.cpu)} (others on the machine "
        f"{step.cpu.get('others on the machine', 0):.0f}%)"
    )


if __name__ == "__main__":
    main()
