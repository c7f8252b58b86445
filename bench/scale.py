"""Proxy mode at scale (issue 11): what ``qqgate serve``'s gevent worker costs against gthread, and
how many connections it holds while still answering quickly.

Three sections (``--section``, default all three); everything binds to 127.0.0.1, and every process
this script starts is stopped when it ends, also on Ctrl-C or failure.

- ``workers``: qqgate in proxy mode (gate on, signed in) under the settings ``qqgate serve`` runs
  (``qqgate/gunicorn_conf.py``, its access log included), 1 worker: ``GateWorker`` (gevent) vs
  gthread (4 threads), in front of one nginx upstream. ``wrk -c32`` in back-to-back pairs of new
  processes, as bench/http.py does: req/s, p50/p99, server CPU µs per request and the
  gevent/gthread ratio (target ≥ 0.9).
- ``capacity``: 2 ``GateWorker`` workers in front of a gevent upstream (``tests/upstream_app.py``).
  ``--idle`` connections that never finish a request head (half send nothing, half part of one)
  and ``--downloads`` signed-in long downloads (``/drip``, ``--probe-seconds`` + 10 s each) are
  held open at once; meanwhile signed-in requests, each on a fresh connection, go out at a steady
  ``--rate``: their p50/p99/max latency (target: p99 < 200 ms, none failed, no held connection
  dropped), and the workers' RSS (VmRSS) growth per held connection.
- ``inprocess``: the middleware, not proxy mode: ``bench.apps:gated`` under gunicorn's gevent
  worker vs gthread (4 threads), 1 worker, signed in, wrk pairs: req/s and the ratio.

    python -m bench.scale [--section workers|capacity|inprocess] [--duration 5] [--repeat 3]
                          [--idle 2000] [--downloads 500] [--rate 20] [--probe-seconds 10]

Needs ``wrk`` and ``nginx`` (bench/README.md). The wrk sections pin the servers and wrk to
separate CPUs as bench/http.py does (``--no-pin`` to let the scheduler choose); the capacity
section always lets it choose (its gate has two workers).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import resource
import secrets
import selectors
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench import apps, http
from bench.http import Comparison, Server, Target

GATE_WORKER = "qqgate.worker.GateWorker"
WORKERS_TARGET = 0.9  # gevent's req/s over gthread's
P99_TARGET_MS = 200.0
PATH = "/dashboard?tab=1"
HOLD_SECONDS = 120  # the gate's client_header_timeout and client_idle_timeout in the capacity run
DRIP_CHUNK = 4096  # bytes a second per long download
PARTIAL_HEAD = b"GET /never-finished HTTP/1.1\r\nHost: 127.0.0.1\r\n"

Start = Callable[[], contextlib.AbstractContextManager[Server]]


# --- servers -------------------------------------------------------------------------------------


def sign_in() -> tuple[str, dict[str, str]]:
    """A fresh secret (exported: the servers verify with it) and a signed-in browser's headers."""
    secret = secrets.token_urlsafe(32)
    os.environ["BENCH_SECRET"] = secret
    token = apps.session_token(apps.make_gate())
    return secret, {"Accept": http.HTML, "Cookie": apps.cookie_header(token)}


def gate_ini(directory: Path, secret: str, upstream: str, **extra: object) -> Path:
    keys = {**apps.settings_mapping(secret), "upstream": upstream, **extra}
    path = directory / "gate.ini"
    path.write_text("[qqgate]\n" + "".join(f"{key} = {value}\n" for key, value in keys.items()))
    return path


def serve(worker_class: str, workers: int, threads: int, config: Path) -> Start:
    """``qqgate serve``'s gunicorn: qqgate/gunicorn_conf.py (read through GUNICORN_CMD_ARGS, which
    the command line of bench.http.gunicorn overrides: port, temp dir, worker class, threads)."""
    env = {"QQGATE_CONFIG": str(config), "GUNICORN_CMD_ARGS": "-c python:qqgate.gunicorn_conf"}
    return http.gunicorn("qqgate.wsgi:application", worker_class, workers, threads, env)


def signed_in_check(headers: dict[str, str]) -> Callable[[str], None]:
    """A Target check: 200 signed in, 302 to sign in without the cookie."""

    def check(url: str) -> None:
        http.expect_status(200, headers)(url)
        http.expect_status(302, {"Accept": http.HTML})(url)

    return check


def temp_dir(stack: contextlib.ExitStack) -> Path:
    return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="qqgate-bench-")))


# --- the wrk sections ----------------------------------------------------------------------------


def workers_section(args: argparse.Namespace) -> bool:
    """qqgate serve in proxy mode, 1 worker: GateWorker vs gthread, one nginx upstream."""
    upstream_port = http.free_port()
    with contextlib.ExitStack() as stack:
        stack.enter_context(http.nginx_servers(upstream_port, http.free_port()))
        secret, headers = sign_in()
        config = gate_ini(temp_dir(stack), secret, f"http://127.0.0.1:{upstream_port}")
        check = signed_in_check(headers)
        gthread = serve("gthread", 1, args.gthread_threads, config)
        comparison = Comparison(
            "qqgate serve, proxy mode, 1 worker",
            Target("gthread", gthread, headers, check),
            Target("gevent", serve(GATE_WORKER, 1, 1, config), headers, check),
            WORKERS_TARGET,
        )
        return http.run_comparison(comparison, args)


def inprocess_section(args: argparse.Namespace) -> bool:
    """The QQGate middleware around a small app (bench.apps:gated), 1 worker: gevent vs gthread."""
    secret, headers = sign_in()
    env = {"BENCH_SECRET": secret}
    check = signed_in_check(headers)
    gthread = http.gunicorn("bench.apps:gated", "gthread", 1, args.gthread_threads, env)
    comparison = Comparison(
        "QQGate middleware in-process, 1 worker",
        Target("gthread", gthread, headers, check),
        Target("gevent", http.gunicorn("bench.apps:gated", "gevent", 1, 1, env), headers, check),
    )
    return http.run_comparison(comparison, args)


# --- the capacity section ------------------------------------------------------------------------


def get_request(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass
class Download:
    """One long download as the selector loop reads it."""

    sock: socket.socket
    head: bytes = b""
    status: int = 0
    body: int = 0
    ended: bool = False

    def take(self, data: bytes) -> None:
        if self.status:
            self.body += len(data)
            return
        self.head += data
        if b"\r\n\r\n" in self.head:
            head, _, rest = self.head.partition(b"\r\n\r\n")
            code = head.split(b" ", 2)[1:2]
            self.status = int(code[0]) if code and code[0].isdigit() else -1
            self.body = len(rest)


@dataclass
class Crowd:
    """Idle connections and long downloads held open at once, read by one selector loop in a
    thread of its own (``hold_crowd`` opens them, runs the loop and closes everything)."""

    body_size: int
    idle: int = 0
    dropped: int = 0  # idle connections the gate closed (or answered)
    downloads: list[Download] = field(default_factory=list)
    sockets: list[socket.socket] = field(default_factory=list)
    selector: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)
    stop: threading.Event = field(default_factory=threading.Event)

    def connect(self, port: int, data: bytes, download: bool) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sockets.append(sock)
        if data:
            sock.sendall(data)
        sock.setblocking(False)
        state = Download(sock) if download else None
        if state:
            self.downloads.append(state)
        else:
            self.idle += 1
        self.selector.register(sock, selectors.EVENT_READ, state)

    def run(self) -> None:
        while not self.stop.is_set():
            for key, _ in self.selector.select(timeout=0.2):
                self.read(key.fileobj, key.data)  # type: ignore[arg-type]

    def read(self, sock: socket.socket, download: Download | None) -> None:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if download and data:
            download.take(data)
            return
        self.selector.unregister(sock)  # an idle connection's first byte or EOF: the gate let go
        if download:
            download.ended = True
        else:
            self.dropped += 1

    def answering(self) -> int:
        return sum(d.status == 200 for d in self.downloads)

    def still_open(self) -> int:
        return sum(d.status == 200 and not d.ended for d in self.downloads)

    def complete(self) -> int:
        return sum(d.ended and d.status == 200 and d.body == self.body_size for d in self.downloads)


@contextlib.contextmanager
def hold_crowd(
    port: int, idle: int, downloads: int, headers: dict[str, str], seconds: int
) -> Iterator[Crowd]:
    """``idle`` connections (half send nothing, half part of a head) and ``downloads`` downloads of
    ``seconds`` seconds each, held until the block ends."""
    crowd = Crowd(body_size=seconds * DRIP_CHUNK)
    drip = get_request(f"/drip?chunks={seconds}&size={DRIP_CHUNK}&interval=1", headers)
    loop = threading.Thread(target=crowd.run, daemon=True)
    try:
        for n in range(idle):
            crowd.connect(port, PARTIAL_HEAD if n % 2 else b"", download=False)
        for _ in range(downloads):
            crowd.connect(port, drip, download=True)
        loop.start()
        yield crowd
    finally:
        crowd.stop.set()
        if loop.is_alive():
            loop.join()
        for sock in crowd.sockets:
            sock.close()
        crowd.selector.close()


def accepted(port: int) -> int:
    """Connections to ``port`` that a process accepted: established, with an inode, in
    /proc/net/tcp (one still waiting in the listen backlog has no inode yet)."""
    local = f":{port:04X}"
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return sum(row[1].endswith(local) and row[3] == "01" and row[9] != "0" for row in rows)


def wait_until(done: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``done()`` (polled 5 times a second), at most ``timeout``."""
    started = time.monotonic()
    while not done() and time.monotonic() - started < timeout:
        time.sleep(0.2)
    return time.monotonic() - started


def workers_rss_kib(master: int) -> int:
    """The VmRSS of ``master``'s children (gunicorn's workers), summed."""
    total = 0
    for pid in http.process_tree(master)[1:]:
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{pid}/status").read_text()
            if match := re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE):
                total += int(match.group(1))
    return total


def probe(port: int, request: bytes) -> float | None:
    """ms from connect to the end of a 200 answer on a fresh connection; None if it failed."""
    started = time.perf_counter()
    answer = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(request)
            while len(answer) < 1 << 20 and (chunk := sock.recv(65536)):
                answer += chunk
    except OSError:
        return None
    if not answer.startswith(b"HTTP/1.1 200 "):
        return None
    return (time.perf_counter() - started) * 1000


def steady_probes(port: int, request: bytes, rate: float, seconds: int) -> list[float | None]:
    """``rate`` probes a second for ``seconds``, each sent on time whatever the others take."""
    pool = ThreadPoolExecutor(max_workers=32)
    try:
        futures, started = [], time.monotonic()
        for n in range(max(1, round(rate * seconds))):
            time.sleep(max(0.0, started + n / rate - time.monotonic()))
            futures.append(pool.submit(probe, port, request))
        return [future.result() for future in futures]
    finally:
        pool.shutdown(cancel_futures=True)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def start_capacity_servers(stack: contextlib.ExitStack, held: int, secret: str) -> Server:
    """The gevent upstream and, in front of it, the gate (2 GateWorkers); returns the gate."""
    upstream_start = http.gunicorn(
        "tests.upstream_app:application",
        "gevent",
        1,
        1,
        {"GUNICORN_CMD_ARGS": "--worker-connections 5000"},
    )
    upstream = stack.enter_context(upstream_start())
    config = gate_ini(
        temp_dir(stack),
        secret,
        upstream.url,
        client_header_timeout=HOLD_SECONDS,
        client_idle_timeout=HOLD_SECONDS,
        worker_connections=max(2000, held),
    )
    return stack.enter_context(serve(GATE_WORKER, 2, 1, config)())


def capacity_section(args: argparse.Namespace) -> bool:
    """2 GateWorkers holding idle connections and long downloads: latency of the others, memory."""
    held = args.idle + args.downloads
    print(
        f"\n## capacity: 2 GateWorker workers holding {args.idle} idle connections and"
        f" {args.downloads} long downloads; {args.rate:g} requests/s for {args.probe_seconds} s"
    )
    secret, headers = sign_in()
    with contextlib.ExitStack() as stack:
        gate = start_capacity_servers(stack, held, secret)
        port = int(gate.url.rsplit(":", 1)[1])
        request = get_request("/probe", headers)
        if None in [probe(port, request) for _ in range(20)]:  # a check, and a warm-up
            log = gate.log.read_text(errors="replace")[-2000:] if gate.log else ""
            raise RuntimeError(f"{gate.url} does not answer a signed-in GET with 200\n{log}")
        before = workers_rss_kib(gate.pid)
        seconds = args.probe_seconds + 10
        crowd = stack.enter_context(hold_crowd(port, args.idle, args.downloads, headers, seconds))
        waited = wait_until(
            lambda: crowd.answering() == args.downloads and accepted(port) >= held, 60
        )
        print(f"  held: {accepted(port)} connections accepted by the gate after {waited:.1f} s")
        during = workers_rss_kib(gate.pid)
        print(
            f"  gate workers' RSS: {before / 1024:.1f} MiB before, {during / 1024:.1f} MiB holding"
            f" them: {(during - before) / max(held, 1):.1f} KiB per held connection"
        )
        latencies = steady_probes(port, request, args.rate, args.probe_seconds)
        open_after = (args.idle - crowd.dropped, crowd.still_open())
        wait_until(lambda: all(d.ended for d in crowd.downloads), 30)
        return report_capacity(args, latencies, open_after, crowd.complete())


def report_capacity(
    args: argparse.Namespace,
    latencies: list[float | None],
    open_after: tuple[int, int],
    complete: int,
) -> bool:
    print(f"  {'held':<15} {'opened':>7} {'open after the probes':>22}")
    print(f"  {'idle':<15} {args.idle:7} {open_after[0]:22}")
    print(
        f"  {'long downloads':<15} {args.downloads:7} {open_after[1]:22}  ({complete} read in full)"
    )
    done = [ms for ms in latencies if ms is not None]
    failed = len(latencies) - len(done)
    p99 = percentile(done, 99) if done else math.inf
    print(f"  {'probes':<15} {'sent':>7} {'failed':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    if done:
        print(
            f"  {'':<15} {len(latencies):7} {failed:7} {percentile(done, 50):8.2f} {p99:8.2f}"
            f" {max(done):8.2f}"
        )
    ok = (
        p99 < P99_TARGET_MS
        and not failed
        and open_after == (args.idle, args.downloads)
        and complete == args.downloads
    )
    print(
        f"  target p99 < {P99_TARGET_MS:.0f} ms, no probe failed, every held connection open"
        f" and every download whole: {'met' if ok else 'MISSED'}"
    )
    return ok


# --- main ----------------------------------------------------------------------------------------

SECTIONS: dict[str, Callable[[argparse.Namespace], bool]] = {
    "workers": workers_section,
    "capacity": capacity_section,
    "inprocess": inprocess_section,
}


def raise_fd_limit() -> int:
    """Raise this process's (and so its servers') open-file soft limit to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--section", choices=list(SECTIONS), action="append")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per server")
    parser.add_argument("--repeat", type=int, default=3, help="pairs per comparison")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--gthread-threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--idle", type=int, default=2000, help="idle connections held")
    parser.add_argument("--downloads", type=int, default=500, help="long downloads held")
    parser.add_argument("--rate", type=float, default=20, help="probe requests per second")
    parser.add_argument("--probe-seconds", type=int, default=10, help="seconds of probes")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin to CPUs")
    parser.set_defaults(threads=2, path=PATH)
    args = parser.parse_args(argv)
    if not 1 <= args.probe_seconds <= HOLD_SECONDS // 2 or args.rate <= 0:
        parser.error(f"--probe-seconds must be 1 to {HOLD_SECONDS // 2}, --rate above 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    files = raise_fd_limit()
    if files < 2 * (args.idle + args.downloads) + 100:
        raise SystemExit(f"open-file limit {files} too low for --idle and --downloads")
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency, {args.repeat}"
        f" pairs; nproc {os.cpu_count()}; python {sys.version.split()[0]}; open-file limit {files}"
    )
    ok = True
    try:
        for name in args.section or list(SECTIONS):
            # Pinned like bench/http.py, but not the capacity run's 2 gate workers and upstream.
            http.SERVER_CPUS, http.WRK_CPUS = http.cpu_split(args.pin and name != "capacity")
            ok = SECTIONS[name](args) and ok
    except KeyboardInterrupt:
        print("interrupted: every server stopped", file=sys.stderr)
        return 1
    except (OSError, RuntimeError) as error:
        print(f"bench.scale failed: {error}", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
