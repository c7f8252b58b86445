"""``UpstreamProxy``: a streaming reverse proxy, the WSGI app the gate wraps in proxy mode.

It talks to one upstream through a pool of keep-alive connections, one HTTP/1.1 exchange at a time
(``http1``; no cookie jar, which in a shared ``requests.Session`` would replay one user's cookies
on another user's request). Bodies stream both ways in large chunks, so a multi-GB upload or
download keeps memory flat. What it forwards, and what not:

- method, the raw path as the client sent it (not re-encoded), query and body;
- every end-to-end header the client sent; never hop-by-hop ones (``Connection`` and what it
  names, ``Keep-Alive``, ``TE``, ``Trailer``, ``Transfer-Encoding``, ``Upgrade``, ``Proxy-*``), in
  either direction;
- the client's cookies minus the gate's own: an upstream that logs cookies cannot replay a session;
- then what the gate owns, which nothing a client sends can remove or override: the framing of
  the body the proxy itself sends (``Content-Length``, or ``Transfer-Encoding: chunked``),
  ``Host``, ``X-Forwarded-For`` (appended), ``-Proto`` and ``-Host``, and the identity headers
  the gate set (client-sent ones were already removed by the gate).

Framing comes from what the proxy knows, never from a header the client wrote: the client's
``Content-Length`` and ``Transfer-Encoding`` are never copied, and a client naming a header in
``Connection`` removes only its own copy. An upstream that ignores a body it did not expect must
never read it as a request: a body on GET, HEAD or TRACE is refused (400; no browser can send
one), and any request with a body is the last one on its upstream connection (it goes out with
``Connection: close`` and the connection is never pooled again).

Every ``Set-Cookie`` stays a header of its own, redirects are passed to the client rather than
followed, and a ``Location`` pointing at the upstream's own address is rewritten to the public one.
An unreachable upstream, or one whose answer cannot be framed safely, gives a 502 page, a slow one
a 504, and the gate keeps serving. A request that cannot be written as it came, or whose body
breaks its own framing, gets a 400. An answer whose body ends early (the upstream closed, a bad
chunk, a timeout) aborts the client's connection, so the client sees a truncated answer, never a
complete-looking one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from http import HTTPStatus
from urllib.parse import unquote_to_bytes, urlsplit

from .. import logs, metrics
from ..origins import OriginPolicy
from ..pages import Pages
from ..redirects import request_target
from ..wsgiutil import (
    Environ,
    StartResponse,
    WSGIApp,
    client_address,
    environ_key,
    list_tokens,
)
from . import http1, tunnel
from .bodies import (
    ClientInput,
    ClientTooSlow,
    LastAnswer,
    UpstreamBody,
    chunks,
    failure_reason,
)
from .pool import ConnectionPool

log = logging.getLogger("qqgate")

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
# Set by the server in front of the client (gunicorn) for the response the client gets, or, for
# Content-Length, by the proxy from the length llhttp parsed.
_RESPONSE_SKIP = HOP_BY_HOP | {"date", "server", "content-length"}
_REPLAYABLE = frozenset({"GET", "HEAD", "OPTIONS"})
# A body on these is refused: it has no defined meaning (RFC 9110, 9.3), servers often leave it
# unread and would take it for the next request, and no browser can send one (fetch() refuses).
# DELETE and OPTIONS bodies, which fetch() can send, go out like any body: on a connection that
# closes after them.
_NO_BODY = frozenset({"GET", "HEAD", "TRACE"})
# Methods that usually carry a body: without one, they say so with Content-Length: 0.
_BODY_EXPECTED = frozenset({"POST", "PUT", "PATCH"})
# Expect: 100-continue was already answered by the server in front of us. Host and the framing
# headers are the gate's own, set after the client's headers are copied.
_REQUEST_SKIP = HOP_BY_HOP | {"expect", "host", "content-length"}
_CGI_HEADERS = {"CONTENT_TYPE": "Content-Type"}
_CONNECTION_OPTIONS = frozenset({"keep-alive", "close", "upgrade"})
_MAX_REMEMBERED_NAMES = 512


class UpstreamProxy:
    """Forward each request to ``upstream`` (``scheme://host:port``)."""

    def __init__(
        self,
        upstream: str,
        *,
        timeout: float = 60.0,
        preserve_host: bool = True,
        hidden_cookies: Iterable[str] = (),
        identity_headers: Iterable[str] = (),
        pool_size: int = 32,
        origins: OriginPolicy | None = None,
        websocket_idle_timeout: float = 300.0,
        pages: Pages,
    ) -> None:
        self.pages = pages
        self._origins = origins or OriginPolicy("http://unset.invalid")
        self._websocket_idle_timeout = websocket_idle_timeout
        parts = urlsplit(upstream)
        self.upstream = f"{parts.scheme}://{parts.netloc}"
        self._upstream_host = parts.netloc
        self._preserve_host = preserve_host
        self._hidden_cookies = frozenset(hidden_cookies)
        # The identity headers the gate set (environ key, header name): added last.
        self._identity = tuple((environ_key(name), name) for name in identity_headers)
        self._header_names: dict[str, str] = dict.fromkeys(dict(self._identity), "")
        # ^ environ key -> header name, "" when not copied from the client
        self._pool = ConnectionPool(
            parts, connect_timeout=min(timeout, 10.0), timeout=timeout, size=pool_size
        )

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("HTTP_UPGRADE"):
            return self._upgrade(environ, start_response)
        measured = metrics.get()
        started = time.monotonic()
        try:
            connection, response = self._send(environ)
        except Exception as exc:  # any failure to reach the app becomes a 400/502/504 page
            measured.upstream_seconds.labels("error").observe(time.monotonic() - started)
            return self._failed(environ, exc)(environ, start_response)
        waited = time.monotonic() - started
        measured.upstream_seconds.labels(metrics.status_class(response.status)).observe(waited)
        body = self._answer(environ, start_response, connection, response)
        return metrics.InFlight(body, measured.proxied_in_flight)

    def _answer(
        self,
        environ: Environ,
        start_response: StartResponse,
        connection: http1.Connection,
        response: http1.Response,
    ) -> Iterable[bytes]:
        headers = self._response_headers(environ, response)
        body = response.buffered_body()
        start_response(_status_line(response), headers)
        if body is None:
            return UpstreamBody(response, connection, self._pool, environ)
        self._pool.release(connection, response)  # a small answer that came whole with its head
        return [body]

    def _upgrade(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """A WebSocket handshake: refused, answered by the upstream, or switched (``tunnel``)."""
        try:
            tunnel.check_request(environ, self._origins)
        except tunnel.Refused as refused:
            return self._refused(environ, refused)(environ, start_response)
        try:
            connection, response = self._handshake(environ)
        except Exception as exc:
            return self._failed(environ, exc)(environ, start_response)
        if response.status != 101:
            connection.spent = True  # the upstream refused the upgrade: an answer like any other
            return self._answer(environ, start_response, connection, response)
        start_response("101 Switching Protocols", [])
        return tunnel.Tunnel(environ, response, connection, self._websocket_idle_timeout)

    def _handshake(self, environ: Environ) -> tuple[http1.Connection, http1.Response]:
        headers = self._request_headers(environ)
        headers["Connection"] = "Upgrade"
        headers["Upgrade"] = tunnel.PROTOCOL
        head = http1.request_head("GET", _raw_target(environ), headers)
        connection = self._pool.new()  # a tunnel is never pooled
        try:
            connection.send(head)
            return connection, connection.response("GET", upgrade=tunnel.PROTOCOL)
        except BaseException:
            connection.close()
            raise

    def _refused(self, environ: Environ, refused: tunnel.Refused) -> WSGIApp:
        logs.event(
            log,
            logging.WARNING,
            "websocket refused",
            status=refused.status,
            reason=str(refused),
            path=environ.get("PATH_INFO", "")[:200],
            client=client_address(environ),
        )
        key = {403: "cross_site_websocket", 400: "bad_request"}.get(
            refused.status, "upgrade_unsupported"
        )
        return self.pages.error(environ, refused.status, f"{key}.title", [f"{key}.message"])

    def close(self) -> None:
        self._pool.close()

    # --- request ------------------------------------------------------------------------------

    def _send(self, environ: Environ) -> tuple[http1.Connection, http1.Response]:
        method = environ["REQUEST_METHOD"]
        headers = self._request_headers(environ)
        body, length = _request_body(environ, method)
        if length is not None:
            headers["Content-Length"] = str(length)
        elif body is not None:
            headers["Transfer-Encoding"] = "chunked"
        elif method in _BODY_EXPECTED:
            headers["Content-Length"] = "0"  # RFC 9110, 8.6
        if body is not None:
            # Should the upstream leave the body unread, it must not take it for a request.
            headers["Connection"] = "close"
        head = http1.request_head(method, _raw_target(environ), headers)
        connection, reused = self._pool.get()
        try:
            connection.send(head, body, length)
            return connection, connection.response(method)
        except ConnectionError:
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
            connection.send(head)
            return connection, connection.response(method)
        except BaseException:
            connection.close()
            raise

    def _request_headers(self, environ: Environ) -> dict[str, str]:
        names = self._header_names
        # The headers the client names in its Connection header are hop-by-hop: its own copies
        # are dropped. What the gate sets below is not the client's to name.
        connection = environ.get("HTTP_CONNECTION")
        # "keep-alive" and "close", the usual values, name no header: no check per header then.
        named = frozenset(list_tokens(connection)) - _CONNECTION_OPTIONS if connection else ()
        headers: dict[str, str] = {}
        for key, value in environ.items():
            name = names.get(key)
            if name is None:
                name = _header_name(key)
                if len(names) < _MAX_REMEMBERED_NAMES:  # environ keys partly come from clients
                    names[key] = name
            if name and (not named or name.lower() not in named):
                headers[name] = value
        if headers.get("Content-Type") == "":  # a CGI key that may be empty
            del headers["Content-Type"]
        cookie = _without_cookies(headers.pop("Cookie", ""), self._hidden_cookies)
        if cookie:
            headers["Cookie"] = cookie
        host = environ.get("HTTP_HOST")
        headers["Host"] = host if self._preserve_host and host else self._upstream_host
        client = environ.get("REMOTE_ADDR", "")
        forwarded_for = headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{forwarded_for}, {client}" if forwarded_for else client
        headers["X-Forwarded-Proto"] = environ.get("wsgi.url_scheme", "http")
        headers["X-Forwarded-Host"] = host or ""
        for key, name in self._identity:
            if key in environ:
                headers[name] = environ[key]
        return headers

    # --- response -----------------------------------------------------------------------------

    def _response_headers(
        self, environ: Environ, response: http1.Response
    ) -> list[tuple[str, str]]:
        skip = _RESPONSE_SKIP | response.connection_tokens
        public = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"
        headers = []
        for name, value in response.fields:  # one pair per header line
            lower = name.lower()
            if lower in skip:
                continue
            if lower == "location" and value.startswith(self.upstream):
                value = public + value[len(self.upstream) :]
            headers.append((name, value))
        if response.length is not None:
            headers.append(("Content-Length", str(response.length)))
        return headers

    def _failed(self, environ: Environ, exc: Exception) -> WSGIApp:
        if isinstance(exc, ClientTooSlow):
            status, reason, key = 408, str(exc), "bad_request"
        elif isinstance(exc, http1.BadRequest):
            status, reason, key = 400, str(exc), "bad_request"
        elif isinstance(exc, TimeoutError):
            status, reason, key = 504, "timeout", "upstream_timeout"
        else:
            status, reason, key = 502, failure_reason(exc), "upstream_unavailable"
        client_fault = status in (400, 408)
        logs.event(
            log,
            logging.WARNING,
            "request not forwarded" if client_fault else "upstream failed",
            status=status,
            reason=reason,
            method=environ.get("REQUEST_METHOD"),
            path=environ.get("PATH_INFO", "")[:200],
            client=client_address(environ),
        )
        retry = None
        if not client_fault and _replayable(environ):
            retry = (request_target(environ), "action.try_again")
        page = self.pages.error(environ, status, f"{key}.title", [f"{key}.message"], action=retry)
        return LastAnswer(page, environ) if client_fault else page


def _status_line(response: http1.Response) -> str:
    reason = response.reason
    if not reason:
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = "Unknown"
    return f"{response.status} {reason}"


def _request_body(
    environ: Environ, method: str
) -> tuple[http1.Readable | Iterable[bytes] | None, int | None]:
    """What to send as the body, and its length: (None, None), the input stream and its length,
    or chunks and None (a chunked upload of unknown length). The client's framing headers are
    read here, once, and never forwarded."""
    length = environ.get("CONTENT_LENGTH", "")
    coding = environ.get("HTTP_TRANSFER_ENCODING")
    if coding is not None and length:
        raise http1.BadRequest("both Content-Length and Transfer-Encoding")
    if length:
        if not (length.isascii() and length.isdigit() and len(length) <= 18):
            raise http1.BadRequest("Content-Length is not a number")
        if not int(length):
            return None, None
        body: tuple[http1.Readable | Iterable[bytes], int | None]
        body = (ClientInput(environ["wsgi.input"]), int(length))
    elif coding is not None:
        if list_tokens(coding) != ["chunked"]:
            raise http1.BadRequest("Transfer-Encoding other than chunked")
        body = (chunks(ClientInput(environ["wsgi.input"])), None)
    else:
        return None, None
    if method in _NO_BODY:
        raise http1.BadRequest(f"a body on {method}")
    return body


def _raw_target(environ: Environ) -> str:
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


def _header_name(environ_key: str) -> str:
    """The request header an environ key stands for, or "" when it is not forwarded."""
    if environ_key.startswith("HTTP_"):
        name = environ_key[5:].replace("_", "-").title()
        return "" if name.lower() in _REQUEST_SKIP else name
    return _CGI_HEADERS.get(environ_key, "")


def _replayable(environ: Environ) -> bool:
    return environ.get("REQUEST_METHOD") in ("GET", "HEAD")


def _without_cookies(header: str, hidden: frozenset[str]) -> str:
    if not header or not hidden:
        return header
    kept = [pair for pair in header.split(";") if pair.split("=", 1)[0].strip() not in hidden]
    return ";".join(kept).strip()
