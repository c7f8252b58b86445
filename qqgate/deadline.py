"""One deadline for several HTTP calls, however slowly the other side answers.

A ``timeout`` given to requests bounds each socket operation, not a call: a server that sends one
byte a second keeps every read short and the call alive for as long as it likes. So a sign-in's
calls to QQ share a :class:`Deadline`: each call's timeouts are cut to the time left, and when the
time is up a timer shuts down every socket the calls are still reading from (a blocked ``recv``
then returns at once, in a thread or a gevent greenlet alike). The sockets are handed over by the
connections of :class:`DeadlineAdapter`, which a session mounts.
"""

from __future__ import annotations

import contextlib
import contextvars
import socket
import threading
import time
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "qqgate_deadline", default=None
)


def current_deadline() -> Deadline | None:
    """The deadline of the calls being made here, if any."""
    return _current.get()


class Deadline:
    """``seconds`` from now, for the calls made inside ``with deadline:``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._token: contextvars.Token[Deadline | None] | None = None

    def left(self) -> float:
        """Seconds left (0 once past)."""
        return max(0.0, self.end - time.monotonic())

    def watch(self, sock: socket.socket | None) -> None:
        """Shut ``sock`` down when the time is up (at once if it already is)."""
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shut(sock)

    def __enter__(self) -> Deadline:
        self._token = _current.set(self)
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        if self._token is not None:
            _current.reset(self._token)
        with self._lock:
            self._sockets.clear()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed: nothing left to wait for
        sock.shutdown(socket.SHUT_RDWR)


def _watch(connection: HTTPConnection) -> None:
    deadline = _current.get()
    if deadline is not None:
        deadline.watch(connection.sock)


class _Connection(HTTPConnection):
    def getresponse(self) -> Any:
        _watch(self)  # the answer's head and body are read from this socket from now on
        return super().getresponse()


class _TLSConnection(HTTPSConnection):
    def getresponse(self) -> Any:
        _watch(self)
        return super().getresponse()


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _TLSPool(HTTPSConnectionPool):
    ConnectionCls = _TLSConnection


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter whose connections answer to the :class:`Deadline` around a call."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}
