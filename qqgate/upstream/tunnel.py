"""WebSockets through the proxy: the upgrade handshake, then bytes both ways.

The gate has checked the session before the proxy sees an upgrade request (anonymous: 401, or 302
for a browser navigation; not on the allow-list: 403); a public path stays public. Here:

1. Only ``Upgrade: websocket`` passes, on a GET without a body. Other protocols get 501: after an
   ``h2c`` or ``TLS/1.0`` upgrade the client would talk HTTP straight to the upstream on the
   tunnel, request after request, none of which the gate would see (h2c smuggling).
2. A browser's ``Origin`` must be the gate's own site (the request's scheme and Host, or the origin
   of ``redirect_uri``) or one of ``websocket_origins``: a page on another site cannot ride the
   visitor's cookie into a WebSocket (cross-site WebSocket hijacking). Browsers always send Origin
   on a WebSocket handshake; a client without one is no browser and carries no victim's cookie.
3. The handshake goes to the upstream on a connection of its own, framed by the gate like any
   request (identity headers set, the gate's cookies removed, ``Connection: Upgrade``).
4. A 101 from the upstream is relayed to the client, then bytes are copied both ways until either
   side closes or nothing moves for ``websocket_idle_timeout``. Any other answer (a 403, a 426) is
   passed on like a normal one.

The client's socket is the WSGI server's (``gunicorn.socket``): under ``qqgate serve``'s gevent
worker a tunnel is one greenlet, under gthread one thread. Elsewhere upgrades get 501.
"""

from __future__ import annotations

import errno
import logging
import select
import socket
import ssl
import time
from collections.abc import Iterator

from .. import logs, metrics
from ..origins import OriginPolicy
from ..wsgiutil import Environ, list_tokens
from . import http1
from .bodies import shut

log = logging.getLogger("qqgate")

PROTOCOL = "websocket"
READ_SIZE = 64 * 1024
# Not passed from the upstream's 101 to the client: hop-by-hop, or set by the gate itself.
_SKIP_IN_101 = frozenset(
    {"connection", "upgrade", "keep-alive", "transfer-encoding", "content-length", "date", "server"}
)


class Refused(Exception):
    """An upgrade request the gate does not forward: ``status`` and the reason to log."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def check_request(environ: Environ, origins: OriginPolicy) -> None:
    """Raise ``Refused`` for an upgrade request the gate does not forward."""
    if "gunicorn.socket" not in environ:
        raise Refused(501, "no raw client socket (run the gate with qqgate serve)")
    if list_tokens(environ.get("HTTP_UPGRADE", "")) != [PROTOCOL]:
        raise Refused(501, "upgrade to a protocol other than websocket")
    if "upgrade" not in list_tokens(environ.get("HTTP_CONNECTION", "")):
        raise Refused(400, "Upgrade without Connection: upgrade")
    if environ.get("REQUEST_METHOD") != "GET":
        raise Refused(400, "upgrade on a method other than GET")
    if environ.get("CONTENT_LENGTH", "") not in ("", "0") or "HTTP_TRANSFER_ENCODING" in environ:
        raise Refused(400, "upgrade request with a body")
    if not origins.allows(environ):
        raise Refused(403, "cross-site WebSocket: Origin not allowed")


def switching_head(response: http1.Response) -> bytes:
    """The 101 the client gets: the upstream's end-to-end fields, and the gate's own framing."""
    lines = [f"HTTP/1.1 101 {response.reason or 'Switching Protocols'}"]
    skip = _SKIP_IN_101 | response.connection_tokens
    lines += [f"{name}: {value}" for name, value in response.fields if name.lower() not in skip]
    lines += [f"Upgrade: {PROTOCOL}", "Connection: Upgrade"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Tunnel:
    """The WSGI iterable of a switched connection: it writes the 101 itself, copies bytes until
    one side is done, then tells the server that the client connection is finished."""

    def __init__(
        self,
        environ: Environ,
        response: http1.Response,
        upstream: http1.Connection,
        idle_timeout: float,
    ) -> None:
        self._client: socket.socket = environ["gunicorn.socket"]
        self._upstream = upstream
        self._head = switching_head(response)
        self._early = response.tunnel_bytes
        self._idle_timeout = idle_timeout
        self._path = environ.get("PATH_INFO", "")[:200]
        self._who = environ.get("REMOTE_USER", "-")

    def __iter__(self) -> Iterator[bytes]:
        started = time.monotonic()
        client, upstream = self._client, self._upstream.sock
        open_tunnels = metrics.get().tunnels_open
        open_tunnels.inc()
        try:
            client.sendall(self._head + self._early)
            ended, moved = _copy_both_ways(client, upstream, self._idle_timeout)
        except OSError as exc:
            ended, moved = type(exc).__name__, (0, 0)
        finally:
            open_tunnels.dec()
            self._upstream.close()
            shut(client)
        logs.event(
            log,
            logging.INFO,
            "websocket closed",
            ended=ended,
            seconds=round(time.monotonic() - started, 1),
            to_upstream=moved[0],
            to_client=moved[1],
            path=self._path,
            openid=self._who,
        )
        # The connection is no longer HTTP: the server must neither write nor read on it again.
        raise BrokenPipeError(errno.EPIPE, "WebSocket tunnel closed")
        yield b""  # a generator: the work above runs when the server iterates

    def close(self) -> None:
        self._upstream.close()


def _copy_both_ways(
    client: socket.socket, upstream: socket.socket, idle_timeout: float
) -> tuple[str, tuple[int, int]]:
    """Copy bytes between the two sockets until one closes or neither moves for
    ``idle_timeout``; why it ended, and the bytes sent each way (to upstream, to client)."""
    peer = {client: upstream, upstream: client}
    moved = {client: 0, upstream: 0}
    while True:
        readable = _pending(upstream) or _readable([client, upstream], idle_timeout)
        if not readable:
            return "idle", (moved[client], moved[upstream])
        for sock in readable:
            data = sock.recv(READ_SIZE)
            if not data:
                side = "client" if sock is client else "upstream"
                return f"{side} closed", (moved[client], moved[upstream])
            peer[sock].sendall(data)
            moved[sock] += len(data)


def _pending(sock: socket.socket) -> list[socket.socket]:
    """A TLS socket may hold decrypted bytes that select() cannot see."""
    return [sock] if isinstance(sock, ssl.SSLSocket) and sock.pending() else []


def _readable(socks: list[socket.socket], timeout: float) -> list[socket.socket]:
    readable, _, _ = select.select(socks, [], [], timeout)
    return readable
