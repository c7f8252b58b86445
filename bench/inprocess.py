"""Microseconds per request in-process: the bare app, the gate in front of it, and the signature
check the gate's cache saves.

Cases, all on the same realistic environ (25 keys as gunicorn builds them, a Cookie header with
~190 bytes of other cookies around ours, a Chinese + emoji nickname):

- ``bare``: the app alone.
- ``hit``: the gate, signed in, the token already verified (the steady state of a session).
- ``store``: as ``hit``, with a ``session_store`` whose revocations name 10,000 other users (and
  5,000 sessions of them): the hot path's one more dict lookup. The store's URL points nowhere
  (its listener retries in the background), so nothing here is the network: the hot path never is.
- ``miss``: the gate, signed in, a token it has never seen (the first request after a sign-in or a
  worker restart): the signature is checked and the identity rendered.
- ``challenge``: the gate, not signed in, a browser navigation: the 302 to the login.
- ``auth``: nginx's auth_request subrequest to ``/_qqgate/auth`` for a signed-in visitor: the 202
  with the identity headers (in that deployment, the gate's answer to every request).
- ``loads``: itsdangerous ``URLSafeSerializer.loads()`` of the session token alone.

The cases run interleaved, round robin, in batches of about 20 ms each; every figure is the median
over the rounds, so drift (CPU frequency, a noisy neighbour) hits all cases alike.

    python -m bench.inprocess [--seconds 25]

``--section users`` measures instead how the signed-in request's cost grows with the number of
active users (1 to 100,000, round robin and a skewed mix): ``bench/users.py``.

    python -m bench.inprocess --section users [--seconds 60] [--users 1,100,10000,20000,100000]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import io
import logging
import statistics
import sys
import time
from collections.abc import Callable

from itsdangerous import URLSafeSerializer

from bench import apps
from qqgate.session import SESSION_SALT

TARGET_HIT_OVER_BARE = 2.0  # µs
TARGET_MISS_OVER_BARE = 13.0  # µs
BATCH_SECONDS = 0.02


def start_response(status: str, headers: list, exc_info: object = None) -> Callable:
    return _write


def _write(data: bytes) -> None:
    pass


def base_environ(cookie: str | None) -> dict:
    """An environ like gunicorn's for ``GET /dashboard?tab=1`` from a desktop browser."""
    environ = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/dashboard",
        "QUERY_STRING": "tab=1",
        "RAW_URI": "/dashboard?tab=1",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_SOFTWARE": "gunicorn/23.0.0",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "51234",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "HTTP_HOST": "app.example.com",
        "HTTP_USER_AGENT": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
        "HTTP_ACCEPT": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.8",
        "HTTP_ACCEPT_ENCODING": "gzip, deflate, br",
        "HTTP_CONNECTION": "keep-alive",
        "HTTP_REFERER": "https://app.example.com/",
    }
    if cookie is not None:
        environ["HTTP_COOKIE"] = cookie
    return environ


def store_gate() -> Callable:
    """The benchmark gate with a session store holding other users' revocations."""
    from qqgate import QQGate
    from qqgate.revocations import session_field, user_field

    logging.getLogger("qqgate").setLevel(logging.CRITICAL)  # the store is unreachable: it says so
    gate = QQGate(apps.bare, apps.settings(session_store="redis://127.0.0.1:1/0"))
    revocations = gate.sessions.store.revocations  # type: ignore[union-attr]
    until = int(time.time()) + 86400
    for i in range(10_000):
        openid = f"{i:032X}"
        revocations.add(user_field(openid), f"{until - 86400} {until}")
        if i % 2:
            revocations.add(session_field(openid, f"s{i}"), str(until))
    return gate


def run_requests(app: Callable, environs: list[dict]) -> float:
    """Seconds for one request per environ (each a fresh copy), the body read as a server would."""
    start = time.perf_counter()
    for template in environs:
        result = app(template.copy(), start_response)
        for _chunk in result:
            pass
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return time.perf_counter() - start


class Cases:
    """Each case: a function that runs a batch of ``n`` and returns µs per request."""

    def __init__(self) -> None:
        self.gate = apps.make_gate()
        self.token = apps.session_token(self.gate)
        self.store_gate = store_gate()
        self.signed_in = base_environ(apps.cookie_header(self.token))
        self.anonymous = base_environ(apps.cookie_header(None))
        # nginx's auth_request subrequest for a signed-in visitor (deploy/nginx-auth-request.conf)
        self.auth_request = {
            **self.signed_in,
            "PATH_INFO": "/_qqgate/auth",
            "QUERY_STRING": "",
            "HTTP_X_ORIGINAL_URI": "/dashboard?tab=1",
        }
        self._fresh = int(time.time()) - 1
        self._check()

    def _check(self) -> None:
        """Make sure every case does what it claims before timing it."""
        statuses = []

        def record(status: str, headers: list, exc_info: object = None) -> Callable:
            statuses.append(status.split()[0])
            return _write

        for environ in (self.signed_in, self.anonymous, self.auth_request):
            list(self.gate(environ.copy(), record))
        assert self.fresh(self.signed_in, 1)[0]["HTTP_COOKIE"] is not self.signed_in["HTTP_COOKIE"]
        assert statuses == ["200", "302", "202"], statuses
        environ = self.signed_in.copy()
        list(self.gate(environ, record))
        assert environ["HTTP_X_QQ_OPENID"] == apps.OPENID, "the gate did not sign the request in"
        assert self.token in self.gate.sessions.codec.cache

    def fresh(self, template: dict, n: int) -> list[dict]:
        """``n`` copies of ``template``, each with its own Cookie string, as a server makes them
        (a string seen before would carry its hash, which a new request's header does not)."""
        cookie = template["HTTP_COOKIE"]
        return [{**template, "HTTP_COOKIE": cookie[:-1] + cookie[-1]} for _ in range(n)]

    def bare(self, n: int) -> float:
        return run_requests(apps.bare, self.fresh(self.signed_in, n)) / n * 1e6

    def hit(self, n: int) -> float:
        return run_requests(self.gate, self.fresh(self.signed_in, n)) / n * 1e6

    def store(self, n: int) -> float:
        return run_requests(self.store_gate, self.fresh(self.signed_in, n)) / n * 1e6

    def miss(self, n: int) -> float:
        # Tokens never seen before (another sign-in time each); minted outside the timing.
        environs = []
        for _ in range(n):
            self._fresh -= 1
            token = apps.session_token(self.gate, self._fresh)
            environs.append({**self.signed_in, "HTTP_COOKIE": apps.cookie_header(token)})
        return run_requests(self.gate, environs) / n * 1e6

    def challenge(self, n: int) -> float:
        return run_requests(self.gate, self.fresh(self.anonymous, n)) / n * 1e6

    def auth(self, n: int) -> float:
        return run_requests(self.gate, self.fresh(self.auth_request, n)) / n * 1e6

    def loads(self, n: int) -> float:
        # Stock itsdangerous, configured as qqgate's session serializer is.
        serializer = URLSafeSerializer(
            list(reversed(apps.settings().secret_keys)),
            salt=SESSION_SALT,
            signer_kwargs={"digest_method": hashlib.sha256},
        )
        loads, token = serializer.loads, self.token
        assert loads(token)[0] == apps.OPENID
        start = time.perf_counter()
        for _ in range(n):
            loads(token)
        return (time.perf_counter() - start) / n * 1e6


NAMES = {
    "bare": "bare app",
    "hit": "gate, signed in, cache hit",
    "store": "  same, with a session store",
    "miss": "gate, signed in, cache miss",
    "challenge": "gate, not signed in (302)",
    "auth": "auth_request, signed in (202)",
    "loads": "itsdangerous loads() alone",
}


def measure(seconds: float) -> dict[str, list[float]]:
    cases = Cases()
    runners = {name: getattr(cases, name) for name in NAMES}
    # Calibrate: a batch of each case should take about BATCH_SECONDS.
    sizes = {}
    for name, runner in runners.items():
        runner(200)  # warm up
        sizes[name] = max(50, int(BATCH_SECONDS / (runner(500) / 1e6)))
    samples: dict[str, list[float]] = {name: [] for name in NAMES}
    deadline = time.monotonic() + seconds
    rounds = 0
    while time.monotonic() < deadline or rounds < 5:
        for name, runner in runners.items():
            gc.collect()
            samples[name].append(runner(sizes[name]))
        rounds += 1
    return samples


def report(samples: dict[str, list[float]]) -> bool:
    med = {name: statistics.median(values) for name, values in samples.items()}
    rounds = len(samples["bare"])
    print(f"python {sys.version.split()[0]}, {rounds} rounds, medians in µs per request\n")
    print(f"{'case':<30} {'median':>8} {'p25':>8} {'p75':>8} {'over bare':>10} {'× bare':>8}")
    for name, label in NAMES.items():
        q1, _, q3 = statistics.quantiles(samples[name], n=4)
        row = f"{label:<30} {med[name]:8.2f} {q1:8.2f} {q3:8.2f}"
        if name != "loads":  # not a request: nothing to compare with the bare app
            row += f" {med[name] - med['bare']:10.2f} {med[name] / med['bare']:8.1f}"
        print(row)
    hit = med["hit"] - med["bare"]
    miss = med["miss"] - med["bare"]
    print()
    print(f"loads() alone / cache hit overhead: {med['loads'] / hit:.1f}× saved per request")
    print(f"cache miss overhead / loads() alone: {miss / med['loads']:.2f}")
    print(f"with a session store / without: {med['store'] / med['hit']:.3f}× (target ≤ 1.5×)")
    ok_hit = hit <= TARGET_HIT_OVER_BARE
    ok_miss = miss <= TARGET_MISS_OVER_BARE
    print(f"target hit  ≤ {TARGET_HIT_OVER_BARE} µs over bare: {hit:.2f} µs  {_verdict(ok_hit)}")
    print(f"target miss ≤ {TARGET_MISS_OVER_BARE} µs over bare: {miss:.2f} µs  {_verdict(ok_miss)}")
    return ok_hit and ok_miss


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--section", choices=("cases", "users"), default="cases")
    parser.add_argument(
        "--seconds", type=float, help="time budget (default 25; 60 for --section users)"
    )
    parser.add_argument("--users", help="comma-separated numbers of active users (--section users)")
    args = parser.parse_args(argv)
    if args.section == "users":
        from bench import users  # imports this module: only when asked for

        counts = tuple(int(n) for n in args.users.split(",")) if args.users else users.USERS
        result = users.measure(60.0 if args.seconds is None else args.seconds, counts)
        return 0 if users.report(result) else 1
    seconds = 25.0 if args.seconds is None else args.seconds
    return 0 if report(measure(seconds)) else 1


if __name__ == "__main__":
    sys.exit(main())
