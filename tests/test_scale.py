"""Proxy mode at scale (issue 11): ``qqgate serve`` with its shipped worker, two of them, facing
slow clients, stalled bodies, many long downloads and event streams at once, from raw sockets.

Under the former gthread workers (2 x 8 threads) 10 to 17 connections that each sent one byte of
a head took every thread: nobody else got in. Every load here is bounded in count and time.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
import time

import pytest
import requests

from .edge import Client, request, serve_gate
from .live import signed_in
from .security.test_request_smuggling import ALICE
from .servers import Gunicorn, free_port

SLOW_HEADS, SLOW_UPLOADS, DOWNLOADS = 150, 60, 200
DRIP = "chunks=12&size=4096&interval=0.5"  # 48 KiB over 6 s
DRIP_BYTES = 12 * 4096


@pytest.fixture(scope="module")
def upstream():
    port = free_port()
    env = {"UPSTREAM_SELF": f"http://127.0.0.1:{port}"}
    extra = ["--worker-class", "gevent", "--worker-connections", "2000"]
    server = Gunicorn("tests.upstream_app:application", env, port=port, extra=extra).start()
    yield server
    server.stop()


def expected_drip() -> str:
    return hashlib.sha256(b"".join(bytes([n]) * 4096 for n in range(12))).hexdigest()


class Dribblers:
    """Sockets that each send a request one byte at a time, one byte a second."""

    def __init__(self, port: int, heads: int, uploads: int) -> None:
        self.socks: list[tuple[socket.socket, bytes]] = []
        for _ in range(heads):
            self._open(port, request("GET", "/slow-head", signed_in(ALICE)))
        for _ in range(uploads):
            head = request("POST", "/upload", {"Content-Length": "100000", **signed_in(ALICE)})
            self._open(port, head + b"x" * 100000, whole_head=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drip, daemon=True)
        self._thread.start()

    def _open(self, port: int, data: bytes, whole_head: bool = False) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if whole_head:
            head_end = data.index(b"\r\n\r\n") + 4
            sock.sendall(data[:head_end])
            data = data[head_end:]
        self.socks.append((sock, data))

    def _drip(self) -> None:
        position = 0
        while not self._stop.wait(1.0):
            for sock, data in self.socks:
                if position < len(data):
                    with contextlib.suppress(OSError):  # dropped: what a deadline does
                        sock.send(data[position : position + 1])
            position += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for sock, _ in self.socks:
            sock.close()


def download(port: int, results: list) -> None:
    try:
        response = requests.get(
            f"http://127.0.0.1:{port}/drip?{DRIP}", headers=signed_in(ALICE), timeout=30
        )
        results.append((response.status_code, hashlib.sha256(response.content).hexdigest()))
    except requests.RequestException as exc:
        results.append((0, repr(exc)))


def test_slow_clients_and_long_downloads_leave_room_for_everyone(upstream, tmp_path) -> None:
    gate = serve_gate(tmp_path, upstream.url, workers=2, client_header_timeout="30")
    dribblers = Dribblers(gate.port, SLOW_HEADS, SLOW_UPLOADS)
    results: list = []
    threads = [
        threading.Thread(target=download, args=(gate.port, results), daemon=True)
        for _ in range(DOWNLOADS)
    ]
    try:
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # every download under way, every dribbler connected
        slowest = 0.0
        for _ in range(10):
            for path, headers in (("/_qqgate/ping", {}), ("/echo", signed_in(ALICE))):
                started = time.monotonic()
                response = requests.get(f"{gate.url}{path}", headers=headers, timeout=5)
                slowest = max(slowest, time.monotonic() - started)
                assert response.status_code == 200, path
            time.sleep(0.3)
        assert slowest < 2.0, f"a request took {slowest:.2f} s"
        for thread in threads:
            thread.join(timeout=30)
    finally:
        dribblers.close()
        log = gate.stop()
    assert len(results) == DOWNLOADS
    assert results == [(200, expected_drip())] * DOWNLOADS, "every long download came whole"
    assert "Traceback" not in log


def test_a_dribbled_head_is_dropped_at_its_deadline(upstream, tmp_path) -> None:
    gate = serve_gate(tmp_path, upstream.url, client_header_timeout="1")
    try:
        sock = socket.create_connection(("127.0.0.1", gate.port), timeout=10)
        started = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\nHo")
        dropped = False
        for _ in range(8):
            time.sleep(0.5)
            try:
                sock.sendall(b"s")
                if sock.recv(1024, socket.MSG_DONTWAIT) == b"":
                    dropped = True
                    break
            except BlockingIOError:
                continue
            except OSError:
                dropped = True
                break
        assert dropped and time.monotonic() - started < 3.5
        sock.close()
    finally:
        log = gate.stop()
    assert "Traceback" not in log


def test_a_stalled_upload_gets_408_and_its_connection_ends(upstream, tmp_path) -> None:
    gate = serve_gate(tmp_path, upstream.url, client_idle_timeout="1")
    try:
        client = Client(gate.port)
        client.send(request("POST", "/echo", {"Content-Length": "1000", **signed_in(ALICE)}, b"x"))
        started = time.monotonic()
        (answer,) = client.answers(1, timeout=10)
        assert answer.status == 408 and time.monotonic() - started < 4
        assert client.answers(1, timeout=5) == [] and client.closed
    finally:
        log = gate.stop()
    assert "request not forwarded" in log and "Traceback" not in log


def test_a_client_that_stops_reading_is_dropped(upstream, tmp_path) -> None:
    gate = serve_gate(tmp_path, upstream.url, client_idle_timeout="1")
    try:
        sock = socket.create_connection(("127.0.0.1", gate.port), timeout=10)
        sock.sendall(request("GET", "/download?size=67108864", signed_in(ALICE)))
        time.sleep(4)  # read nothing: the gate's sends stall, then it gives up
        received = 0
        while chunk := sock.recv(1 << 20):
            received += len(chunk)
        assert received < 67108864, "the connection ended before the whole download"
        sock.close()
        # The worker is still serving.
        assert requests.get(f"{gate.url}/_qqgate/ping", timeout=5).status_code == 200
    finally:
        log = gate.stop()
    assert "Traceback" not in log


def read_events(url: str, results: list) -> None:
    """One event stream: how long after being sent each event arrived."""
    try:
        with requests.get(url, headers=signed_in(ALICE), stream=True, timeout=20) as response:
            assert response.headers["Content-Type"] == "text/event-stream"
            delays = [
                time.time() - float(line[6:])
                for line in response.iter_lines()
                if line.startswith(b"data: ")
            ]
        results.append(delays)
    except (requests.RequestException, AssertionError) as exc:
        results.append(repr(exc))


def test_server_sent_events_arrive_as_they_are_sent(upstream, tmp_path) -> None:
    """40 event streams at once on one worker (more than gthread's threads), each event reaching
    its client as it is sent, while the gate still answers others."""
    gate = serve_gate(tmp_path, upstream.url)
    results: list = []
    url = f"{gate.url}/events?count=5&interval=0.6"
    streams = [
        threading.Thread(target=read_events, args=(url, results), daemon=True) for _ in range(40)
    ]
    try:
        for stream in streams:
            stream.start()
        time.sleep(0.5)
        started = time.monotonic()
        assert requests.get(f"{gate.url}/_qqgate/ping", timeout=5).status_code == 200
        assert time.monotonic() - started < 2.0
        for stream in streams:
            stream.join(timeout=20)
    finally:
        gate.stop()
    assert len(results) == 40
    for delays in results:
        assert isinstance(delays, list) and len(delays) == 5, delays
        # Each event reached the client within a fraction of the gap before the next one.
        assert max(delays) < 0.5, delays
