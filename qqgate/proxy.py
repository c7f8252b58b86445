"""``UpstreamProxy``: a streaming reverse proxy, the WSGI app the gate wraps in proxy mode.

It talks to one upstream through a pool of keep-alive connections (``http.client`` directly: no
cookie jar, which in a shared ``requests.Session`` would replay one user's cookies on another
user's request; and about 80 µs less per request than going through urllib3). Bodies stream both
ways in large chunks, so a multi-GB upload or download keeps memory flat. What it forwards, and
what not:

- method, the raw path as the client sent it (not re-encoded), query and body;
- every end-to-end header; never hop-by-hop ones (``Connection`` and what it names, ``Keep-Alive``,
  ``TE``, ``Trailer``, ``Transfer-Encoding``, ``Upgrade``, ``Proxy-*``), in either direction;
- the identity headers the gate set (client-sent ones were already removed by the gate);
- the client's cookies minus the gate's own: an upstream that logs cookies cannot replay a session;
- ``X-Forwarded-For`` (appended), ``-Proto`` and ``-Host``.

Every ``Set-Cookie`` stays a header of its own, redirects are passed to the client rather than
followed, and a ``Location`` pointing at the upstream's own address is rewritten to the public one.
An unreachable upstream gives a 502 page, a slow one a 504, and the gate keeps serving.
"""

from __future__ import annotations

import http.client
import logging
import queue
import select
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from urllib.parse import unquote_to_bytes, urlsplit

from . import logs
from .pages import Pages
from .redirects import request_target

log = logging.getLogger("qqgate")

CHUNK_SIZE = 256 * 1024
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Set by the server in front of the client (gunicorn) for the response the client gets.
_RESPONSE_SKIP = HOP_BY_HOP | {"date", "server"}
_REPLAYABLE = frozenset({"GET", "HEAD", "OPTIONS"})


class UpstreamProxy:
    """Forward each request to ``upstream`` (``scheme://host:port``)."""

    def __init__(
        self,
        upstream: str,
        *,
        timeout: float = 60.0,
        preserve_host: bool = True,
        hidden_cookies: Iterable[str] = (),
        pool_size: int = 32,
        pages: Pages,
    ) -> None:
        self.pages = pages
        parts = urlsplit(upstream)
        self.upstream = f"{parts.scheme}://{parts.netloc}"
        self._upstream_host = parts.netloc
        self._preserve_host = preserve_host
        self._hidden_cookies = frozenset(hidden_cookies)
        self._pool = _ConnectionPool(
            parts, connect_timeout=min(timeout, 10.0), timeout=timeout, size=pool_size
        )

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("HTTP_UPGRADE"):
            page = self.pages.error(
                environ, 501, "upgrade_unsupported.title", ["upgrade_unsupported.message"]
            )
            return page(environ, start_response)
        try:
            connection, upstream_response = self._send(environ)
        except Exception as exc:  # any failure to reach the app becomes a 502/504 page
            return self._failed(environ, exc)(environ, start_response)
        headers = self._response_headers(environ, upstream_response.msg.items())
        start_response(_status_line(upstream_response), headers)
        return _Body(upstream_response, connection, self._pool)

    def close(self) -> None:
        self._pool.close()

    # --- request ------------------------------------------------------------------------------

    def _send(self, environ: dict) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        method = environ["REQUEST_METHOD"]
        target = _raw_target(environ)
        headers = self._request_headers(environ)
        body, chunked = _request_body(environ)
        connection, reused = self._pool.get()
        try:
            return connection, _exchange(connection, method, target, headers, body, chunked)
        except (ConnectionError, http.client.BadStatusLine):
            connection.close()
            # A pooled keep-alive connection the upstream had just closed: safe to retry once,
            # on a new connection, when there is no body to resend.
            if not reused or method not in _REPLAYABLE or body is not None:
                raise
        except BaseException:  # a timeout, or anything else: the connection is in an unknown state
            connection.close()
            raise
        connection = self._pool.new()
        try:
            return connection, _exchange(connection, method, target, headers, None, False)
        except BaseException:
            connection.close()
            raise

    def _request_headers(self, environ: dict) -> dict[str, str]:
        # Expect: 100-continue was already answered by the server in front of us.
        skip = HOP_BY_HOP | {"expect"} | _connection_tokens(environ.get("HTTP_CONNECTION", ""))
        headers: dict[str, str] = {}
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                name = key[5:].replace("_", "-").title()
                if name.lower() not in skip:
                    headers[name] = value
        for key, name in (("CONTENT_TYPE", "Content-Type"), ("CONTENT_LENGTH", "Content-Length")):
            if environ.get(key):
                headers[name] = environ[key]
        cookie = _without_cookies(headers.pop("Cookie", ""), self._hidden_cookies)
        if cookie:
            headers["Cookie"] = cookie
        client = environ.get("REMOTE_ADDR", "")
        forwarded_for = headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{forwarded_for}, {client}" if forwarded_for else client
        headers["X-Forwarded-Proto"] = environ.get("wsgi.url_scheme", "http")
        headers["X-Forwarded-Host"] = environ.get("HTTP_HOST", "")
        if not self._preserve_host or "Host" not in headers:
            headers["Host"] = self._upstream_host
        return headers

    # --- response -----------------------------------------------------------------------------

    def _response_headers(
        self, environ: dict, upstream_headers: list[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        connection = ",".join(v for n, v in upstream_headers if n.lower() == "connection")
        skip = _RESPONSE_SKIP | _connection_tokens(connection)
        public = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"
        headers = []
        for name, value in upstream_headers:  # one pair per header line
            lower = name.lower()
            if lower in skip:
                continue
            if lower == "location" and value.startswith(self.upstream):
                value = public + value[len(self.upstream) :]
            headers.append((name, value))
        return headers

    def _failed(self, environ: dict, exc: Exception):
        timed_out = isinstance(exc, TimeoutError)
        status = 504 if timed_out else 502
        reason = "timeout" if timed_out else _failure_reason(exc)
        logs.event(
            log,
            logging.WARNING,
            "upstream failed",
            status=status,
            reason=reason,
            method=environ.get("REQUEST_METHOD"),
            path=environ.get("PATH_INFO", "")[:200],
            client=environ.get("REMOTE_ADDR", "-"),
        )
        key = "upstream_timeout" if timed_out else "upstream_unavailable"
        retry = (request_target(environ), "action.try_again") if _replayable(environ) else None
        return self.pages.error(environ, status, f"{key}.title", [f"{key}.message"], action=retry)


class _ConnectionPool:
    """Idle keep-alive connections to one upstream, shared by a worker's threads (a LIFO queue:
    the most recently used connection is the least likely to have been closed by the upstream)."""

    def __init__(self, parts, *, connect_timeout: float, timeout: float, size: int) -> None:
        https = parts.scheme == "https"
        self._factory = http.client.HTTPSConnection if https else http.client.HTTPConnection
        self._host, self._port = parts.hostname, parts.port or (443 if https else 80)
        self._connect_timeout, self._timeout = connect_timeout, timeout
        self._idle: queue.LifoQueue[http.client.HTTPConnection] = queue.LifoQueue(size)

    def get(self) -> tuple[http.client.HTTPConnection, bool]:
        """A connection, and whether it was used before."""
        while True:
            try:
                connection = self._idle.get_nowait()
            except queue.Empty:
                return self.new(), False
            if not _dropped(connection):
                return connection, True
            connection.close()

    def new(self) -> http.client.HTTPConnection:
        connection = self._factory(
            self._host, self._port, timeout=self._connect_timeout, blocksize=CHUNK_SIZE
        )
        connection.connect()
        connection.sock.settimeout(self._timeout)
        return connection

    def put(self, connection: http.client.HTTPConnection) -> None:
        try:
            self._idle.put_nowait(connection)
        except queue.Full:
            connection.close()

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """An idle connection that is readable has been closed by the upstream (or holds garbage)."""
    sock = connection.sock
    if sock is None:
        return True
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def _exchange(connection, method, target, headers, body, chunked) -> http.client.HTTPResponse:
    connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
    for name, value in headers.items():
        connection.putheader(name, value)
    if chunked:
        connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders(body, encode_chunked=chunked)
    return connection.getresponse()


class _Body:
    """The upstream body as a WSGI iterable; when closed, its connection goes back to the pool if
    the body was read to its end and the upstream keeps the connection open."""

    def __init__(self, response: http.client.HTTPResponse, connection, pool) -> None:
        self._response, self._connection, self._pool = response, connection, pool
        self._complete = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            while chunk := self._response.read1(CHUNK_SIZE):
                yield chunk
            self._complete = True
        except (OSError, http.client.HTTPException) as exc:
            # The status line is already sent: all we can do is end the response early.
            logs.event(log, logging.WARNING, "upstream body failed", reason=_failure_reason(exc))

    def close(self) -> None:
        # Closes only the response's reader: http.client's read1() does not mark a response
        # with a Content-Length as done by itself, and the connection cannot be reused before.
        self._response.close()
        if self._complete and not self._response.will_close:
            self._pool.put(self._connection)
        else:
            # Unread body left on the connection (the client went away): never reuse it.
            self._connection.close()


def _status_line(response: http.client.HTTPResponse) -> str:
    reason = response.reason
    if not reason:
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = "Unknown"
    return f"{response.status} {reason}"


def _request_body(environ: dict) -> tuple[object | None, bool]:
    """What to send as the body: None, the input stream (known length) or chunks (unknown)."""
    length = environ.get("CONTENT_LENGTH", "")
    stream = environ["wsgi.input"]
    if length:
        return (stream if length != "0" else None), False
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return _chunks(stream), True
    return None, False


def _chunks(stream) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK_SIZE):
        yield chunk


def _raw_target(environ: dict) -> str:
    """The path and query as the client sent them (gunicorn's RAW_URI), when that is the path the
    gate decided on: the raw path, decoded once, must be PATH_INFO. Otherwise (a SCRIPT_NAME
    header from a trusted proxy moved part of the path out of PATH_INFO, an absolute-form target)
    the target is rebuilt from PATH_INFO alone: the upstream never serves a path the gate did not
    look at."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
    decoded = unquote_to_bytes(raw.partition("?")[0]).decode("latin-1")
    if raw.startswith("/") and decoded == environ.get("PATH_INFO"):
        return raw
    return request_target(environ, script_name=False)


def _replayable(environ: dict) -> bool:
    return environ.get("REQUEST_METHOD") in ("GET", "HEAD")


def _connection_tokens(value: str) -> frozenset[str]:
    return frozenset(token.strip().lower() for token in value.split(",") if token.strip())


def _without_cookies(header: str, hidden: frozenset[str]) -> str:
    if not header or not hidden:
        return header
    kept = [pair for pair in header.split(";") if pair.split("=", 1)[0].strip() not in hidden]
    return ";".join(kept).strip()


def _failure_reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionError | http.client.HTTPException):
        return "connection_lost"
    return type(exc).__name__
