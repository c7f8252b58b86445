"""Shared fixtures: settings, an adjustable clock, and loopback servers started and stopped by tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from qqgate.config import Settings, settings_from_mapping

from .redis_server import redis_server  # noqa: F401 - a fixture: redis-server on loopback

APP_ID = "101000001"
APP_KEY = "test-app-key-not-a-real-secret-0001"
SECRET = "s" * 40
OTHER_SECRET = "o" * 40


def make_settings(**overrides: str) -> Settings:
    raw = {
        "app_id": APP_ID,
        "app_key": APP_KEY,
        "secret_key": SECRET,
        "redirect_uri": "https://app.example.com/_qqgate/callback",
        "public_paths": "/static/ /healthz",
        # the tests name their cookies; the default (__Host-qqgate here) has its own tests
        "cookie_name": "qqgate",
    }
    raw.update(overrides)
    return settings_from_mapping(raw)


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class LoopbackServer:
    """A WSGI app served on 127.0.0.1 in a background thread."""

    def __init__(self, app) -> None:
        self.server = make_server("127.0.0.1", 0, app, _ThreadingServer, _QuietHandler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def loopback() -> Iterator[type[LoopbackServer]]:
    yield LoopbackServer


@pytest.fixture(scope="session")
def provider():
    """The development provider on loopback (``tests.rig.Provider``), for the whole session."""
    from .live import serve_provider

    yield from serve_provider()


@pytest.fixture
def clean_provider(provider):
    """The shared provider with no faults and zeroed counters, reset again afterwards."""
    provider.fake.reset()
    try:
        yield provider
    finally:
        provider.fake.reset()


@pytest.fixture
def nginx_binary() -> str:
    """The distribution's nginx, or the test is skipped saying why (``tests.fronts``)."""
    from .fronts import binary

    return binary("nginx")
