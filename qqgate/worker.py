"""``GateWorker``: gunicorn's gevent worker with bounds a client cannot stretch.

``qqgate serve`` runs it (``qqgate/gunicorn_conf.py``). Each connection is a greenlet, so a worker
holds thousands of slow or idle connections, long downloads, server-sent event streams and
WebSockets at once, where a thread per connection (gthread: 8 per worker) let 16 slow clients take
a whole server. What a client cannot do, and what happens instead:

- **dribble a request head**: the head must arrive whole within ``client_header_timeout`` of when
  the worker starts waiting for it (this is also how long an idle keep-alive connection stays);
  past it the connection is closed without an answer. gunicorn's gevent worker has this deadline
  already, tied to ``keepalive``; here it has its own setting.
- **stall a body or an answer**: a connection on which no byte moves either way for
  ``client_idle_timeout`` is dropped. A stalled upload gets a 408 from the proxy; a client that
  stops reading a download loses its connection. One log line each, never a traceback.
- **send a huge head**: gunicorn's ``limit_request_*`` (``max_request_line``, ``max_header_fields``,
  ``max_header_field_size``) answer 400/431/414 before the gate runs.
- **open unbounded connections**: a worker holds at most ``worker_connections``; the kernel's
  listen backlog queues the rest.
"""

from __future__ import annotations

import logging

import gevent
from gunicorn.workers.base_async import AsyncWorker
from gunicorn.workers.ggevent import GeventWorker

from .config import config_path, load_settings


class GateWorker(GeventWorker):  # type: ignore[misc]  # gunicorn ships no types
    """The gevent worker, with the head deadline and the idle timeout from gate.ini."""

    header_timeout = 10.0
    idle_timeout = 60.0

    def init_process(self) -> None:
        self._waiting_for_heads: dict[object, gevent.Timeout] = {}
        settings = load_settings(config_path())
        self.header_timeout = settings.client_header_timeout
        self.idle_timeout = settings.client_idle_timeout
        logging.getLogger("gunicorn.error").addFilter(_ClientTimeouts())
        super().init_process()

    def timeout_ctx(self) -> _HeadWait:
        return _HeadWait(self._waiting_for_heads, self.header_timeout)

    def handle_exit(self, sig, frame) -> None:  # type: ignore[no-untyped-def]
        # SIGTERM: finish what is under way, but do not wait out the deadline of connections
        # that sit idle between requests (gunicorn would, up to graceful_timeout).
        super().handle_exit(sig, frame)
        gevent.spawn(self._end_head_waits)

    def _end_head_waits(self) -> None:
        for greenlet, deadline in list(self._waiting_for_heads.items()):
            gevent.kill(greenlet, deadline)  # asynchronous: raised at its next switch

    def handle(self, listener, client, addr) -> None:  # type: ignore[no-untyped-def]
        # GeventWorker.handle only makes the socket blocking; a timeout keeps it blocking (for
        # this greenlet) and bounds every read and write on it.
        client.settimeout(self.idle_timeout)
        AsyncWorker.handle(self, listener, client, addr)


class _HeadWait:
    """The deadline of one request head, silent: past it (or when the worker stops) the head read
    ends as if the client had gone, and the connection is closed without an answer."""

    def __init__(self, waiting: dict[object, gevent.Timeout], seconds: float) -> None:
        self._waiting = waiting
        self._deadline = gevent.Timeout(seconds, False)

    def __enter__(self) -> None:
        self._deadline.start()
        self._waiting[gevent.getcurrent()] = self._deadline

    def __exit__(self, kind, value, traceback) -> bool | None:  # type: ignore[no-untyped-def]
        self._waiting.pop(gevent.getcurrent(), None)
        suppressed: bool | None = self._deadline.__exit__(kind, value, traceback)
        return suppressed


class _ClientTimeouts(logging.Filter):
    """gunicorn logs a socket error it does not know with a traceback; a client that timed out
    is ordinary traffic: one line, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], TimeoutError):
            record.msg, record.args = "client idle too long: connection closed", ()
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True
