"""The bodies that cross the proxy, as WSGI iterables that end cleanly or not at all.

- ``UpstreamBody``: the upstream's answer body; should it end early, the client's connection is
  cut, so the client sees a truncated answer, never one that looks complete.
- ``ClientInput``: the client's request body; a failure to read it is the client's fault (400, or
  408 when it stalls), never an upstream failure.
- ``LastAnswer``: an answer after which the client connection's reading side is closed, so the
  rest of a body that broke its framing is never read as a request.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
from collections.abc import Iterable, Iterator

from .. import logs
from ..wsgiutil import Environ, StartResponse, WSGIApp, client_address
from . import http1
from .pool import ConnectionPool

log = logging.getLogger("qqgate")


class LastAnswer:
    """A WSGI app that answers, then ends the client connection's reading side: the rest of a
    body that broke its framing, or that stalled, must not be waited for or read as a request."""

    def __init__(self, page: WSGIApp, environ: Environ) -> None:
        self._page, self._socket = page, environ.get("gunicorn.socket")

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        body = self._page(environ, start_response)
        return _ClosingBody(body, self._socket)


class _ClosingBody:
    def __init__(self, body: Iterable[bytes], client: object) -> None:
        self._body, self._client = body, client

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        shut(self._client, socket.SHUT_RD)


class UpstreamBody:
    """The upstream body as a WSGI iterable; when closed, its connection goes back to the pool if
    the body was read to its end and the upstream keeps the connection open."""

    def __init__(
        self,
        response: http1.Response,
        connection: http1.Connection,
        pool: ConnectionPool,
        environ: Environ,
    ) -> None:
        self._response, self._connection, self._pool = response, connection, pool
        self._environ = environ

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        try:
            for chunk in self._response.body():
                yield chunk
                sent += len(chunk)
        except (OSError, http1.BadResponse) as exc:
            # The status line is already sent: the client must see a truncated answer (no last
            # chunk, fewer bytes than Content-Length), never one that looks complete.
            logs.event(
                log,
                logging.WARNING,
                "upstream body failed, client connection aborted",
                reason=failure_reason(exc),
                sent=sent,
                path=self._environ.get("PATH_INFO", "")[:200],
                client=client_address(self._environ),
            )
            raise abort_client(self._environ) from None

    def close(self) -> None:
        # Unread body left on the connection (the client went away): never reused.
        self._pool.release(self._connection, self._response)


def abort_client(environ: Environ) -> BrokenPipeError:
    """Cut the client's connection, and the error that tells the WSGI server it is gone: servers
    close the connection on an error raised mid-body, and gunicorn logs a broken pipe quietly."""
    shut(environ.get("gunicorn.socket"))
    return BrokenPipeError(errno.EPIPE, "upstream body ended early; client connection aborted")


def shut(client: object, how: int = socket.SHUT_RDWR) -> None:
    """Shut the WSGI server's client socket (both ways, or one), if there is one and it is open."""
    if isinstance(client, socket.socket):
        with contextlib.suppress(OSError):  # the client may be gone already
            client.shutdown(how)


class ClientTooSlow(http1.BadRequest):
    """The client sent no byte of its body for ``client_idle_timeout`` (a 408)."""


class ClientInput:
    """The client's body stream: a failure to read it (bad chunked framing, a body cut short, a
    stall) is the client's fault, a 400 or 408, not an upstream failure."""

    __slots__ = ("_stream",)

    def __init__(self, stream: http1.Readable) -> None:
        self._stream = stream

    def read(self, size: int) -> bytes:
        try:
            return self._stream.read(size)
        except TimeoutError:
            raise ClientTooSlow("the client stopped sending its body") from None
        except Exception as exc:  # servers raise their own parse errors here
            reason = f"the request body is malformed ({type(exc).__name__})"
            raise http1.BadRequest(reason) from None


def failure_reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, http1.BadResponse):
        return "bad_response"
    if isinstance(exc, ConnectionError):
        return "connection_lost"
    return type(exc).__name__


def chunks(stream: http1.Readable, size: int = http1.BODY_SEND_SIZE) -> Iterable[bytes]:
    """A readable stream as an iterable of chunks (a request body of unknown length)."""
    while chunk := stream.read(size):
        yield chunk
