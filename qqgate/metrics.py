"""Prometheus metrics: what the gate decides and how its two remote parties (QQ, the upstream) do.

Counters of sign-ins (by outcome and reason), challenges (302 to the login, 401 to API clients),
denials, ``/auth`` answers; histograms of QQ's latency per endpoint and of the upstream's time to
its answer head per status class; token-cache lookups (hit or miss: the ratio is one PromQL
division); proxied requests and WebSocket tunnels in flight.

Under ``qqgate serve`` each gunicorn worker is a process of its own: ``qqgate.gunicorn_conf`` sets
``PROMETHEUS_MULTIPROC_DIR``, the workers write their values to files there, and the scrape adds
them up (prometheus_client's multiprocess mode). prometheus_client reads that variable when it is
first imported, so it is imported here on first use, in a worker, never when qqgate is imported.

The ``{prefix}/metrics`` route serves the text format to ``metrics_allow`` addresses only.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from types import SimpleNamespace
from typing import Any

from .forwarded import IPNetwork, address_in
from .wsgiutil import TRUSTED_PROXIES, Environ, client_address

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


_created: Any = None
_creating = threading.Lock()


def get() -> Any:
    """The metrics, created on first use (see the module docstring)."""
    if _created is None:
        _create()
    return _created


def _create() -> None:
    # Once, even when the first requests of a threaded worker arrive together: prometheus_client
    # refuses a second metric of the same name.
    global _created
    with _creating:
        if _created is None:
            _created = _new_metrics()


def _new_metrics() -> Any:
    from prometheus_client import Counter, Gauge, Histogram

    return SimpleNamespace(
        sign_ins=Counter(
            "qqgate_sign_ins", "Sign-ins by outcome and reason", ["outcome", "reason"]
        ),
        challenges=Counter(
            "qqgate_challenges", "Visitors not signed in: 302 to sign in, 401 for API", ["status"]
        ),
        denials=Counter("qqgate_denials", "Signed-in users refused (403), by reason", ["reason"]),
        auth_answers=Counter(
            "qqgate_auth_answers", "Answers of /auth (nginx auth_request) by status", ["status"]
        ),
        qq_seconds=Histogram(
            "qqgate_qq_request_seconds",
            "QQ API calls by endpoint",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
        ),
        upstream_seconds=Histogram(
            "qqgate_upstream_response_seconds",
            "Time to the upstream's answer head, by status class (error: none came)",
            ["status_class"],
            buckets=_LATENCY_BUCKETS,
        ),
        token_cache=Counter(
            "qqgate_token_cache_lookups",
            "Session tokens served from the cache or verified",
            ["result"],
        ),
        proxied_in_flight=Gauge(
            "qqgate_proxied_requests_in_flight",
            "Requests being proxied to the upstream",
            multiprocess_mode="livesum",
        ),
        store_up=Gauge(
            "qqgate_session_store_up",
            "1 while the session store (Redis) is reachable and its revocations read, else 0",
            multiprocess_mode="livemin",
        ),
        store_errors=Counter(
            "qqgate_session_store_errors", "Failed reads and writes of the session store"
        ),
        tunnels_open=Gauge(
            "qqgate_websocket_tunnels_open", "WebSocket tunnels open", multiprocess_mode="livesum"
        ),
    )


def count_event(name: str, fields: Mapping[str, object]) -> None:
    """Count a logged event (``qqgate.logs.event``) that is a sign-in outcome or a denial."""
    if name == "sign-in ok":
        get().sign_ins.labels("ok", "-").inc()
    elif name == "sign-in failed":
        get().sign_ins.labels("failed", str(fields.get("reason", "-"))).inc()
    elif name == "access denied":
        get().denials.labels(str(fields.get("reason", "-"))).inc()


def status_class(status: int | None) -> str:
    return f"{status // 100}xx" if status else "error"


def exposition() -> tuple[bytes, str]:
    """The text format of every metric (of every worker, in multiprocess mode), and its type."""
    get()
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = REGISTRY
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


def worker_exited(pid: int) -> None:
    """gunicorn's ``child_exit``: drop a dead worker's live gauges from the sums."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(pid)  # type: ignore[no-untyped-call]


def scrape_allowed(environ: Environ, allow: Iterable[IPNetwork]) -> bool:
    """Whether this request may read the metrics: its client (past ``trusted_proxies``) is in
    ``metrics_allow``. A request that came through a proxy the gate does not trust (it carries
    ``X-Forwarded-For`` from an untrusted peer) is refused: behind nginx without
    ``trusted_proxies`` every visitor would otherwise have nginx's address."""
    proxies = environ.get(TRUSTED_PROXIES)
    peer = str(environ.get("REMOTE_ADDR", ""))
    if "HTTP_X_FORWARDED_FOR" in environ and not (proxies and proxies.trusts(peer)):
        return False
    return address_in(client_address(environ), allow)


class InFlight:
    """A WSGI body counted in ``gauge`` from its creation until the server closes it."""

    def __init__(self, body: Iterable[bytes], gauge: Any) -> None:
        self._body = body
        self._gauge = gauge
        self._open = True
        gauge.inc()

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            if self._open:
                self._open = False
                self._gauge.dec()
