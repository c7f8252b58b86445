"""Requests per second through nginx auth_request: plain nginx, deploy/nginx-auth-request.conf
without its auth cache, and with it, in one run.

One nginx serves a small static file (the app) and three fronts to it, all on 127.0.0.1: ``plain``
(``proxy_pass`` to the file, no auth), ``auth_request`` (the shipped block with its five cache
lines deleted: every request asks the gate) and ``auth_request + cache`` (the shipped block as it
is). The gate is ``qqgate.wsgi:application`` under one gunicorn GateWorker, as ``qqgate serve``
runs it. wrk loads each front in turn with a signed-in browser's Cookie header, round after round
(the order rotates), and the table gives each front's median req/s, p50/p99 and its ratio to plain
nginx in the same round.

    python -m bench.authcache [--duration 5] [--repeat 3] [--connections 32]

Needs ``nginx`` and ``wrk`` (Debian/Ubuntu: ``apt-get install nginx wrk``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from bench import apps
from bench.http import ROOT, Result, Server, gunicorn, parse_wrk, running
from bench.ports import free_port

FRONTS = ("plain", "auth_request", "auth_request + cache")
CACHE_LINES = (
    "proxy_cache qqgate_auth;",
    "proxy_cache_key $qqgate_session;",
    "proxy_cache_bypass $http_sec_websocket_key;",
    "proxy_set_header X-QQGate-Cache-Key $qqgate_session;",
    "proxy_ignore_headers Cache-Control Expires;",
)
NGINX = """daemon off;
{user}
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{maps}
    server {{ listen 127.0.0.1:{app}; root {tmp}/site; }}
    server {{ listen 127.0.0.1:{plain}; location / {{ proxy_pass http://127.0.0.1:{app}; }} }}
    server {{ listen 127.0.0.1:{uncached};
{uncached_block}
    }}
    server {{ listen 127.0.0.1:{cached};
{cached_block}
    }}
}}
"""


def between(text: str, begin: str, end: str) -> str:
    return text.split(f"# --- {begin} ---")[1].split(f"# --- {end} ---")[0]


def nginx_conf(tmp: Path, gate: int, ports: dict[str, int]) -> str:
    shipped = (ROOT / "deploy" / "nginx-auth-request.conf").read_text()
    shipped = shipped.replace("127.0.0.1:8000", f"127.0.0.1:{gate}")
    shipped = shipped.replace("127.0.0.1:8080", f"127.0.0.1:{ports['app']}")
    shipped = shipped.replace("/var/cache/nginx/qqgate-auth", str(tmp / "cache"))
    block = between(shipped, "test-begin", "test-end")
    uncached = block
    for line in CACHE_LINES:
        assert line in uncached, f"deploy/nginx-auth-request.conf no longer has {line!r}"
        uncached = uncached.replace(line, "")
    return NGINX.format(
        tmp=tmp,
        user="user root;" if os.geteuid() == 0 else "",  # workers that can write under tmp
        maps=between(shipped, "test-map-begin", "test-map-end"),
        app=ports["app"],
        plain=ports["plain"],
        uncached=ports["auth_request"],
        cached=ports["auth_request + cache"],
        uncached_block=uncached,
        cached_block=block,
    )


@contextlib.contextmanager
def stack() -> Iterator[tuple[dict[str, str], str]]:
    """The gate and nginx running; yields each front's URL and the Cookie header to send."""
    with tempfile.TemporaryDirectory(prefix="qqgate-bench-") as name:
        tmp = Path(name)
        ini = ["[qqgate]", *(f"{k} = {v}" for k, v in apps.settings_mapping().items())]
        (tmp / "gate.ini").write_text("\n".join(ini) + "\n")
        env = {"QQGATE_CONFIG": str(tmp / "gate.ini")}
        gate_start = gunicorn("qqgate.wsgi:application", "qqgate.worker.GateWorker", 1, 1, env)
        with gate_start() as gate:
            yield from _nginx(tmp, gate)


def _nginx(tmp: Path, gate: Server) -> Iterator[tuple[dict[str, str], str]]:
    """nginx with the four servers, in front of ``gate``."""
    (tmp / "site").mkdir()
    (tmp / "site" / "index.html").write_bytes(apps.BODY)
    ports = {front: free_port() for front in ("app", *FRONTS)}
    (tmp / "nginx.conf").write_text(nginx_conf(tmp, int(gate.url.rsplit(":", 1)[1]), ports))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    argv = [nginx, "-c", str(tmp / "nginx.conf"), "-p", str(tmp)]
    with running(argv, ports["plain"], dict(os.environ), tmp):
        cookie = apps.cookie_header(apps.session_token(apps.make_gate()))
        yield {front: f"http://127.0.0.1:{ports[front]}/" for front in FRONTS}, cookie


def check(urls: dict[str, str], cookie: str) -> None:
    """Each front serves the file to the signed-in browser; the auth fronts refuse the others."""
    for front, url in urls.items():
        for headers, expected in (({"Cookie": cookie}, 200), ({}, 0 if front == "plain" else 401)):
            request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback
            try:
                with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                    status, body = response.status, response.read()
            except urllib.error.HTTPError as error:
                status, body = error.code, error.read()
            if expected and status != expected:
                raise RuntimeError(f"{front}: {status} instead of {expected}: {body[:300]!r}")


def load(url: str, cookie: str, args: argparse.Namespace) -> Result:
    argv = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s"]
    argv += ["--latency", "-H", f"Cookie: {cookie}", url]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stdout}{done.stderr}")
    result = parse_wrk(done.stdout)
    if result.errors:
        raise RuntimeError(f"{url}: {result.errors}")  # a 401/403/5xx would not be a fair number
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    results: dict[str, list[Result]] = {front: [] for front in FRONTS}
    ratios: dict[str, list[float]] = {front: [] for front in FRONTS}
    with stack() as (urls, cookie):
        check(urls, cookie)
        for round_ in range(args.repeat):
            order = FRONTS[round_ % 3 :] + FRONTS[: round_ % 3]
            measured = {front: load(urls[front], cookie, args) for front in order}
            for front in FRONTS:
                results[front].append(measured[front])
                plain = measured["plain"].requests_per_second
                ratios[front].append(measured[front].requests_per_second / plain)
    print(f"{'front':<22} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'x plain':>8}")
    for front in FRONTS:
        rps = statistics.median(r.requests_per_second for r in results[front])
        p50 = statistics.median(r.p50_ms for r in results[front])
        p99 = statistics.median(r.p99_ms for r in results[front])
        ratio = statistics.median(ratios[front])
        print(f"{front:<22} {rps:>9.0f} {p50:>8.2f} {p99:>8.2f} {ratio:>8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
