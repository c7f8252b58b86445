"""The apps the benchmarks measure, importable in-process and by gunicorn (``bench.apps:gated``).

``bare`` is the smallest honest WSGI app: a fixed 13-byte body with Content-Type and
Content-Length. ``gated`` is the same app behind :class:`qqgate.QQGate`. Settings come from
``BENCH_SECRET`` (set by the scripts; a fixed bench-only default otherwise), so a script can mint a
session cookie that a gunicorn worker in another process accepts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from time import perf_counter_ns

from qqgate import QQGate
from qqgate.config import Settings, default_cookie_name, settings_from_mapping
from qqgate.session import Identity

APP_ID = "101000001"
APP_KEY = "bench-app-key-not-a-real-secret-000"
DEFAULT_SECRET = "bench-only-secret-not-for-production-0123456789"  # noqa: S105
OPENID = "0123456789ABCDEF0123456789ABCDEF"
NICKNAME = "小明🐧的咖啡☕"
AVATAR = "https://thirdqq.qlogo.cn/g?b=oidb&k=abcdefghijklmnop&s=100&t=1700000000"
BODY = b"Hello, world\n"


def bare(environ: dict, start_response: Callable) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))])
    return [BODY]


def settings_mapping(secret: str | None = None) -> dict[str, str]:
    """The benchmark gate's keys, as a gate.ini section would hold them."""
    return {
        "app_id": APP_ID,
        "app_key": APP_KEY,
        "secret_key": secret or os.environ.get("BENCH_SECRET", DEFAULT_SECRET),
        "redirect_uri": "https://app.example.com/_qqgate/callback",
        "public_paths": "/static/ /healthz",
    }


def settings(**overrides: str) -> Settings:
    return settings_from_mapping({**settings_mapping(), **overrides})


# The default for these settings (Secure, no cookie_domain): "__Host-qqgate".
COOKIE_NAME = default_cookie_name(secure=True, domain=None)


def make_gate(app: Callable = bare, **kwargs: object) -> QQGate:
    return QQGate(app, settings(), **kwargs)  # type: ignore[arg-type]


def session_token(gate: QQGate, signed_in_at: int | None = None) -> str:
    """A valid session cookie value for ``gate`` (a Chinese + emoji nickname, no unionid)."""
    when = int(time.time()) if signed_in_at is None else signed_in_at
    return gate.sessions.codec.dumps(Identity(OPENID, NICKNAME, AVATAR, None, when))


# Other cookies a real browser sends along: analytics, CSRF, preferences (~200 bytes).
OTHER_COOKIES = (
    "_ga=GA1.2.1234567890.1700000000; _gid=GA1.2.987654321.1700000000; "
    "csrftoken=Zq8dX2vYk3LmN9pQrS4tUvWxYz0AbCdEfGhIjKlMnOpQ; lang=zh-CN; "
    "Hm_lvt_0123456789abcdef=1700000000,1700086400; theme=dark"
)


def cookie_header(token: str | None) -> str:
    """The Cookie header of a signed-in browser: ours in the middle of the others."""
    if token is None:
        return OTHER_COOKIES
    head, tail = OTHER_COOKIES.rsplit("; ", 1)
    return f"{head}; {COOKIE_NAME}={token}; {tail}"


gated = make_gate()


class Timed:
    """``app`` with the time of each call summed: what it costs inside a worker, where the CPU's
    caches are cold between requests. ``GET /__in_call`` answers "<mean µs> <calls>" so far."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.total_ns = 0
        self.calls = 0

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/__in_call":
            body = f"{self.total_ns / max(self.calls, 1) / 1000:.3f} {self.calls}".encode()
            start_response("200 OK", [("Content-Length", str(len(body)))])
            return [body]
        start = perf_counter_ns()
        result = self.app(environ, start_response)
        self.total_ns += perf_counter_ns() - start  # a lost update under threads: a rare miss
        self.calls += 1
        return result


timed_bare = Timed(bare)
timed_gated = Timed(gated)
