"""``session_store = redis://host:port/db``: revocations shared by every gate host, through Redis.

A sign-out writes its entry (``qqgate.revocations``) into one Redis hash and publishes it on one
channel. Every gate process keeps a :class:`~qqgate.revocations.Revocations` in memory, which the
signed-in hot path reads without any network call, and one background thread (a greenlet under
``qqgate serve``'s gevent worker) keeps it current: subscribed to the channel, it applies each
message as it comes (milliseconds after the sign-out), and it reads the whole hash again on every
(re)connection and every ``RESYNC_SECONDS``, so a message lost while disconnected is caught up.

**Redis down** (the policy, README "Revocation across hosts"): the gate keeps serving with the
revocations it last knew; it logs the failure once (and the recovery), sets the
``qqgate_session_store_up`` gauge to 0 and counts ``qqgate_session_store_errors_total``; the
thread reconnects every ``RETRY_SECONDS``. A sign-out meanwhile still clears the browser's cookie
and is refused at once by the process that took it; its entry is kept and written when Redis is
back (until then the other processes do not know it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import logs, metrics
from .revocations import Revocations

if TYPE_CHECKING:
    from .config import Settings

RESYNC_SECONDS = 10.0  # read the whole hash again this often, whatever the messages said
RETRY_SECONDS = 1.0  # reconnect this long after a failure
WAIT_SECONDS = 0.5  # the listener wakes up at least this often (to resync, to see close())
SOCKET_SECONDS = 2.0  # connect and command timeouts
MAX_PENDING = 10_000  # revocations kept for Redis while it is down

log = logging.getLogger("qqgate")


def connect(url: str) -> Any:
    """A Redis client for ``url`` (the ``redis`` package: ``pip install qqgate[redis]``)."""
    import redis

    return redis.Redis.from_url(
        url,
        socket_timeout=SOCKET_SECONDS,
        socket_connect_timeout=SOCKET_SECONDS,
        health_check_interval=5,
        decode_responses=True,
    )


def namespace(settings: Settings) -> str:
    """The Redis names of one gated app's revocations (gates of other apps may share a Redis)."""
    return f"qqgate:{settings.app_id}"


def write_entry(client: Any, namespace: str, field: str, value: str) -> None:
    """Store one revocation and tell every gate (raises the client's error if Redis is down)."""
    pipe = client.pipeline(transaction=True)
    pipe.hset(f"{namespace}:revoked", field, value)
    pipe.publish(f"{namespace}:revocations", f"{field} {value}")
    pipe.execute()


class RedisStore:
    """Revocations of the gates that share ``namespace`` in the Redis at ``url``."""

    def __init__(self, url: str, namespace: str, clock: Callable[[], float] = time.time) -> None:
        self.revocations = Revocations()
        self.namespace = namespace
        self.hash = f"{namespace}:revoked"
        self.channel = f"{namespace}:revocations"
        self.up: bool | None = None  # the listener connected and read the hash (None: not yet)
        self._client = connect(url)
        self._clock = clock
        self._pending: dict[str, str] = {}  # written while Redis was down: to write when back
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    # --- writing ------------------------------------------------------------------------------

    def revoke(self, field: str, value: str) -> bool:
        """Refuse the sessions ``field`` names here at once and, through Redis, everywhere;
        False when Redis could not take it now (it is kept and written on reconnection)."""
        self.revocations.add(field, value)
        try:
            self.write(field, value)
        except Exception as exc:  # redis.RedisError, OSError: the store is down
            with self._lock:
                if len(self._pending) < MAX_PENDING:
                    self._pending[field] = value
            self._failed("revocation not written", exc)
            return False
        return True

    def write(self, field: str, value: str) -> None:
        write_entry(self._client, self.namespace, field, value)

    # --- the listener -------------------------------------------------------------------------

    def start(self) -> None:
        """Start keeping :attr:`revocations` current (once per process)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="qqgate-revocations")
            self._thread.daemon = True
            self._thread.start()

    def close(self) -> None:
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._client.close()

    def _run(self) -> None:
        while not self._closed.is_set():
            try:
                self._listen()
            except Exception as exc:  # whatever the client raises: Redis is down or gone
                self._failed("session store unavailable", exc)
                self._closed.wait(RETRY_SECONDS)

    def _listen(self) -> None:
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(self.channel)  # first, so that nothing falls between the two
            self._resync()
            self._flush_pending()
            self._set_up(True)
            resync_at = time.monotonic() + RESYNC_SECONDS
            while not self._closed.is_set():
                message = pubsub.get_message(timeout=WAIT_SECONDS)
                if message is not None and message.get("type") == "message":
                    field, _, value = str(message["data"]).partition(" ")
                    self.revocations.add(field, value)
                if time.monotonic() >= resync_at:
                    self._resync()
                    resync_at = time.monotonic() + RESYNC_SECONDS
        finally:
            pubsub.close()

    def _resync(self) -> None:
        now = self._clock()
        self.revocations.replace(self._client.hgetall(self.hash), now)
        expired = self.revocations.expired(now)
        if expired:
            self._client.hdel(self.hash, *expired)

    def _flush_pending(self) -> None:
        with self._lock:
            pending = list(self._pending.items())
        for field, value in pending:
            self.write(field, value)  # raises if Redis went again: the rest waits for the retry
            with self._lock:
                self._pending.pop(field, None)

    def _set_up(self, up: bool) -> None:
        if up and not self.up:
            logs.event(log, logging.INFO, "session store available", store=self.channel)
        self.up = up
        metrics.get().store_up.set(1 if up else 0)

    def _failed(self, what: str, exc: BaseException) -> None:
        metrics.get().store_errors.inc()
        if self.up is not False or what != "session store unavailable":  # once per outage
            logs.event(log, logging.ERROR, what, store=self.channel, error=type(exc).__name__)
        self.up = False
        metrics.get().store_up.set(0)
