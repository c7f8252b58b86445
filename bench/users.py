"""µs per signed-in request against the number of active users (issue 15): the section
``python -m bench.inprocess --section users``.

N users (N = 1, 100, 10k, 20k, 100k by default), each with their own session token and Cookie
header, send requests to one gate (one worker): in turn (round robin: the worst case for any
cache, every user comes back only after all the others) or in a skewed mix (Zipf-like, s = 1: the
k-th most active user sends 1/k as many requests as the first). Each (N, mix) has its own gate,
warmed with one request per user before the timing: the figures are a worker's steady state.

Every request is a fresh environ with a fresh copy of its user's Cookie header, built outside the
timing just before its batch, as a server hands them over (a new string: its hash not computed yet,
its bytes still in the CPU's cache). The bare app gets the same environs. The cases run interleaved
in batches of about 20 ms; each figure is the median over the rounds, and ``loads()`` (stock
itsdangerous, the cost of a request without any cache) is measured in the same rounds, so the
curve can be compared between machines as multiples of it.
"""

from __future__ import annotations

import gc
import itertools
import random
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from bench import apps
from bench.inprocess import Cases, base_environ, run_requests
from qqgate import QQGate
from qqgate.session import Identity

USERS = (1, 100, 10_000, 20_000, 100_000)
MIXES = ("round robin", "Zipf s=1")
TARGET_GROWTH = 2.0  # round robin over 100,000 users at most 2x the cost over 100, same run
TARGET_ONE_OVER_BARE = 1.0  # µs over bare with 1 user, on the reference machine (below)
REFERENCE_LOADS = 10.7  # µs: itsdangerous loads() on the machine issue 15's targets were set on
BATCH_SECONDS = 0.02


def mint(gate: QQGate, n: int) -> list[str]:
    """``n`` Cookie headers, one signed-in user each (outside any timing)."""
    when = int(time.time()) - 1
    codec = gate.sessions.codec
    return [
        apps.cookie_header(
            codec.dumps(Identity(f"{i:032X}", apps.NICKNAME, apps.AVATAR, None, when))
        )
        for i in range(n)
    ]


def order(mix: str, n: int, length: int, seed: int = 15) -> Iterator[int]:
    """The users who send requests, forever: in turn, or drawn from a Zipf-like distribution."""
    if mix == MIXES[0]:
        return itertools.cycle(range(n))
    weights = list(itertools.accumulate(1 / (k + 1) for k in range(n)))
    rng = random.Random(seed)  # noqa: S311 (a benchmark's traffic mix, no secret)
    drawn = rng.choices(range(n), cum_weights=weights, k=length)
    return itertools.cycle(drawn)


@dataclass
class Case:
    """One (N, mix): its gate, its users' headers and where in its order it is."""

    n: int
    mix: str
    gate: QQGate
    cookies: list[str]
    users: Iterator[int]
    size: int = 0
    samples: list[float] = field(default_factory=list)

    def environs(self, count: int) -> list[dict]:
        base = base_environ(None)
        cookies, users = self.cookies, self.users
        # A fresh copy of the header per request: a new string, as a server would hand over.
        return [
            {**base, "HTTP_COOKIE": (c := cookies[next(users)])[:-1] + c[-1]} for _ in range(count)
        ]


def make_cases(users: tuple[int, ...]) -> list[Case]:
    cases = []
    cookies = mint(apps.make_gate(), max(users))  # every gate has the same secret
    for n in users:
        for mix in MIXES:
            gate = apps.make_gate()
            case = Case(n, mix, gate, cookies[:n], order(mix, n, max(4 * n, 50_000)))
            _warm(case)
            cases.append(case)
    return cases


def _warm(case: Case) -> None:
    """One request per user, then check that a request reaches the app signed in."""
    base = base_environ(None)
    run_requests(case.gate, [{**base, "HTTP_COOKIE": cookie} for cookie in case.cookies])
    environ = case.environs(1)[0]
    list(case.gate(environ, lambda s, h, e=None: None))
    assert environ.get("HTTP_X_QQ_OPENID"), "the gate did not sign the request in"


def timed(app: Callable, environs: list[dict]) -> float:
    return run_requests(app, environs) / len(environs) * 1e6


def measure(seconds: float, users: tuple[int, ...] = USERS) -> dict[str, object]:
    cases = make_cases(users)
    loads = Cases().loads
    bare: list[float] = []
    loads_samples: list[float] = []
    reference = cases[0]
    for case in cases:  # calibrate: about BATCH_SECONDS per batch
        per_request = timed(case.gate, case.environs(500))
        case.size = max(200, int(BATCH_SECONDS / (per_request / 1e6)))
    bare_size = max(200, int(BATCH_SECONDS / (timed(apps.bare, reference.environs(500)) / 1e6)))
    deadline = time.monotonic() + seconds
    rounds = 0
    while time.monotonic() < deadline or rounds < 3:
        gc.collect()
        bare.append(timed(apps.bare, reference.environs(bare_size)))
        loads_samples.append(loads(2000))
        for case in cases:
            environs = case.environs(case.size)
            gc.collect()
            case.samples.append(timed(case.gate, environs))
        rounds += 1
    return {"cases": cases, "bare": bare, "loads": loads_samples, "rounds": rounds}


def report(result: dict) -> bool:
    cases: list[Case] = result["cases"]  # type: ignore[assignment]
    bare = statistics.median(result["bare"])  # type: ignore[arg-type]
    loads = statistics.median(result["loads"])  # type: ignore[arg-type]
    print(
        f"\nactive users: {result['rounds']} rounds, medians in µs per request; "
        f"bare app {bare:.2f} µs, itsdangerous loads() {loads:.2f} µs\n"
    )
    print(f"{'N users':>9} {'mix':<12} {'µs':>8} {'over bare':>10} {'/ loads()':>10}")
    med = {}
    for case in cases:
        value = statistics.median(case.samples)
        med[case.n, case.mix] = value
        print(
            f"{case.n:>9,} {case.mix:<12} {value:8.2f} {value - bare:10.2f} {value / loads:10.3f}"
        )
    return _verdicts(med, bare, loads)


def _verdicts(med: dict[tuple[int, str], float], bare: float, loads: float) -> bool:
    ok = True
    rr = MIXES[0]
    if (100, rr) in med and (100_000, rr) in med:
        growth = med[100_000, rr] / med[100, rr]
        met = growth <= TARGET_GROWTH
        ok &= met
        print(
            f"\nround robin, 100,000 users / 100 users: {growth:.2f}× (target ≤ {TARGET_GROWTH}×)"
            f"  {'met' if met else 'MISSED'}"
        )
    if (1, rr) in med:
        over = med[1, rr] - bare
        normalised = over * REFERENCE_LOADS / loads
        met = normalised <= TARGET_ONE_OVER_BARE
        ok &= met
        print(
            f"1 user over bare: {over:.2f} µs here, {normalised:.2f} µs normalised to loads() = "
            f"{REFERENCE_LOADS} µs (target ≤ {TARGET_ONE_OVER_BARE})  {'met' if met else 'MISSED'}"
        )
    return ok
