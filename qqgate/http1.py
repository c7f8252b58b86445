"""One HTTP/1.1 exchange at a time on a kept-alive connection to the upstream: the proxy's client.

Why not ``http.client``: it sends every header with its own call and parses the response head
with the ``email`` package; this module sends one prebuilt head and splits the answer by hand,
which took the proxy's CPU per request from 72 to 44 µs in-process (bench/RESULTS.md). It does
only what a reverse proxy needs, by RFC 9112:

- interim answers (1xx) are skipped; a 101 is refused (the proxy never asks for an upgrade);
- HEAD answers and 204/304 have no body; ``Transfer-Encoding: chunked`` is decoded (extensions
  and trailers are dropped); otherwise ``Content-Length``; otherwise the body runs to the end of
  the connection, which is then never reused;
- a connection is reused only after its body was read to the end, nothing else arrived behind
  it, and neither side said ``Connection: close`` (an HTTP/1.0 answer must say ``keep-alive``).

What cannot be framed or passed on safely raises ``BadResponse``: a head over 64 KiB or 100
fields, a field that is not ``name: value`` or holds control characters, ``Content-Length`` that
is not one number, ``Transfer-Encoding`` other than ``chunked`` or together with
``Content-Length`` (the classic smuggling pair). A request that cannot be written without changing
its meaning (control characters, a method that is not a token) raises ``BadRequest``.
"""

from __future__ import annotations

import re
import select
import socket
import ssl
from collections.abc import Iterable, Iterator

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
_NO_BODY_STATUSES = frozenset({204, 304})
_BLANKS = " \t"

# RFC 9110: a token's characters, and what a field value may not hold (controls other than TAB).
_TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_VALUE_CHAR = r"[^\x00-\x08\x0a-\x1f\x7f]"

_END_OF_HEAD = re.compile(rb"\r?\n\r?\n")
_STATUS_LINE = re.compile(rf"HTTP/1\.([01]) ([1-9][0-9][0-9])(?: ({_VALUE_CHAR}*))?")
_FIELD = re.compile(rf"({_TCHARS}):[\t ]*({_VALUE_CHAR}*?)[\t ]*\r?\n")
_FIELD_LINES = re.compile(rf"(?:{_TCHARS}:{_VALUE_CHAR}*\r?\n)*")
_TOKENS = re.compile(_TCHARS)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_TARGET = re.compile(r"[\x21-\x7e\x80-\xff]+")
_CHUNK_SIZE = re.compile(rb"[ \t]*([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?\r?\n")


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
    """A socket to the upstream and the bytes read from it but not yet used."""

    __slots__ = ("_buffer", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""

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
        if self._buffer:
            return False
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

    def send(self, head: bytes, body=None, length: int | None = None) -> None:
        """Write ``head`` and ``body``: a readable stream of ``length`` bytes, or (``length``
        None) an iterable of chunks sent with chunked framing."""
        sock = self.sock
        if body is None:
            sock.sendall(head)
        elif length is not None:
            self._send_sized(head, body, length)
        else:
            sock.sendall(head)
            for chunk in body:
                if chunk:
                    sock.sendall(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            sock.sendall(b"0\r\n\r\n")

    def _send_sized(self, head: bytes, stream, length: int) -> None:
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

    def response(self, method: str) -> Response:
        """Read the final answer's head (after any interim 1xx answers)."""
        for _ in range(MAX_INTERIM):
            version, status, reason, fields = self._read_head()
            if status >= 200:
                return Response(self, method, version, status, reason, fields)
            if status == 101:
                raise BadResponse("101 Switching Protocols to a request that asked for none")
        raise BadResponse("too many interim (1xx) answers")

    def _read_head(self) -> tuple[int, int, str, list[tuple[str, str]]]:
        data = self._buffer
        searched = 0
        while True:
            end = _END_OF_HEAD.search(data, searched)
            if end:
                break
            if len(data) > MAX_HEAD:
                raise BadResponse("response head over 64 KiB")
            searched = max(0, len(data) - 3)
            more = self.sock.recv(HEAD_READ_SIZE)
            if not more:
                if data:
                    raise BadResponse("connection closed in the middle of the response head")
                raise UpstreamClosed("connection closed before the response")
            data += more
        self._buffer = data[end.end() :]
        if end.start() > MAX_HEAD:
            raise BadResponse("response head over 64 KiB")
        return _parse_head(data[: end.start()].decode("latin-1"))

    # --- body ---------------------------------------------------------------------------------

    def take_buffered(self, limit: int) -> bytes:
        data = self._buffer
        if len(data) <= limit:
            self._buffer = b""
            return data
        self._buffer = data[limit:]
        return data[:limit]

    def buffered_bytes(self) -> int:
        """How many bytes have arrived and not been used yet."""
        return len(self._buffer)

    def recv(self, size: int) -> bytes:
        if self._buffer:
            return self.take_buffered(size)
        return self.sock.recv(size)

    def read_line(self) -> bytes:
        """One line of chunked framing, with its line ending."""
        data = self._buffer
        while (end := data.find(b"\n")) < 0:
            if len(data) > 4096:
                raise BadResponse("chunk size line over 4 KiB")
            more = self.sock.recv(HEAD_READ_SIZE)
            if not more:
                raise IncompleteBody("connection closed inside a chunked body")
            data += more
        self._buffer = data[end + 1 :]
        return data[: end + 1]


def _parse_head(head: str) -> tuple[int, int, str, list[tuple[str, str]]]:
    status_line, _, fields_text = head.partition("\n")
    status = _STATUS_LINE.fullmatch(status_line.removesuffix("\r"))
    if not status:
        raise BadResponse("not an HTTP/1.x status line")
    fields_text += "\n"
    if fields_text == "\n":
        fields = []
    elif _FIELD_LINES.fullmatch(fields_text):
        fields = _FIELD.findall(fields_text)  # every line checked above: no gaps, no folding
    else:
        fields = _fields_line_by_line(fields_text)
    if len(fields) > MAX_FIELDS:
        raise BadResponse("over 100 response header fields")
    version, code, reason = status.groups()
    return int(version), int(code), reason or "", fields


def _fields_line_by_line(text: str) -> list[tuple[str, str]]:
    """The slow path: folded lines, or a line that is not a field (then BadResponse)."""
    lines = text.split("\n")[:-1]
    if len(lines) > MAX_FIELDS:
        raise BadResponse("over 100 response header lines")
    fields: list[tuple[str, str]] = []
    for line in lines:
        line = line.removesuffix("\r")
        if line[:1] in (" ", "\t") and fields:
            # obs-fold: a proxy replaces it with a space (RFC 9112, section 5.2)
            if _CONTROL.search(line):
                raise BadResponse("control character in a folded header line")
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip(_BLANKS)}".rstrip())
            continue
        field = _FIELD.fullmatch(line + "\n")
        if not field:
            raise BadResponse("a response header line is not 'name: value'")
        fields.append(field.groups())
    return fields


class Response:
    """A final answer's status and fields, and its body as an iterator of chunks."""

    __slots__ = (
        "_chunked",
        "_connection",
        "_keep_alive",
        "_length",
        "complete",
        "connection_tokens",
        "fields",
        "reason",
        "status",
    )

    def __init__(
        self,
        connection: Connection,
        method: str,
        version: int,
        status: int,
        reason: str,
        fields: list[tuple[str, str]],
    ) -> None:
        self.status, self.reason, self.fields = status, reason, fields
        self._connection = connection
        self.complete = False
        connection_tokens, lengths, codings = _framing_fields(fields)
        # The fields the Connection header names are hop-by-hop: the proxy drops them too.
        self.connection_tokens = connection_tokens
        self._keep_alive = (
            "keep-alive" in connection_tokens if version == 0 else "close" not in connection_tokens
        )
        self._chunked = False
        self._length: int | None = None  # None: until the connection closes
        if method == "HEAD" or status in _NO_BODY_STATUSES:
            self._length = 0
        elif codings:
            if lengths or codings != ["chunked"]:
                raise BadResponse("Transfer-Encoding other than chunked, or with Content-Length")
            self._chunked = True
        elif lengths:
            self._length = _content_length(lengths)
        else:
            self._keep_alive = False

    @property
    def reusable(self) -> bool:
        """The body was read to its end and the connection may carry another exchange."""
        return self.complete and self._keep_alive and not self._connection.buffered_bytes()

    def buffered_body(self) -> bytes | None:
        """The whole body when it has already arrived with the head (a small answer), else None."""
        length = self._length
        if length is None or self._chunked:
            return None
        connection = self._connection
        if connection.buffered_bytes() < length:
            return None
        body = connection.take_buffered(length)
        self.complete = True
        return body

    def body(self, size: int = READ_SIZE) -> Iterator[bytes]:
        """The body's chunks as they arrive (at most ``size`` bytes each)."""
        if self._chunked:
            yield from self._chunked_body(size)
        elif self._length is None:
            while chunk := self._connection.recv(size):
                yield chunk
        else:
            yield from self._sized(self._length, size)
        self.complete = True

    def _sized(self, length: int, size: int) -> Iterator[bytes]:
        recv = self._connection.recv
        while length:
            chunk = recv(min(size, length))
            if not chunk:
                raise IncompleteBody(f"connection closed with {length} body bytes to come")
            length -= len(chunk)
            yield chunk

    def _chunked_body(self, size: int) -> Iterator[bytes]:
        connection = self._connection
        while True:
            line = connection.read_line()
            match = _CHUNK_SIZE.fullmatch(line)
            if not match:
                raise BadResponse("malformed chunk size line")
            length = int(match.group(1), 16)
            if not length:
                break
            yield from self._sized(length, size)
            if connection.read_line() not in (b"\r\n", b"\n"):
                raise BadResponse("chunk data longer than its size")
        for _ in range(MAX_FIELDS):  # trailer fields, dropped
            if connection.read_line() in (b"\r\n", b"\n"):
                return
        raise BadResponse("over 100 trailer fields")


def _framing_fields(
    fields: list[tuple[str, str]],
) -> tuple[frozenset[str], list[str], list[str]]:
    connection: set[str] = set()
    lengths: list[str] = []
    codings: list[str] = []
    for name, value in fields:
        lower = name.lower()
        if lower == "connection":
            connection.update(list_tokens(value))
        elif lower == "content-length":
            lengths.extend(list_tokens(value))
        elif lower == "transfer-encoding":
            codings.extend(list_tokens(value))
    return frozenset(connection), lengths, codings


def list_tokens(value: str) -> list[str]:
    """The items of a comma-separated header value, lowercased, empty ones skipped."""
    return [item.strip().lower() for item in value.split(",") if item.strip()]


def _content_length(values: list[str]) -> int:
    # "5, 5" or two fields of 5 are one length (RFC 9110, section 8.6); anything else is an error.
    if len(set(values)) != 1 or not (values[0].isascii() and values[0].isdigit()):
        raise BadResponse("Content-Length is not one number")
    if len(values[0]) > 18:
        raise BadResponse("Content-Length too large")
    return int(values[0])


def _read_exactly(stream, length: int) -> bytes:
    parts, remaining = [], length
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            raise BadRequest("the request body ended before its Content-Length")
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def chunks(stream, size: int = BODY_SEND_SIZE) -> Iterable[bytes]:
    """A readable stream as an iterable of chunks (a request body of unknown length)."""
    while chunk := stream.read(size):
        yield chunk
