"""Worst-case parsing: what pathological heads from a client or an upstream cost, by size.

No input a client or an upstream can send may cost more than linear time in its size (issue 10:
a value of 16,000 inner spaces once took the answer parser seconds). Each case builds a head of a
given size around one pathological feature and times the real code path on it:

- upstream answers go through ``http1.Response`` (llhttp and the proxy's rules), fed from memory;
- client requests go through the gate and the proxy in-process (``QQGate`` + ``UpstreamProxy``)
  up to the request head written to the upstream, with the upstream's socket replaced by a canned
  answer. A real gunicorn caps a client's field at 8 KiB; the in-process middleware under another
  server may not, so the client cases go to 64 KiB as well.

    python -m bench.parse [--sizes 8,16,32,64] [--rounds 5]

Prints µs per parse by size (best of ``rounds``) and the growth from the smallest to the largest
size; linear code grows by about the size ratio (8x from 8 to 64 KiB), quadratic code by its
square (64x). ``tests/security/test_linear_time.py`` runs the same cases at 8 and 64 KiB.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable

from qqgate.config import default_cookie_name, settings_from_mapping
from qqgate.middleware import QQGate
from qqgate.pages import Pages
from qqgate.session import Identity, SessionCodec
from qqgate.upstream import http1
from qqgate.upstream.proxy import UpstreamProxy

KiB = 1024
SECRET = "parse-bench-secret-0123456789-0123456789"  # noqa: S105 - a bench-only key
OK = b"HTTP/1.1 200 OK\r\n"


# --- upstream answers ---------------------------------------------------------------------------


class _Bytes:
    """A socket stand-in that hands out ``data`` in reads of at most ``size`` bytes."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def recv(self, size: int) -> bytes:
        return self._data.read(size)


def _fill(prefix: bytes, unit: bytes, suffix: bytes, size: int) -> bytes:
    return prefix + unit * max(0, (size - len(prefix) - len(suffix)) // len(unit)) + suffix


def answer_cases(size: int) -> dict[str, bytes]:
    """Answers of about ``size`` bytes, each built around one feature that once cost too much."""
    end = b"Content-Length: 0\r\n\r\n"
    return {
        "inner spaces in a value": _fill(OK + b"X-Request-ID: a", b" ", b"b\r\n" + end, size),
        "trailing spaces in a value": _fill(OK + b"X-A: a", b" ", b"\r\n" + end, size),
        "commas in Connection": _fill(OK + b"Connection: a", b",", b"\r\n" + end, size),
        "long reason phrase": _fill(b"HTTP/1.1 200 ", b"O", b"\r\n" + end, size),
        "many tiny fields (refused at 100)": _fill(OK, b"A: b\r\n", end, size),
        "long chunk extension": _fill(
            OK + b"Transfer-Encoding: chunked\r\n\r\n5;", b"a", b"\r\nhello\r\n0\r\n\r\n", size
        ),
        "many chunk extensions": _fill(
            OK + b"Transfer-Encoding: chunked\r\n\r\n5", b";a=b", b"\r\nhello\r\n0\r\n\r\n", size
        ),
        "long trailer value": _fill(
            OK + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX-T: a", b" a", b"\r\n\r\n", size
        ),
    }


def parse_answer(raw: bytes) -> None:
    """The proxy's whole handling of an answer: head, framing rules, body."""
    try:
        response = http1.Response(_Bytes(raw), "GET")  # type: ignore[arg-type]
        response.read_head()
        for _ in response.body():
            pass
    except http1.BadResponse:
        pass


# --- client requests ---------------------------------------------------------------------------


class _CannedConnection:
    """Takes the request head the proxy writes and answers with a small canned answer."""

    spent = False

    def send(self, head: bytes, body: object = None, length: int | None = None) -> None:
        self.head = head

    def response(self, method: str) -> http1.Response:
        response = http1.Response(_Bytes(OK + b"Content-Length: 2\r\n\r\nok"), method)  # type: ignore[arg-type]
        response.read_head()
        return response


class _CannedPool:
    def get(self) -> tuple[_CannedConnection, bool]:
        return _CannedConnection(), True

    def release(self, connection: object, response: object) -> None:
        pass


def client_gate() -> Callable[[dict], None]:
    settings = settings_from_mapping(
        {
            "app_id": "101000001",
            "app_key": "parse-bench-app-key",
            "secret_key": SECRET,
            "redirect_uri": "https://app.example/_qqgate/callback",
            "public_paths": "/public/",
            "upstream": "http://127.0.0.1:9",
        }
    )
    proxy = UpstreamProxy(
        "http://127.0.0.1:9",
        hidden_cookies=("qqgate",),
        identity_headers=settings.identity_headers,
        pages=Pages(settings),
    )
    proxy._pool = _CannedPool()  # type: ignore[assignment]
    gate = QQGate(proxy, settings)

    def call(environ: dict) -> None:
        for _ in gate(environ, lambda status, headers, exc_info=None: None):
            pass

    return call


def _token() -> str:
    return SessionCodec([SECRET], 3600).dumps(Identity("A" * 32, "x", "", None, int(time.time())))


def client_cases(size: int) -> dict[str, dict]:
    """Environs of about ``size`` bytes of client-chosen text around one feature each."""
    session = f"{default_cookie_name(secure=True, domain=None)}={_token()}"

    def environ(path: str = "/private", query: str = "", **headers: str) -> dict:
        base = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "RAW_URI": path + (f"?{query}" if query else ""),
            "SERVER_NAME": "gate.example",
            "SERVER_PORT": "443",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "203.0.113.9",
            "HTTP_HOST": "gate.example",
            "HTTP_COOKIE": session,
            "wsgi.url_scheme": "https",
            "wsgi.input": io.BytesIO(),
        }
        base.update(headers)
        return base

    text = "a" + " " * (size - 2) + "b"
    return {
        "many cookies": environ(HTTP_COOKIE="c=1; " * (size // 5) + session),
        "one huge cookie before ours": environ(HTTP_COOKIE=f"c={'a' * size}; {session}"),
        "commas in Connection": environ(HTTP_CONNECTION="a," * (size // 2)),
        "long X-Forwarded-For": environ(HTTP_X_FORWARDED_FOR="192.0.2.1, " * (size // 11)),
        "inner spaces in a value": environ(HTTP_X_REQUEST_ID=text),
        "many path segments": environ(path="/public/" + "a/" * (size // 2)),
        "many query parameters": environ(query="a=1&" * (size // 4)),
        "anonymous, long path (challenge)": environ(
            path="/private/" + "a/" * (size // 2), HTTP_COOKIE="", HTTP_ACCEPT="text/html"
        ),
        # The callback without its parameters: a 400 page in the browser's language and layout.
        "error page, long Accept-Language": environ(
            path="/_qqgate/callback",
            HTTP_ACCEPT="text/html",
            HTTP_ACCEPT_LANGUAGE="zh;q=0.9," * (size // 9),
        ),
        "error page, long User-Agent": environ(
            path="/_qqgate/callback",
            HTTP_ACCEPT="text/html",
            HTTP_USER_AGENT="Mozill" * (size // 6),
        ),
        "many headers": environ(
            **{f"HTTP_X_H{n}": "v" for n in range(size // 16)}  # ~16 bytes a field on the wire
        ),
    }


# --- timing ------------------------------------------------------------------------------------


def best_of(rounds: int, work: Callable[[], None]) -> float:
    """The fastest of ``rounds`` runs, in seconds."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def timings(sizes: list[int], rounds: int) -> dict[str, list[float]]:
    """Seconds per parse, by case, for each size in KiB."""
    call = client_gate()
    table: dict[str, list[float]] = {}
    for size in sizes:
        for name, raw in answer_cases(size * KiB).items():
            seconds = best_of(rounds, lambda raw=raw: parse_answer(raw))
            table.setdefault(f"upstream: {name}", []).append(seconds)
        for name, environ in client_cases(size * KiB).items():
            # A fresh copy each run: the gate writes into the environ it is given.
            seconds = best_of(rounds, lambda environ=environ: call(dict(environ)))
            table.setdefault(f"client: {name}", []).append(seconds)
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="8,16,32,64", help="KiB, comma-separated")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    table = timings(sizes, args.rounds)
    print(f"µs per parse (best of {args.rounds}), by head size; growth = last / first")
    print(f"| case | {' | '.join(f'{s} KiB' for s in sizes)} | growth |")
    print(f"|---|{'---:|' * len(sizes)}---:|")
    worst = 0.0
    for name, seconds in table.items():
        growth = seconds[-1] / seconds[0]
        worst = max(worst, growth)
        cells = " | ".join(f"{s * 1e6:.0f}" for s in seconds)
        print(f"| {name} | {cells} | {growth:.1f}x |")
    linear = sizes[-1] / sizes[0]
    print(f"size ratio {linear:.0f}x; worst growth {worst:.1f}x")
    return 0 if worst < 3 * linear else 1


if __name__ == "__main__":
    sys.exit(main())
