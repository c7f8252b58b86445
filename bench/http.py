"""Requests per second over HTTP: gunicorn serving the bare app and the gated app, loaded by wrk.

Everything runs on 127.0.0.1: servers on free ports, each with its own temp dir (log, pid file,
worker heartbeat files), started and stopped by this script. For each pair the two servers are
started side by side, as new processes (so that no one process's luck weighs on every ratio; how
far ratios stray when nothing differs is what ``--section noise`` shows); then wrk loads one and
then the other, back to back (the order flips each pair, so drift hits both alike), and the ratio
is taken per pair. The gated app is loaded with
a valid session cookie among other cookies, as a signed-in browser sends it.

Besides req/s and wrk's p50/p99, each run reports the server's CPU time per request (all its
processes, from /proc): on a shared machine that figure is much steadier than req/s, because time
stolen by other processes does not count in it.

    python -m bench.http [--duration 5] [--repeat 3] [--section gate|in-call|noise|proxy]

Needs ``wrk`` (Debian/Ubuntu: ``apt-get install wrk``). By default the servers are pinned to the
last CPU and wrk to the others (``--no-pin`` to let the scheduler choose).

Adding a section: write a function that returns
:class:`Comparison` objects, each two :class:`Target` (anything with a ``start`` context manager
that yields a :class:`Server`), and register it in ``SECTIONS``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shutil
import signal
import statistics
import string
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.ports import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.97
HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass
class Result:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    cpu_us_per_request: float | None = None
    errors: str = ""


@dataclass
class Server:
    """A running server: its URL and the process whose tree's CPU time is counted."""

    url: str
    pid: int
    log: Path | None = None

    def cpu_seconds(self) -> float | None:
        """User + system CPU of the process and its children (gunicorn's workers), if known."""
        try:
            return sum(_cpu_ticks(pid) for pid in process_tree(self.pid)) / CLOCK_TICKS
        except OSError:
            return None


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def process_tree(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = [root], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        tree += children
        frontier = children
    return tree


@dataclass
class Target:
    """Something wrk can load: how to start it, the headers each request carries, and a check
    that it answers as it should (raises otherwise)."""

    name: str
    start: Callable[[], contextlib.AbstractContextManager[Server]]
    headers: dict[str, str] = field(default_factory=dict)
    check: Callable[[str], None] | None = None


@dataclass
class Comparison:
    label: str
    baseline: Target
    candidate: Target
    target_ratio: float | None = None
    # Called with the running servers once the pairs are done (more figures to print).
    report: Callable[[dict[str, Server]], None] | None = None


# --- processes ---------------------------------------------------------------------------------

SERVER_CPUS: set[int] | None = None
WRK_CPUS: set[int] | None = None


def cpu_split(pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """CPUs for (servers, wrk): the last CPU for the servers, the others for wrk, so that the two
    do not take turns on one core (the biggest source of noise on a 2-core machine)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not pin or len(cpus) < 2:
        return None, None
    return {cpus[-1]}, set(cpus[:-1])


def _pinned(cpus: set[int] | None) -> Callable[[], None] | None:
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


@contextlib.contextmanager
def running(argv: list[str], port: int, env: dict[str, str], workdir: Path) -> Iterator[Server]:
    """Run ``argv`` (a server listening on 127.0.0.1:``port``) until the block ends."""
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - our own argv
        argv,
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_pinned(SERVER_CPUS),
    )
    try:
        wait_for_port(port, process)
        yield Server(f"http://127.0.0.1:{port}", process.pid, workdir / "server.log")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def gunicorn_extra_flags() -> list[str]:
    # Recent gunicorn opens a control socket by default; ours must leave nothing behind.
    help_text = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--help"], capture_output=True, text=True, check=False
    ).stdout
    return ["--no-control-socket"] if "--no-control-socket" in help_text else []


def gunicorn(
    app: str, worker_class: str, workers: int, threads: int, env: dict[str, str]
) -> Callable[[], contextlib.AbstractContextManager[Server]]:
    """A Target's ``start``: ``gunicorn app`` on a free port, in its own temp dir."""

    @contextlib.contextmanager
    def start() -> Iterator[Server]:
        port = free_port()
        with tempfile.TemporaryDirectory(prefix="qqgate-bench-") as tmp:
            workdir = Path(tmp)
            argv = [
                *(sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"),
                *("--workers", str(workers), "--worker-class", worker_class),
                *("--threads", str(threads), "--log-level", "warning"),
                *("--pid", str(workdir / "gunicorn.pid"), "--worker-tmp-dir", str(workdir)),
                *gunicorn_extra_flags(),
                app,
            ]
            full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
            with running(argv, port, full_env, workdir) as server:
                yield server

    return start


# --- wrk -----------------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _latency_ms(text: str, percentile: str) -> float:
    match = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if not match:
        raise RuntimeError(f"no {percentile}% latency in wrk's output:\n{text}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(text: str) -> Result:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.MULTILINE)
    total = re.search(r"^\s*(\d+) requests in", text, re.MULTILINE)
    if not rps or not total:
        raise RuntimeError(f"no Requests/sec in wrk's output:\n{text}")
    errors = [
        line.strip()
        for line in text.splitlines()
        if line.strip().startswith(("Socket errors", "Non-2xx"))
    ]
    return Result(
        float(rps.group(1)),
        _latency_ms(text, "50"),
        _latency_ms(text, "99"),
        int(total.group(1)),
        errors="; ".join(errors),
    )


def wrk(server: Server, headers: dict[str, str], args: argparse.Namespace, seconds: int) -> Result:
    argv = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    cpu_before = server.cpu_seconds()
    done = subprocess.run(  # noqa: S603 - our own argv
        [*argv, server.url + args.path],
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=_pinned(WRK_CPUS),
    )
    cpu_after = server.cpu_seconds()
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}{done.stderr}")
    result = parse_wrk(done.stdout)
    if cpu_before is not None and cpu_after is not None and result.requests:
        result.cpu_us_per_request = (cpu_after - cpu_before) / result.requests * 1e6
    return result


# --- comparisons ---------------------------------------------------------------------------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def expect_status(status: int, headers: dict[str, str], path: str = "/dashboard"):
    """A Target check: a GET of ``path`` with ``headers`` answers ``status``."""

    def check(url: str) -> None:
        opener = urllib.request.build_opener(_NoRedirects)
        request = urllib.request.Request(url + path, headers=headers)  # noqa: S310 - loopback
        try:
            with opener.open(request, timeout=5) as response:
                got = response.status
        except urllib.error.HTTPError as error:
            got = error.code
        if got != status:
            raise RuntimeError(f"{url}{path}: expected HTTP {status}, got {got}")

    return check


def gate_section(args: argparse.Namespace, timed: bool = False) -> list[Comparison]:
    """Bare app vs gated app (signed in), under sync and gthread workers."""
    from bench import apps

    secret = secrets.token_urlsafe(32)
    os.environ["BENCH_SECRET"] = secret  # the token minted here must verify in the workers
    token = apps.session_token(apps.make_gate())
    signed_in = {"Accept": HTML, "Cookie": apps.cookie_header(token)}
    anonymous = {"Accept": HTML, "Cookie": apps.cookie_header(None)}
    env = {"BENCH_SECRET": secret}

    def gated_check(url: str) -> None:
        expect_status(200, signed_in)(url)
        expect_status(302, anonymous)(url)

    comparisons = []
    for worker_class in ("sync", "gthread"):
        threads = args.gthread_threads if worker_class == "gthread" else 1
        prefix = "bench.apps:timed_" if timed else "bench.apps:"
        bare = gunicorn(f"{prefix}bare", worker_class, args.workers, threads, env)
        gated = gunicorn(f"{prefix}gated", worker_class, args.workers, threads, env)
        comparisons.append(
            Comparison(
                f"gunicorn {worker_class}" + (", timed in the worker" if timed else ""),
                Target("bare", bare, signed_in, expect_status(200, signed_in)),
                Target("gated", gated, signed_in, gated_check),
                TARGET_RATIO,
                report=_print_in_call if timed else None,
            )
        )
    return comparisons


def noise_section(args: argparse.Namespace) -> list[Comparison]:
    """The bare app against itself (two servers, same code): how far a ratio strays when nothing
    differs, the measurement's floor on this machine."""
    env = {"BENCH_SECRET": secrets.token_urlsafe(32)}
    headers = {"Accept": HTML, "Cookie": "a=1"}
    comparisons = []
    for worker_class in ("sync", "gthread"):
        threads = args.gthread_threads if worker_class == "gthread" else 1
        start = gunicorn("bench.apps:bare", worker_class, args.workers, threads, env)
        comparisons.append(
            Comparison(
                f"gunicorn {worker_class}, nothing differs",
                Target("bare", start, headers, expect_status(200, headers)),
                Target("bare-too", start, headers, expect_status(200, headers)),
            )
        )
    return comparisons


def in_call_section(args: argparse.Namespace) -> list[Comparison]:
    """The gate section with each app call timed inside the worker (``bench.apps.Timed``): the
    gate's own cost per request where it runs, free of the noise of req/s on a shared machine."""
    return gate_section(args, timed=True)


def _print_in_call(servers: dict[str, Server]) -> None:
    means = {}
    for name, server in servers.items():
        with urllib.request.urlopen(server.url + "/__in_call", timeout=5) as response:  # noqa: S310
            means[name] = float(response.read().decode().split()[0])
    print(
        f"  in the worker: bare {means['bare']:.2f}, gated {means['gated']:.2f} µs per app call;"
        f" the gate adds {means['gated'] - means['bare']:+.2f} µs per request"
    )


# Servers a section keeps running across its comparisons (the shared upstream); closed by main().
SECTION_RESOURCES = contextlib.ExitStack()
PROXY_TARGETS = {"werkzeug": 1.25, "wsgiproxy2": 1.5}  # qqgate's req/s over each peer's


def proxy_section(args: argparse.Namespace) -> list[Comparison]:
    """qqgate's proxy mode (gate on, signed in) against werkzeug's ProxyMiddleware, WSGIProxy2,
    nginx proxy_pass and the upstream itself, all in front of one nginx upstream."""
    from bench import apps

    args.path = "/app" + args.path  # see bench/proxies.py: werkzeug cannot proxy "/"
    upstream_port, nginx_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    nginx = SECTION_RESOURCES.enter_context(nginx_servers(upstream_port, nginx_port))
    secret = secrets.token_urlsafe(32)
    os.environ["BENCH_SECRET"] = secret
    token = apps.session_token(apps.make_gate())
    signed_in = {"Accept": HTML, "Cookie": apps.cookie_header(token)}
    config = Path(SECTION_RESOURCES.enter_context(tempfile.TemporaryDirectory())) / "gate.ini"
    config.write_text(
        "[qqgate]\n"
        + "".join(f"{key} = {value}\n" for key, value in apps.settings_mapping(secret).items())
        + f"upstream = {upstream}\n"
    )
    env = {"BENCH_UPSTREAM": upstream, "BENCH_SECRET": secret, "QQGATE_CONFIG": str(config)}

    def proxy(app: str) -> Callable[[], contextlib.AbstractContextManager[Server]]:
        return gunicorn(app, "gthread", args.workers, args.gthread_threads, env)

    path = args.path.partition("?")[0]
    answers_200 = expect_status(200, signed_in, path)

    def gate_check(url: str) -> None:
        answers_200(url)
        expect_status(302, {"Accept": HTML}, path)(url)

    qqgate = Target("qqgate", proxy("qqgate.wsgi:application"), signed_in, gate_check)
    peers = {
        "werkzeug": Target("werkzeug", proxy("bench.proxies:werkzeug_proxy()"), signed_in),
        "wsgiproxy2": Target("wsgiproxy2", proxy("bench.proxies:wsgiproxy2()"), signed_in),
        "nginx": Target("nginx", _already(nginx, f"http://127.0.0.1:{nginx_port}"), signed_in),
        "direct": Target("direct", _already(nginx, upstream), signed_in),
    }
    for peer in peers.values():
        peer.check = answers_200
    return [
        Comparison(f"proxy vs {name}", peer, qqgate, PROXY_TARGETS.get(name))
        for name, peer in peers.items()
    ]


@contextlib.contextmanager
def nginx_servers(upstream_port: int, proxy_port: int) -> Iterator[int]:
    """One nginx: the upstream (a fixed 13-byte answer) and a proxy_pass in front of it."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise SystemExit("nginx not found: apt-get install nginx")
    template = string.Template((ROOT / "bench" / "nginx.conf.template").read_text())
    with tempfile.TemporaryDirectory(prefix="qqgate-bench-nginx-") as tmp:
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(
            template.substitute(tmp=tmp, upstream_port=upstream_port, proxy_port=proxy_port)
        )
        argv = [binary, "-c", str(conf), "-p", tmp]
        # nginx opens every listener at once: when the proxy port answers, the upstream does too.
        with running(argv, proxy_port, dict(os.environ), Path(tmp)) as server:
            yield server.pid


def _already(pid: int, url: str) -> Callable[[], contextlib.AbstractContextManager[Server]]:
    """A Target's ``start`` for a server that the section already runs."""

    @contextlib.contextmanager
    def start() -> Iterator[Server]:
        yield Server(url, pid)

    return start


SECTIONS = {
    "gate": gate_section,
    "in-call": in_call_section,
    "noise": noise_section,
    "proxy": proxy_section,
}


def run_comparison(comparison: Comparison, args: argparse.Namespace) -> bool:
    print(f"\n## {comparison.label}: {comparison.candidate.name} vs {comparison.baseline.name}")
    pair = (comparison.baseline, comparison.candidate)
    results: dict[str, list[Result]] = {t.name: [] for t in pair}
    for rep in range(args.repeat):
        # New processes for every pair, so that no one process's luck (hash seed, memory layout)
        # weighs on every ratio of the comparison.
        with contextlib.ExitStack() as stack:
            servers = {t.name: stack.enter_context(t.start()) for t in pair}
            for target in pair:
                if target.check:
                    _check(target, servers[target.name])
                wrk(servers[target.name], target.headers, args, args.warmup)
            for target in pair if rep % 2 == 0 else pair[::-1]:
                result = wrk(servers[target.name], target.headers, args, args.duration)
                results[target.name].append(result)
                print(f"  run {rep + 1} {target.name:<10} {_row(result)}")
            if comparison.report:
                comparison.report(servers)
    return summarize(comparison, results)


def _check(target: Target, server: Server) -> None:
    assert target.check is not None
    try:
        target.check(server.url)
    except Exception as error:
        log = server.log.read_text(errors="replace")[-3000:] if server.log else ""
        message = f"{target.name} at {server.url} failed its check: {error}"
        raise SystemExit(f"{message}\n{log}") from None


def _row(result: Result) -> str:
    cpu = result.cpu_us_per_request
    return (
        f"{result.requests_per_second:9.0f} req/s  p50 {result.p50_ms:6.2f} ms"
        f"  p99 {result.p99_ms:6.2f} ms"
        + (f"  CPU {cpu:6.1f} µs/req" if cpu is not None else "")
        + (f"  [{result.errors}]" if result.errors else "")
    )


def summarize(comparison: Comparison, results: dict[str, list[Result]]) -> bool:
    base, cand = results[comparison.baseline.name], results[comparison.candidate.name]
    pairs = list(zip(base, cand, strict=True))
    ratios = [c.requests_per_second / b.requests_per_second for b, c in pairs]
    print(f"  {'medians':<10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU µs/req':>11}")
    for name, rs in results.items():
        cpus = [r.cpu_us_per_request for r in rs if r.cpu_us_per_request is not None]
        print(
            f"  {name:<10} {statistics.median(r.requests_per_second for r in rs):9.0f}"
            f" {statistics.median(r.p50_ms for r in rs):8.2f}"
            f" {statistics.median(r.p99_ms for r in rs):8.2f}"
            f" {statistics.median(cpus) if cpus else float('nan'):11.1f}"
        )
    ratio = statistics.median(ratios)
    name = f"{comparison.candidate.name}/{comparison.baseline.name}"
    line = f"  {name} req/s: median of pairs {ratio:.3f} ({', '.join(f'{r:.3f}' for r in ratios)})"
    ok = comparison.target_ratio is None or ratio >= comparison.target_ratio
    if comparison.target_ratio is not None:
        line += f"; target ≥ {comparison.target_ratio}: {'met' if ok else 'MISSED'}"
    print(line)
    cpu_pairs = [
        (b.cpu_us_per_request, c.cpu_us_per_request)
        for b, c in pairs
        if b.cpu_us_per_request and c.cpu_us_per_request
    ]
    if cpu_pairs:
        extra = statistics.median(c - b for b, c in cpu_pairs)
        cpu_ratio = statistics.median(b / c for b, c in cpu_pairs)
        inverse = f"{comparison.baseline.name}/{comparison.candidate.name}"
        print(f"  {name} CPU: {extra:+.1f} µs/req; {inverse} CPU per request {cpu_ratio:.3f}")
    return ok


def main(argv: list[str] | None = None) -> int:
    global SERVER_CPUS, WRK_CPUS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--section", choices=sorted(SECTIONS), action="append")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per server")
    parser.add_argument("--repeat", type=int, default=3, help="pairs per comparison")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers per server")
    parser.add_argument("--gthread-threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--path", default="/dashboard?tab=1")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin to CPUs")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    SERVER_CPUS, WRK_CPUS = cpu_split(args.pin)
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency, "
        f"{args.repeat} pairs; gunicorn --workers {args.workers}; nproc {os.cpu_count()}; "
        f"python {sys.version.split()[0]}; servers on CPUs {SERVER_CPUS or 'any'}, "
        f"wrk on {WRK_CPUS or 'any'}"
    )
    ok = True
    with SECTION_RESOURCES:
        for section in args.section or ["gate"]:
            for comparison in SECTIONS[section](args):
                ok = run_comparison(comparison, args) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
