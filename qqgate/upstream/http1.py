"""One HTTP/1.1 exchange at a time on a kept-alive connection to the upstream: the proxy's client.

The answer is parsed by llhttp (through ``httptools``), the parser Node.js ships and uvicorn uses,
fuzzed and strict by default: this module owns no HTTP parser. It keeps the socket, the bytes
limits, and the rules a reverse proxy adds on top (RFC 9112):

- interim answers (1xx) are skipped; a 101 is refused unless the request asked for an upgrade
  (then the bytes after its head are the start of the tunnel: ``Response.tunnel_bytes``);
- HEAD answers and 204/304 have no body; ``Transfer-Encoding: chunked`` is decoded (extensions
  and trailers are dropped); otherwise ``Content-Length``; otherwise the body runs to the end of
  the connection, which is then never reused;
- a connection is reused only after its answer was read to the end, nothing arrived behind it,
  neither side said ``Connection: close`` (an HTTP/1.0 answer must say ``keep-alive``), and the
  request carried no body.

What cannot be framed or passed on safely raises ``BadResponse``: whatever llhttp refuses (bare CR
or LF, obs-fold, control characters, a Content-Length that is not one number, Transfer-Encoding
with Content-Length), a head over 64 KiB or 100 fields, a version other than 1.0 and 1.1, and a
Transfer-Encoding other than one ``chunked`` (another coding would reach the client undeclared).
A request that cannot be written without changing its meaning (control characters, a method that
is not a token) raises ``BadRequest``.
"""

from __future__ import annotations

import re
import select
import socket
import ssl
from collections.abc import Iterable, Iterator
from typing import Protocol, cast

import httptools

from ..wsgiutil import list_tokens

MAX_HEAD = 64 * 1024
MAX_FIELDS = 100
MAX_INTERIM = 16
# At most 128 KiB per read: for a 256 KiB read glibc's malloc maps, remaps and unmaps memory on
# every call, whatever arrives (16 µs instead of 3; bench/recv_size.py). Heads: 64 KiB at a time.
READ_SIZE = 128 * 1024
HEAD_READ_SIZE = 64 * 1024
# Request bodies are read from the WSGI server's input stream, where larger reads measured faster.
BODY_SEND_SIZE = 256 * 1024
# A small body is sent with the head in one write: one syscall, no Nagle wait between the two.
SMALL_BODY = 64 * 1024
_BLANKS = b" \t"
_VERSIONS = frozenset({"1.0", "1.1"})

# RFC 9110: a token's characters, and what a field value may not hold (controls other than TAB).
_TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_TOKENS = re.compile(_TCHARS)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_TARGET = re.compile(r"[\x21-\x7e\x80-\xff]+")


class Readable(Protocol):
    """A request body as the WSGI server hands it over (``wsgi.input``)."""

    def read(self, size: int, /) -> bytes: ...


class BadResponse(Exception):
    """The upstream's answer breaks HTTP/1.1 framing or field syntax; it is never passed on."""


class BadRequest(ValueError):
    """A request that cannot be written to the upstream as it is (the client's fault: 400)."""


class UpstreamClosed(ConnectionError):
    """The connection ended before an answer began: on a reused connection, the upstream had
    closed it while it sat idle."""


class IncompleteBody(ConnectionError):
    """The connection ended in the middle of a body."""


def request_head(method: str, target: str, headers: dict[str, str]) -> bytes:
    """The request line and fields as bytes, refusing anything that would change their framing."""
    if not _TOKENS.fullmatch(method):
        raise BadRequest("method is not a token")
    if not _TARGET.fullmatch(target):
        raise BadRequest("request target is empty or holds spaces or control characters")
    if "" in headers or not _TOKENS.fullmatch("".join(headers)):
        raise BadRequest("a header name is not a token")
    if _CONTROL.search("\t".join(headers.values())):
        raise BadRequest("a header value holds control characters")
    fields = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
    try:
        return f"{method} {target} HTTP/1.1\r\n{fields}\r\n".encode("latin-1")
    except UnicodeEncodeError:
        raise BadRequest("a header is not latin-1 (WSGI's header encoding)") from None


class Connection:
    """A socket to the upstream. One that carried a request body is ``spent``: never reused, in
    case the upstream left the body unread and would take it for the next request."""

    __slots__ = ("sock", "spent")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.spent = False

    @classmethod
    def open(
        cls,
        host: str,
        port: int,
        *,
        connect_timeout: float,
        timeout: float,
        tls: ssl.SSLContext | None = None,
    ) -> Connection:
        sock = socket.create_connection((host, port), timeout=connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls is not None:
                sock = tls.wrap_socket(sock, server_hostname=host)
            sock.settimeout(timeout)
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    def idle_and_open(self) -> bool:
        """For a pooled connection: True when nothing has arrived on it since its last answer.
        Anything readable is either the upstream's close or bytes that belong to no request."""
        sock = self.sock
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):  # closed meanwhile
            return False
        return not readable

    def close(self) -> None:
        self.sock.close()

    # --- request ------------------------------------------------------------------------------

    def send(
        self, head: bytes, body: Readable | Iterable[bytes] | None = None, length: int | None = None
    ) -> None:
        """Write ``head`` and ``body``: a readable stream of ``length`` bytes, or (``length``
        None) an iterable of chunks sent with chunked framing."""
        sock = self.sock
        if body is None:
            sock.sendall(head)
            return
        self.spent = True
        if length is not None:  # a stream (file objects iterate too: length decides)
            self._send_sized(head, cast(Readable, body), length)
        else:
            sock.sendall(head)
            for chunk in cast(Iterable[bytes], body):
                if chunk:
                    sock.sendall(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            sock.sendall(b"0\r\n\r\n")

    def _send_sized(self, head: bytes, stream: Readable, length: int) -> None:
        sock = self.sock
        if length <= SMALL_BODY:
            data = _read_exactly(stream, length)
            sock.sendall(head + data)
            return
        sock.sendall(head)
        remaining = length
        while remaining:
            chunk = stream.read(min(BODY_SEND_SIZE, remaining))
            if not chunk:
                raise BadRequest("the request body ended before its Content-Length")
            sock.sendall(chunk)
            remaining -= len(chunk)

    # --- response -----------------------------------------------------------------------------

    def response(self, method: str, *, upgrade: str | None = None) -> Response:
        """Read the final answer's head (after any interim 1xx answers). With ``upgrade`` (the
        protocol the request asked for), a 101 that switches to it is a final answer too."""
        response = Response(self.sock, method, upgrade)
        response.read_head()
        return response


class Response:
    """A final answer's status and fields, and its body as an iterator of chunks. It is also the
    protocol object llhttp calls back as it parses (``on_*``), one parser per exchange."""

    __slots__ = (
        "_extra",
        "_head_done",
        "_interim",
        "_keep_alive",
        "_method",
        "_parser",
        "_pending",
        "_sock",
        "_trailers",
        "_until_close",
        "_upgrade",
        "complete",
        "connection_tokens",
        "fields",
        "length",
        "reason",
        "status",
        "tunnel_bytes",
    )

    def __init__(self, sock: socket.socket, method: str, upgrade: str | None = None) -> None:
        self._sock, self._method, self._upgrade = sock, method, upgrade
        self.tunnel_bytes = b""  # after a 101: what the upstream sent behind its head
        self._parser = httptools.HttpResponseParser(self)
        self.status, self.reason = 0, ""
        self.fields: list[tuple[str, str]] = []
        self.connection_tokens: frozenset[str] = frozenset()
        self.length: int | None = None  # the body's length when known: Content-Length to send on
        self.complete = False  # the answer was read to its end
        self._head_done = self._keep_alive = self._until_close = self._extra = False
        self._interim = self._trailers = 0
        self._pending: list[bytes] = []  # body bytes parsed and not yet taken

    @property
    def reusable(self) -> bool:
        """The answer was read to its end and the connection may carry another exchange."""
        return self.complete and self._keep_alive and not self._extra

    # --- reading ------------------------------------------------------------------------------

    def read_head(self) -> None:
        fed = 0
        while not self._head_done:
            data = self._sock.recv(HEAD_READ_SIZE)
            if not data:
                if fed:
                    raise BadResponse("connection closed in the middle of the response head")
                raise UpstreamClosed("connection closed before the response")
            room = MAX_HEAD - fed
            fed += len(data)
            if fed <= MAX_HEAD:
                self._feed(data)
                continue
            self._feed(data[:room])  # the head must end within 64 KiB
            if not self._head_done:
                raise BadResponse("response head over 64 KiB")
            self._feed(data[room:])

    def buffered_body(self) -> bytes | None:
        """The whole body when it has already arrived with the head (a small answer), else None."""
        if not self.complete:
            return None
        body = b"".join(self._pending)
        self._pending = []
        return body

    def body(self, size: int = READ_SIZE) -> Iterator[bytes]:
        """The body's chunks as they arrive (from reads of at most ``size`` bytes)."""
        recv = self._sock.recv
        while True:
            if self._pending:
                pending, self._pending = self._pending, []
                yield from pending
            if self.complete:
                return
            data = recv(size)
            if not data:
                if self._until_close:
                    self.complete = True
                    return
                raise IncompleteBody("connection closed before the end of the body")
            self._feed(data)

    def _feed(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, BadResponse):
                raise exc.__context__ from None
            raise BadResponse(str(exc)) from None
        except httptools.HttpParserUpgrade as exc:
            if self.status != 101:
                raise BadResponse("llhttp: an upgrade nobody asked for") from None
            self.tunnel_bytes = bytes(data[exc.args[0] :])
        except httptools.HttpParserError as exc:
            if self.complete and self.status != 101:  # bytes after the answer: it stands
                self._extra = True
                return
            raise BadResponse(f"llhttp: {exc}") from None

    # --- llhttp callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:
            self._extra = True

    def on_status(self, reason: bytes) -> None:
        self.reason = reason.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._head_done:  # a trailer field, dropped; or the next answer's, after ours
            self._trailers += 1
            if self._trailers > MAX_FIELDS and not self.complete:
                raise BadResponse("over 100 trailer fields")
            return
        fields = self.fields
        if len(fields) >= MAX_FIELDS:
            raise BadResponse("over 100 response header fields")
        fields.append((name.decode("latin-1"), value.rstrip(_BLANKS).decode("latin-1")))

    def on_headers_complete(self) -> None:
        if self._head_done:  # the next answer's head, after ours (see on_message_begin)
            return
        parser = self._parser
        status = parser.get_status_code()
        if status < 200 and status != 101:
            self._interim += 1
            if self._interim >= MAX_INTERIM:
                raise BadResponse("too many interim (1xx) answers")
            self.fields, self.reason = [], ""
            return
        if parser.get_http_version() not in _VERSIONS:
            raise BadResponse("not an HTTP/1.0 or HTTP/1.1 answer")
        if _CONTROL.search(self.reason):
            raise BadResponse("control character in the reason phrase")
        if status == 101:
            self._switch()
            return
        self.status = status
        self._head_done = True
        self._keep_alive = parser.should_keep_alive()
        self._frame()

    def on_body(self, data: bytes) -> None:
        if self.complete:  # a body after a HEAD answer: bytes that belong to no request
            self._extra = True
        else:
            self._pending.append(data)

    def on_message_complete(self) -> None:
        if self._head_done:
            self.complete = True

    def _switch(self) -> None:
        """A 101: a final answer only to a request that asked for this very upgrade."""
        upgrade, tokens = [], set()
        for name, value in self.fields:
            lower = name.lower()
            if lower == "upgrade":
                upgrade.extend(list_tokens(value))
            elif lower == "connection":
                tokens.update(list_tokens(value))
        if self._upgrade is None:
            raise BadResponse("101 Switching Protocols to a request that asked for none")
        if upgrade != [self._upgrade] or "upgrade" not in tokens:
            raise BadResponse("a 101 that does not switch to the protocol asked for")
        self.status, self.connection_tokens = 101, frozenset(tokens)
        self._head_done = self.complete = True

    def _frame(self) -> None:
        """What the fields llhttp accepted mean for the body, and what the proxy refuses."""
        tokens: set[str] = set()
        length, codings = None, []
        for name, value in self.fields:
            lower = name.lower()
            if lower == "connection":
                tokens.update(list_tokens(value))
            elif lower == "content-length":
                length = int(value)  # llhttp accepted it: digits, one field
            elif lower == "transfer-encoding":
                codings.extend(list_tokens(value))
        self.connection_tokens = frozenset(tokens)
        if codings and codings != ["chunked"]:
            raise BadResponse("Transfer-Encoding other than one chunked")
        status = self.status
        if status == 204:
            self.length = 0
        elif self._method == "HEAD" or status == 304:
            self.length = length
            self.complete = True  # llhttp does not know the request was a HEAD
        else:
            self.length = length
            self._until_close = length is None and not codings


def _read_exactly(stream: Readable, length: int) -> bytes:
    parts: list[bytes] = []
    remaining = length
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            raise BadRequest("the request body ended before its Content-Length")
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)
