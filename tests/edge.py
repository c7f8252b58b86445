"""Servers and a client for the proxy-at-the-edge tests: what an attacker's raw socket sends to
``qqgate serve``, and upstreams that record every request they receive.

- ``RecordingUpstream`` is a keep-alive HTTP/1.1 server on a raw socket that frames requests
  strictly (llhttp, as Node.js does) and records each one: what a well-behaved app server sees.
- ``LaxUpstream`` is Python's ``http.server`` in HTTP/1.1 mode with handlers that never read a
  body: what many legacy apps do, and the upstream that turns an unread body into a request.

Both answer every request with JSON naming the request's number, method, path and the identity
header they received, so a test can tell whose answer reached whom.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httptools

from .live import write_gate_ini
from .servers import ROOT, Gunicorn, free_port

OPENID_HEADER = "x-qq-openid"


@dataclass
class Seen:
    """One request as an upstream framed it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    connection: int = 0

    @property
    def openid(self) -> str | None:
        return self.headers.get(OPENID_HEADER)


def answer_bytes(number: int, seen: Seen, close: bool) -> bytes:
    body = json.dumps(
        {"n": number, "method": seen.method, "path": seen.path, "openid": seen.openid}
    ).encode()
    connection = "Connection: close\r\n" if close else ""
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%b"
        % (connection.encode(), len(body), body)
    )


class RecordingUpstream:
    """A strict keep-alive upstream on a raw socket, a thread per connection; ``/slow`` answers
    after ``slow_seconds``."""

    def __init__(self, slow_seconds: float = 1.5) -> None:
        self.seen: list[Seen] = []
        self.slow_seconds = slow_seconds
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        number = 0
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            number += 1
            threading.Thread(target=self._serve, args=(sock, number), daemon=True).start()

    def _serve(self, sock: socket.socket, number: int) -> None:
        protocol = _RequestProtocol(self, sock, number)
        parser = httptools.HttpRequestParser(protocol)
        protocol.parser = parser
        with sock:
            try:
                while not protocol.closed and (data := sock.recv(65536)):
                    parser.feed_data(data)
            except (OSError, httptools.HttpParserError):
                return

    def record(self, seen: Seen) -> int:
        with self._lock:
            self.seen.append(seen)
            return len(self.seen)

    def close(self) -> None:
        self._listener.close()


@dataclass
class _RequestProtocol:
    upstream: RecordingUpstream
    sock: socket.socket
    number: int
    parser: object = None
    closed: bool = False
    url: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)

    def on_message_begin(self) -> None:
        self.url, self.headers, self.body = b"", {}, bytearray()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, data: bytes) -> None:
        self.body += data

    def on_message_complete(self) -> None:
        method = self.parser.get_method().decode()  # type: ignore[attr-defined]
        seen = Seen(method, self.url.decode("latin-1"), self.headers, bytes(self.body), self.number)
        count = self.upstream.record(seen)
        if seen.path.startswith("/slow"):
            time.sleep(self.upstream.slow_seconds)
        close = not self.parser.should_keep_alive()  # type: ignore[attr-defined]
        self.sock.sendall(answer_bytes(count, seen, close))
        if close:
            self.closed = True


class LaxUpstream:
    """``http.server`` (HTTP/1.1, keep-alive) whose handlers never read a request body."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                seen = Seen(self.command, self.path, headers)
                upstream.seen.append(seen)
                raw = answer_bytes(len(upstream.seen), seen, close=False)
                self.wfile.write(raw)

            do_GET = do_POST = do_DELETE = do_OPTIONS = do_PUT = answer

            def do_HEAD(self) -> None:
                self.answer()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve_gate(
    directory: Path,
    upstream: str,
    workers: int = 1,
    env: dict[str, str] | None = None,
    **extra: str,
) -> Gunicorn:
    """``qqgate serve`` (the shipped gunicorn settings) in front of ``upstream``: one worker by
    default, so that every client shares its pool of upstream connections, as an attacker would
    want."""
    port = free_port()
    config = write_gate_ini(directory, port, upstream, **{"upstream_timeout": "5", **extra})
    server = Gunicorn("unused", env, port=port)
    bind = f"127.0.0.1:{port}"
    server.args = [sys.executable, "-m", "qqgate.cli", "serve", "-c", str(config), "--bind", bind]
    server.args += ["--workers", str(workers)]
    server.env["PYTHONPATH"] = str(ROOT)
    return server.start()


# --- the attacker's side: raw bytes in, answers out ------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    complete: bool  # the message ended as its framing said (not cut by a close)

    def json(self) -> dict:
        return json.loads(self.body)


class _AnswerProtocol:
    def __init__(self) -> None:
        self.answers: list[Answer] = []
        self._headers: dict[str, str] = {}
        self._body = bytearray()
        self.parser: httptools.HttpResponseParser | None = None

    def on_message_begin(self) -> None:
        self._headers, self._body = {}, bytearray()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, data: bytes) -> None:
        self._body += data

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()  # type: ignore[union-attr]
        self.answers.append(Answer(status, self._headers, bytes(self._body), True))
        self._headers, self._body = {}, bytearray()

    def partial(self) -> Answer | None:
        if not self._headers:
            return None
        status = self.parser.get_status_code()  # type: ignore[union-attr]
        return Answer(status, self._headers, bytes(self._body), False)


class Client:
    """A raw keep-alive connection to the gate."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self._protocol = _AnswerProtocol()
        self._parser = httptools.HttpResponseParser(self._protocol)
        self._protocol.parser = self._parser
        self.closed = False

    def send(self, raw: bytes) -> None:
        self.sock.sendall(raw)

    def answers(self, count: int, timeout: float = 10.0) -> list[Answer]:
        """Read until ``count`` answers arrived or the gate closed; a cut answer comes last."""
        protocol = self._protocol
        self.sock.settimeout(timeout)
        while len(protocol.answers) < count and not self.closed:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                self.closed = True
                break
            self._parser.feed_data(data)
        got, protocol.answers = protocol.answers, []
        if self.closed and len(got) < count and (cut := protocol.partial()):
            got.append(cut)
        return got

    def head_status(self, timeout: float = 10.0) -> int:
        """The status of an answer to a HEAD request (which has no body, whatever it says)."""
        self.sock.settimeout(timeout)
        data = b""
        while b"\r\n\r\n" not in data:
            more = self.sock.recv(65536)
            if not more:
                break
            data += more
        return int(data.split(b" ", 2)[1])

    def close(self) -> None:
        self.sock.close()


def request(
    method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: gate.example"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def inner_request(method: str, path: str, **headers: str) -> bytes:
    """A request hidden in a body: the one an attacker wants the upstream to run."""
    lines = [f"{method} {path} HTTP/1.1", "Host: upstream"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
