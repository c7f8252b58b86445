"""The proxy's kept-alive connections to its upstream."""

from __future__ import annotations

import ssl
from collections import deque
from urllib.parse import SplitResult

from . import http1


class ConnectionPool:
    """Idle keep-alive connections to one upstream, shared by a worker's threads. Last in, first
    out: the most recently used connection is the least likely to have been closed by the
    upstream. (A deque's append and pop are atomic: no lock needed.)"""

    def __init__(
        self, parts: SplitResult, *, connect_timeout: float, timeout: float, size: int
    ) -> None:
        https = parts.scheme == "https"
        self._tls = tls_context() if https else None
        self._host, self._port = parts.hostname or "", parts.port or (443 if https else 80)
        self._connect_timeout, self._timeout = connect_timeout, timeout
        self._size = size
        self._idle: deque[http1.Connection] = deque()

    def get(self) -> tuple[http1.Connection, bool]:
        """A connection, and whether it was used before."""
        while True:
            try:
                connection = self._idle.pop()
            except IndexError:
                return self.new(), False
            if connection.idle_and_open():
                return connection, True
            connection.close()

    def new(self) -> http1.Connection:
        return http1.Connection.open(
            self._host,
            self._port,
            connect_timeout=self._connect_timeout,
            timeout=self._timeout,
            tls=self._tls,
        )

    def release(self, connection: http1.Connection, response: http1.Response) -> None:
        """Keep ``connection`` for the next request when its exchange ended cleanly."""
        if response.reusable and not connection.spent and len(self._idle) < self._size:
            self._idle.append(connection)
        else:
            connection.close()

    def close(self) -> None:
        while True:
            try:
                self._idle.pop().close()
            except IndexError:
                return


def tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context()  # certificates and host names verified
    context.set_alpn_protocols(["http/1.1"])
    return context
