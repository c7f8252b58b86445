"""Streaming through the proxy: a 1 GiB download and a 1 GiB upload, throughput and worker memory.

An upstream (``bench.stream:upstream``, gunicorn) serves and swallows the bytes; the gate in proxy
mode (``qqgate.wsgi:application``, one gthread worker) sits in front; this script is the client,
signed in with a session cookie. For each direction it reports MiB/s and the gate worker's peak RSS
(VmHWM) before and after, and checks the target of issue 5: the peak grows by less than 64 MiB.

    python -m bench.stream            # --size-mib 1024
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import requests

from bench.http import free_port, gunicorn_extra_flags, process_tree, wait_for_port
from qqgate.session import Identity, SessionCodec

MiB = 1024 * 1024
SECRET = "bench-only-secret-not-for-production-0123456789"  # noqa: S105
TARGET_GROWTH_MIB = 64
ROOT = Path(__file__).resolve().parent.parent


def upstream(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """GET /download?bytes=N streams N zero bytes; POST /upload counts what it reads."""
    if environ["REQUEST_METHOD"] == "POST":
        stream, total = environ["wsgi.input"], 0
        while chunk := stream.read(MiB):
            total += len(chunk)
        body = str(total).encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    size = int(environ.get("QUERY_STRING", "").partition("=")[2] or MiB)
    start_response("200 OK", [("Content-Length", str(size))])
    return _zeros(size)


def _zeros(size: int) -> Iterator[bytes]:
    block = bytes(MiB)
    while size > 0:
        yield block[: min(size, MiB)]
        size -= MiB


def _start(app: str, port: int, env: dict[str, str]) -> subprocess.Popen:
    args = [
        *(sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"),
        *("--workers", "1", "--worker-class", "gthread", "--threads", "4", "--timeout", "120"),
        *gunicorn_extra_flags(),
        app,
    ]
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        args,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
    except RuntimeError as error:
        process.kill()
        raise SystemExit(f"{app} did not start: {error}") from None
    return process


def _worker(master: int) -> int:
    workers = process_tree(master)[1:]
    if not workers:
        raise SystemExit("no gunicorn worker found")
    return workers[0]


def _vm(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no {field}")


def _download(url: str, cookie: dict[str, str], size: int) -> float:
    started, received = time.monotonic(), 0
    with requests.get(
        f"{url}/download?bytes={size}", headers=cookie, stream=True, timeout=120
    ) as r:
        r.raise_for_status()
        for chunk in r.iter_content(MiB):
            received += len(chunk)
    assert received == size, received
    return time.monotonic() - started


def _upload(url: str, cookie: dict[str, str], size: int) -> float:
    started = time.monotonic()
    response = requests.post(f"{url}/upload", data=_zeros(size), headers=cookie, timeout=120)
    response.raise_for_status()
    assert int(response.text) == size, response.text
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    size = parser.parse_args().size_mib * MiB
    upstream_port, gate_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "gate.ini"
        config.write_text(
            "[qqgate]\napp_id = 101000001\napp_key = bench\n"
            f"secret_key = {SECRET}\nredirect_uri = http://127.0.0.1:{gate_port}/_qqgate/callback\n"
            f"cookie_secure = false\nupstream = http://127.0.0.1:{upstream_port}\n"
        )
        servers = [_start("bench.stream:upstream", upstream_port, {})]
        try:
            servers.append(
                _start("qqgate.wsgi:application", gate_port, {"QQGATE_CONFIG": str(config)})
            )
            token = SessionCodec([SECRET], 3600).dumps(
                Identity("A" * 32, "bench", "", None, int(time.time()))
            )
            cookie = {"Cookie": f"qqgate={token}"}
            url = f"http://127.0.0.1:{gate_port}"
            requests.get(f"{url}/download?bytes=1", headers=cookie, timeout=10).raise_for_status()
            worker = _worker(servers[1].pid)
            rows, ok = [], True
            for name, run in (("download", _download), ("upload", _upload)):
                before = _vm(worker, "VmHWM")
                seconds = run(url, cookie, size)
                after = _vm(worker, "VmHWM")
                growth = after - before
                ok &= growth < TARGET_GROWTH_MIB
                rows.append((name, size / MiB / seconds, before, after, growth))
        finally:
            for server in servers:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=30)
    print(
        f"{size // MiB} MiB through the qqgate proxy (1 gthread worker), nproc={os.cpu_count()}, "
        f"Python {sys.version.split()[0]}"
    )
    print(f"{'direction':<10} {'MiB/s':>8} {'VmHWM before':>13} {'after':>8} {'growth':>8}")
    for name, rate, before, after, growth in rows:
        print(f"{name:<10} {rate:>8.0f} {before:>10.1f} MiB {after:>8.1f} {growth:>8.1f}")
    verdict = "met" if ok else "MISSED"
    print(f"target: peak RSS grows < {TARGET_GROWTH_MIB} MiB in either direction: {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
